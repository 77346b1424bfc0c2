/* The privileged mount helper: a process outside the workload's sandbox that
 * keeps CAP_SYS_ADMIN and CAP_DAC_OVERRIDE and mounts on the workload's
 * behalf, under a fixed list of roots only. It trusts nothing its client
 * sends: every path is checked to be canonical and under a root, writable
 * binds are refused, and it unmounts only mounts it made itself. */
#ifndef BRANCHING_MOUNT_HELPER_H
#define BRANCHING_MOUNT_HELPER_H

/* Starts the helper (double-forked: never the workload's child) for mounts
 * under `roots` (colon-separated); `userxattr` when the launcher is inside a
 * user namespace. Returns 0 with the client end of its SEQPACKET socket
 * (close-on-exec) in *client, or an errno. */
int mount_helper_start(const char *roots, int userxattr, int *client);

#endif
