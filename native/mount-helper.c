/* See mount-helper.h. Requests are one TAB-separated line per SEQPACKET
 * message, replies one JSON line (mounts.h error_json, or {"ok":true}):
 *   overlay T L1:L2 U W [opts] | bind S D ro | umount T */
#define _GNU_SOURCE
#include "mount-helper.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mounts.h"

static char *roots[64];
static int nroots, userxattr;

/* Absolute, canonical (realpath(p) == p), under an allowed root; no ',' (mount
 * option separator), and no ':' unless `colon_ok`. Returns 0 or an errno. */
static int check_path(const char *p, int colon_ok) {
  char real[PATH_MAX];
  if (p[0] != '/' || strchr(p, ',') || (!colon_ok && strchr(p, ':'))) return EINVAL;
  if (!realpath(p, real)) return errno;
  if (strcmp(real, p)) return EINVAL;
  for (int i = 0; i < nroots; i++) {
    size_t len = strlen(roots[i]);
    if (!strncmp(p, roots[i], len) && (p[len] == '/' || p[len] == 0 || len == 1)) return 0;
  }
  return EPERM;
}

/* The mounts this helper made, by mount id: it unmounts only those, so a
 * workload cannot strip a mount the launcher set up (the project's branch)
 * to reveal what lies beneath it. */
static unsigned long long *own_mounts;
static size_t n_own, cap_own;

static int mount_id_of(const char *path, unsigned long long *id) {
  struct statx stx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0) return errno;
  if (!(stx.stx_mask & STATX_MNT_ID)) return ENOSYS; /* Linux < 5.8 */
  *id = stx.stx_mnt_id;
  return 0;
}

static int remember_mount(const char *target) {
  unsigned long long id = 0;
  int err = mount_id_of(target, &id);
  if (err) return err;
  if (n_own == cap_own) {
    size_t cap = cap_own ? cap_own * 2 : 64;
    unsigned long long *grown = realloc(own_mounts, cap * sizeof *grown);
    if (!grown) return ENOMEM;
    own_mounts = grown, cap_own = cap;
  }
  own_mounts[n_own++] = id;
  return 0;
}

/* Removes `target`'s top mount from the list; EPERM when the helper did not make it. */
static int forget_mount(const char *target) {
  unsigned long long id = 0;
  int err = mount_id_of(target, &id);
  if (err) return err;
  for (size_t i = 0; i < n_own; i++) {
    if (own_mounts[i] != id) continue;
    own_mounts[i] = own_mounts[--n_own];
    return 0;
  }
  return EPERM;
}

/* A mount the helper made and could not record is undone: it must never hold a mount it cannot account for. */
static int mounted(const char *target) {
  int err = remember_mount(target);
  if (err) umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
  return err;
}

/* Checks an overlay request's target, lowers (each one), upper and work dir. */
static int check_overlay_paths(char *const f[], const char **bad) {
  int err;
  for (int i = 1; i <= 4; i++) {
    if (i == 2) { /* no empty layer: "::" would name data-only layers */
      char lowers[PATH_MAX * 4];
      size_t len = strlen(f[2]);
      if (strstr(f[2], "::") || f[2][len - 1] == ':') return *bad = f[2], EINVAL;
      if (len >= sizeof lowers) return *bad = f[2], ENAMETOOLONG;
      strcpy(lowers, f[2]);
      for (char *s2 = NULL, *l = strtok_r(lowers, ":", &s2); l; l = strtok_r(NULL, ":", &s2))
        if ((err = check_path(l, 0))) return *bad = f[2], err;
    } else if ((err = check_path(f[i], 0))) {
      return *bad = f[i], err;
    }
  }
  return 0;
}

static int helper_request(char *req, const char **op, const char **bad, const char **msg) {
  char *f[7];
  int nf = 0;
  for (char *save = NULL, *t = strtok_r(req, "\t", &save); t && nf < 7; t = strtok_r(NULL, "\t", &save)) f[nf++] = t;
  *op = nf ? f[0] : "request";
  int err;
  if (nf == 5 || nf == 6) {
    if (strcmp(f[0], "overlay")) return EINVAL;
    if ((err = check_overlay_paths(f, bad))) return err;
    *bad = f[1];
    return mount_overlay(f[1], f[2], f[3], f[4], nf == 6 ? f[5] : NULL, userxattr) < 0 ? errno : mounted(f[1]);
  }
  if (nf == 2 && !strcmp(f[0], "umount")) {
    if ((err = check_path(f[1], 1))) return *bad = f[1], err;
    *bad = f[1];
    if ((err = forget_mount(f[1]))) return *msg = "the helper unmounts only mounts it made", err;
    return umount2(f[1], MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? errno : 0;
  }
  /* read-only only: a writable bind could expose a tree the workload may not write */
  if (nf == 4 && !strcmp(f[0], "bind") && !strcmp(f[3], "ro")) {
    if ((err = check_path(f[1], 1))) return *bad = f[1], err;
    if ((err = check_path(f[2], 1))) return *bad = f[2], err;
    *bad = f[2];
    return bind_mount(f[1], f[2], 1) < 0 ? errno : mounted(f[2]);
  }
  if (nf == 4 && !strcmp(f[0], "bind")) return *bad = f[2], *msg = "the helper makes read-only binds only", EPERM;
  return EINVAL;
}

/* Serves requests until every peer has closed the socket. A request may carry
 * a reply socket (SCM_RIGHTS) so that processes sharing the fd never read each
 * other's replies. */
static _Noreturn void helper_main(int sock) {
  char req[PATH_MAX * 8], reply[8192];
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cbuf;
  set_caps((1ULL << CAP_SYS_ADMIN) | (1ULL << CAP_DAC_OVERRIDE));
  for (;;) {
    struct iovec iov = {req, sizeof req - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf};
    ssize_t n = RETRY_EINTR(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC));
    if (n <= 0) _exit(0);
    req[n] = 0;
    int out = sock;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&out, CMSG_DATA(c), sizeof out);
    const char *op = "request", *bad = NULL, *why = NULL;
    int err = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? E2BIG : helper_request(req, &op, &bad, &why);
    if (err == EPERM && bad && !why) why = "path is outside the helper's allowed roots";
    size_t len = err ? error_json(reply, sizeof reply, op, -1, err, bad, why)
                     : (size_t)snprintf(reply, sizeof reply, "{\"ok\":true}\n");
    RETRY_EINTR(send(out, reply, len, MSG_NOSIGNAL));
    if (out != sock) close(out);
  }
}

int mount_helper_start(const char *root_list, int in_userns, int *client) {
  char *copy = strdup(root_list);
  if (!copy) return ENOMEM;
  for (char *save = NULL, *r = strtok_r(copy, ":", &save); r && nroots < 64; r = strtok_r(NULL, ":", &save))
    roots[nroots++] = r;
  userxattr = in_userns;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return errno;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) { /* double fork: the helper is never the workload's child */
    if (fork() != 0) _exit(0);
    close_all_but(sv[0]);
    helper_main(sv[0]);
  }
  RETRY_EINTR(waitpid(pid, NULL, 0));
  close(sv[0]);
  *client = sv[1];
  return 0;
}
