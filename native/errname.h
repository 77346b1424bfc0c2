/* errno -> symbolic name ("ENOENT"), shared by the addon and the launcher.
 * A table instead of strerrorname_np(3): that is glibc >= 2.32 only (no musl,
 * no macOS). Aliases with equal values (EWOULDBLOCK, ENOTSUP, EDEADLOCK) map
 * to the first entry; Linux's name for 95 is EOPNOTSUPP. */
#ifndef BRANCHING_ERRNAME_H
#define BRANCHING_ERRNAME_H

#include <errno.h>

static const char *branching_errname(int e) {
#define E_(x) \
  if (e == x) return #x;
  E_(EPERM) E_(ENOENT) E_(ESRCH) E_(EINTR) E_(EIO) E_(ENXIO) E_(E2BIG) E_(ENOEXEC) E_(EBADF)
  E_(ECHILD) E_(EAGAIN) E_(ENOMEM) E_(EACCES) E_(EFAULT) E_(EBUSY) E_(EEXIST) E_(EXDEV)
  E_(ENODEV) E_(ENOTDIR) E_(EISDIR) E_(EINVAL) E_(ENFILE) E_(EMFILE) E_(ENOTTY) E_(ETXTBSY)
  E_(EFBIG) E_(ENOSPC) E_(ESPIPE) E_(EROFS) E_(EMLINK) E_(EPIPE) E_(ERANGE) E_(EDEADLK)
  E_(ENAMETOOLONG) E_(ENOLCK) E_(ENOSYS) E_(ENOTEMPTY) E_(ELOOP)
#ifdef ENODATA
  E_(ENODATA)
#endif
#ifdef ENOATTR
  E_(ENOATTR)
#endif
  E_(EOVERFLOW) E_(EOPNOTSUPP) E_(ENOTSUP) E_(ENOTSOCK) E_(ECONNREFUSED) E_(ENETUNREACH)
  E_(EADDRINUSE) E_(EADDRNOTAVAIL) E_(ECONNRESET) E_(ETIMEDOUT) E_(EHOSTUNREACH) E_(ENOBUFS)
  E_(EDQUOT) E_(ESTALE)
#ifdef EUCLEAN
  E_(EUCLEAN)
#endif
#undef E_
  return "EUNKNOWN";
}

#endif
