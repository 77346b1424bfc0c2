/* Mount primitives and the JSON failure line, shared by the launcher's setup
 * loop and its privileged mount helper: both mount the same overlays and
 * binds, and both report failures in one format (src/base/mount-wire.ts
 * parses it). */
#ifndef BRANCHING_MOUNTS_H
#define BRANCHING_MOUNTS_H

#include <errno.h>
#include <stddef.h>
#include <sys/mount.h>

#ifndef MOUNT_ATTR_RDONLY /* glibc < 2.36 */
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr { unsigned long long attr_set, attr_clr, propagation, userns_fd; };
#endif

/* Retries a system call interrupted by a signal (EINTR); yields its result. */
#define RETRY_EINTR(expr)                                  \
  ({                                                       \
    __typeof__(expr) retry_result_;                        \
    do retry_result_ = (expr);                             \
    while (retry_result_ < 0 && errno == EINTR);           \
    retry_result_;                                         \
  })

/* Formats {"ok":false,...} into buf (a JSON line); returns its length. */
size_t error_json(char *buf, size_t cap, const char *op, int index, int err, const char *path, const char *msg);
void write_all(int fd, const char *buf, size_t len);

/* Closes every fd except `keep` (close_range: Linux 5.9; older kernels keep them). */
void close_all_but(int keep);
/* Sets the effective and permitted capability sets to `keep` (a CAP_* bit mask). */
int set_caps(unsigned long long keep);
int mount_setattr_path(const char *path, unsigned long long set, unsigned long long clr);

/* Allowed tokens for the optional overlay option field (comma-separated). */
int options_ok(const char *opts);
/* mount(2) of an overlay; returns 0 or -1 with errno (EINVAL: bad options).
 * `userxattr`: inside a user namespace, where trusted.* xattrs are refused. */
int mount_overlay(const char *target, const char *lowers, const char *upper, const char *work, const char *opts,
                  int userxattr);
/* A recursive bind of src onto dst, read-only when `ro`. */
int bind_mount(const char *src, const char *dst, int ro);

#endif
