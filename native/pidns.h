/* The pid namespace: outer launcher <- init (PID 1) <- workload. The outer
 * launcher stays in the caller's namespace, forwards signals and exits like
 * the workload; init reaps orphans; the workload asks the outer launcher for
 * its pid as the caller sees it (SO_PASSCRED) over `*workload_sock`. */
#ifndef BRANCHING_PIDNS_H
#define BRANCHING_PIDNS_H

/* Returns only in the workload, after mounting its /proc: 0, or an errno
 * (the failing path in *bad). The outer launcher closes `status_fd`: only the
 * workload reports on it. */
int pidns_enter(int status_fd, int *workload_sock, const char **bad);

#endif
