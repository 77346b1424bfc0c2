/* branching-launcher: applies a spec of namespace/mount operations, then execs
 * BRANCHING_LAUNCH_EXEC with our argv[1..], every fd and the environment kept.
 * Spec (BRANCHING_LAUNCH_SPEC): one op per line, fields separated by TAB:
 *   userns | mountns | pidns | netns | overlay T L1:L2 U W [opts] | bind S D ro|rw
 *   tmpfs T MODE | rdonly P | writable P | chdir D | helper ROOT1:ROOT2
 * Status (BRANCHING_LAUNCH_STATUS_FD): one JSON line, {"ok":true,"pid":N} just
 * before exec or {"ok":false,"op",...}; exit 126 on setup failure, 127 on exec.
 * Every workload, root's included, runs in a user namespace with no
 * capabilities and no_new_privs, dies with the launcher's parent
 * (BRANCHING_LAUNCH_PARENT), never inherits an enclosing sandbox's helper
 * socket, and with `netns` cannot create Unix sockets (seccomp).
 * The helper (privilege separation) keeps CAP_SYS_ADMIN+CAP_DAC_OVERRIDE and
 * serves TAB requests on a SEQPACKET socket, replying JSON (see helper_main). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <poll.h>
#include <stddef.h>
#include <sys/stat.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "errname.h"

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr { unsigned long long attr_set, attr_clr, propagation, userns_fd; };
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

enum kind { USERNS, MOUNTNS, PIDNS, NETNS, OVERLAY, BIND, TMPFS, RDONLY, WRITABLE, CHDIR, HELPER };
static const char *const names[] = {"userns", "mountns", "pidns", "netns", "overlay", "bind",
                                    "tmpfs", "rdonly", "writable", "chdir", "helper"};
static const int min_fields[] = {1, 1, 1, 1, 5, 4, 3, 2, 2, 2, 2};
static const int max_fields[] = {1, 1, 1, 1, 6, 4, 3, 2, 2, 2, 2};
#define MAX_OPS 256
#define MAX_FIELDS 6
struct op { enum kind kind; int nf; char *f[MAX_FIELDS]; };

static int status_fd = -1, in_userns = 0, did_mountns = 0, pid_sock = -1, deny_unix = 0;

static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
    else if (c < 0x20) fprintf(out, "\\u%04x", c);
    else fputc(c, out);
  }
  fputc('"', out);
}

/* Formats {"ok":false,...} into buf (a JSON line); returns its length. */
static size_t error_json(char *buf, size_t cap, const char *op, int index, int err, const char *path,
                         const char *msg) {
  char *mem = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&mem, &len);
  if (!out) return 0;
  fprintf(out, "{\"ok\":false,\"op\":");
  json_str(out, op);
  if (index >= 0) fprintf(out, ",\"index\":%d", index);
  fprintf(out, ",\"errno\":%d,\"code\":\"%s\"", err, branching_errname(err));
  if (path) fprintf(out, ",\"path\":"), json_str(out, path);
  fprintf(out, ",\"message\":");
  json_str(out, msg ? msg : strerror(err));
  fprintf(out, "}\n");
  fclose(out);
  if (len >= cap) len = cap - 1;
  memcpy(buf, mem, len);
  buf[len] = 0;
  free(mem);
  return len;
}

static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buf += n, len -= (size_t)n;
  }
}

static _Noreturn void fail(const char *op, int index, int err, const char *path, const char *msg, int code) {
  char buf[8192];
  size_t len = error_json(buf, sizeof buf, op, index, err, path, msg);
  if (status_fd >= 0) write_all(status_fd, buf, len);
  dprintf(2, "branching-launcher: %s%s%s: %s\n", op, path ? " " : "", path ? path : "", msg ? msg : strerror(err));
  _exit(code);
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do n = write(fd, text, strlen(text)); while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  errno = saved;
  return n < 0 ? -1 : 0;
}

/* Closes every fd except `keep` (close_range: Linux 5.9; older kernels keep them). */
static void close_all_but(int keep) {
  if (keep > 0) syscall(SYS_close_range, 0U, (unsigned)keep - 1, 0U);
  syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U);
}

static int set_caps(unsigned long long keep) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{(unsigned)keep, (unsigned)keep, 0},
                                           {(unsigned)(keep >> 32), (unsigned)(keep >> 32), 0}};
  return (int)syscall(SYS_capset, &hdr, data);
}

static int mount_setattr_path(const char *path, unsigned long long set, unsigned long long clr) {
  struct mount_attr attr = {set, clr, 0, 0};
  return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr);
}

/* Allowed tokens for the optional overlay option field (comma-separated). */
static int options_ok(const char *opts) {
  static const char *const ok[] = {"redirect_dir=on", "redirect_dir=off", "redirect_dir=follow",
                                   "redirect_dir=nofollow", "index=on", "index=off", "metacopy=off",
                                   "xino=off", "xino=auto", "xino=on", "volatile", NULL};
  char copy[256];
  if (strlen(opts) >= sizeof copy) return 0;
  strcpy(copy, opts);
  for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int found = 0;
    for (int i = 0; ok[i]; i++) found |= !strcmp(t, ok[i]);
    if (!found) return 0;
  }
  return 1;
}

/* mount(2) of an overlay; returns 0 or -1 with errno (EINVAL: bad options). */
static int mount_overlay(const char *target, const char *lowers, const char *upper, const char *work,
                         const char *opts) {
  char data[8192];
  if (opts && *opts && !options_ok(opts)) return errno = EINVAL, -1;
  int n = snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s%s%s%s", lowers, upper, work,
                   in_userns ? ",userxattr" : "", opts && *opts ? "," : "", opts ? opts : "");
  if (n < 0 || (size_t)n >= sizeof data) return errno = ENAMETOOLONG, -1;
  /* mount(2) reads one page of options: past it the last lower dir would be cut short (ENOENT) */
  if (n >= sysconf(_SC_PAGESIZE)) return errno = E2BIG, -1;
  return mount("overlay", target, "overlay", 0, data);
}

static int bind_mount(const char *src, const char *dst, int ro) {
  if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
  return ro ? mount_setattr_path(dst, MOUNT_ATTR_RDONLY, 0) : 0;
}

/* ---- what the workload keeps ------------------------------------------- */

/* Empties every capability set (effective, permitted, inheritable, ambient,
 * bounding) for every uid, uid 0 inside the namespace included, and sets
 * no_new_privs: with an empty bounding and inheritable set an exec as uid 0
 * regains nothing, and setuid or file-capability binaries grant nothing. */
static void drop_privileges(void) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    fail("caps", -1, errno, NULL, "cannot clear the ambient set", 126);
  for (int c = 0; c <= 63; c++) {
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue; /* -1 EINVAL: past the last cap */
    /* outside any user namespace an unprivileged process cannot drop it, nor use it: no_new_privs */
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && !(errno == EPERM && !in_userns && getuid() != 0))
      fail("caps", -1, errno, NULL, "cannot empty the bounding set", 126);
  }
  if (set_caps(0) < 0) fail("caps", -1, errno, NULL, NULL, 126);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("caps", -1, errno, NULL, "cannot set no_new_privs", 126);
}

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "branching-launcher: no seccomp architecture for this target"
#endif

/* With the network off, a private network namespace hides TCP and abstract
 * sockets, but not Unix sockets bound on the filesystem (docker.sock, a host
 * server in /tmp). seccomp refuses new AF_UNIX sockets (EACCES) instead:
 * inherited ones and socketpair(2) (pipes to child processes, Node's IPC)
 * keep working. io_uring and foreign syscall ABIs are refused too, since
 * they would reach socket(2) around this filter. */
static void deny_unix_sockets(void) {
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __X32_SYSCALL_BIT
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
#endif
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])), /* low word: little-endian */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
    fail("netns", -1, errno, NULL, "cannot install the seccomp filter against Unix sockets", 126);
}

/* The sandbox dies with the process that started it: a SIGKILLed parent must
 * not leave a workload running in a branch that gc will reclaim. The parent's
 * pid (BRANCHING_LAUNCH_PARENT) closes the race of a parent that died before
 * prctl took effect. */
static void die_with_parent(void) {
  const char *text = getenv("BRANCHING_LAUNCH_PARENT");
  long expected = text ? atol(text) : (long)getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("spec", -1, errno, NULL, "cannot set the parent-death signal", 126);
  if ((long)getppid() != expected) _exit(126);
}

/* A helper socket inherited from an enclosing sandbox belongs to that
 * sandbox's owner, never to this workload: close it (its own helper op, if
 * any, makes a new one). */
static void drop_inherited_helper(void) {
  const char *text = getenv("BRANCHING_HELPER_FD");
  if (!text) return;
  char *end;
  long fd = strtol(text, &end, 10);
  struct stat st;
  if (*text && !*end && fd > 2 && fd < INT_MAX && fd != status_fd && fstat((int)fd, &st) == 0 && S_ISSOCK(st.st_mode))
    close((int)fd);
  unsetenv("BRANCHING_HELPER_FD");
}

/* ---- the privileged helper ---------------------------------------------- */
#define HELPER_FD_MIN 100
static char *roots[64];
static int nroots;

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

static int helper_request(char *req, const char **op, const char **bad, const char **msg) {
  char *f[7];
  int nf = 0;
  for (char *save = NULL, *t = strtok_r(req, "\t", &save); t && nf < 7; t = strtok_r(NULL, "\t", &save)) f[nf++] = t;
  *op = nf ? f[0] : "request";
  int err;
  if (nf == 5 || nf == 6) {
    if (strcmp(f[0], "overlay")) return EINVAL;
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
    *bad = f[1];
    return mount_overlay(f[1], f[2], f[3], f[4], nf == 6 ? f[5] : NULL) < 0 ? errno : mounted(f[1]);
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
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
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
    while (send(out, reply, len, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
    if (out != sock) close(out);
  }
}

static void start_helper(struct op *o, int index) {
  char *copy = strdup(o->f[1]);
  for (char *save = NULL, *r = strtok_r(copy, ":", &save); r && nroots < 64; r = strtok_r(NULL, ":", &save))
    roots[nroots++] = r;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) fail("helper", index, errno, NULL, NULL, 126);
  pid_t pid = fork();
  if (pid < 0) fail("helper", index, errno, NULL, NULL, 126);
  if (pid == 0) { /* double fork: the helper is never the workload's child */
    if (fork() != 0) _exit(0);
    close_all_but(sv[0]);
    helper_main(sv[0]);
  }
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  close(sv[0]);
  /* Every Node process marks fds 0-15, and the ones after them up to the first
   * closed fd, close-on-exec at startup (libuv's uv_disable_stdio_inheritance).
   * A high fd survives that, so node -> node -> ... descendants inherit it. */
  struct rlimit lim;
  long want = HELPER_FD_MIN;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && (long)lim.rlim_cur <= want)
    want = (long)lim.rlim_cur - 1;
  int high = want > sv[1] ? fcntl(sv[1], F_DUPFD, (int)want) : -1;
  if (high >= 0) close(sv[1]), sv[1] = high;
  char num[16];
  snprintf(num, sizeof num, "%d", sv[1]);
  if (fcntl(sv[1], F_SETFD, 0) < 0 || setenv("BRANCHING_HELPER_FD", num, 1) < 0)
    fail("helper", index, errno, NULL, NULL, 126);
}

/* ---- pid namespace: outer launcher <- init (PID 1) <- workload ------------- */
static pid_t forward_to;
static void forward(int sig) { if (forward_to > 0) kill(forward_to, sig); }
static const int fwd_sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFWD (int)(sizeof fwd_sigs / sizeof fwd_sigs[0])

static _Noreturn void exit_like(int status) {
  if (WIFSIGNALED(status)) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(WTERMSIG(status), SIG_DFL);
    sigset_t s;
    sigemptyset(&s), sigaddset(&s, WTERMSIG(status));
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(WTERMSIG(status));
    _exit(128 + WTERMSIG(status));
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
}

/* The outer launcher: answers the workload's pid question (SO_PASSCRED makes
 * the kernel translate its pid into our namespace), forwards signals to init,
 * and exits like the workload did. */
static _Noreturn void outer_main(int sock, pid_t init) {
  int status = -1;
  forward_to = init;
  struct sigaction sa = {.sa_handler = forward};
  for (int i = 0; i < NFWD; i++) sigaction(fwd_sigs[i], &sa, NULL);
  if (status_fd >= 0) close(status_fd);
  for (;;) {
    char buf[64];
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(struct ucred))]; } cbuf;
    struct iovec iov = {buf, sizeof buf - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof cbuf.b};
    ssize_t n = recvmsg(sock, &msg, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf[n] = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (buf[0] == 'P' && c && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      int len = snprintf(buf, sizeof buf, "%d", (int)cred.pid);
      send(sock, buf, (size_t)len, MSG_NOSIGNAL);
    } else if (buf[0] == 'W') {
      status = atoi(buf + 1);
    }
  }
  int st;
  while (waitpid(init, &st, 0) < 0 && errno == EINTR) {}
  exit_like(status >= 0 ? status : st);
}

static _Noreturn void init_main(int sock, pid_t workload) {
  close_all_but(sock);
  sigset_t set;
  sigemptyset(&set), sigaddset(&set, SIGCHLD);
  for (int i = 0; i < NFWD; i++) sigaddset(&set, fwd_sigs[i]);
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si), st;
    if (sig < 0) continue;
    if (sig != SIGCHLD) { kill(workload, sig); continue; }
    for (pid_t p; (p = waitpid(-1, &st, WNOHANG)) > 0;) {
      if (p != workload) continue;
      char msg[32];
      int len = snprintf(msg, sizeof msg, "W%d", st);
      send(sock, msg, (size_t)len, MSG_NOSIGNAL);
      _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
  }
}

static void enter_pidns(int index) {
  int sv[2];
  if (!did_mountns) fail("pidns", index, EINVAL, NULL, "pidns needs a mountns op before it (for /proc)", 126);
  if (unshare(CLONE_NEWPID) < 0) fail("pidns", index, errno, NULL, NULL, 126);
  int one = 1; /* before fork: creds are attached at send time only if PASSCRED is already on */
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
      setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    fail("pidns", index, errno, NULL, NULL, 126);
  sigset_t set, old;
  sigemptyset(&set), sigaddset(&set, SIGCHLD);
  for (int i = 0; i < NFWD; i++) sigaddset(&set, fwd_sigs[i]);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid_t init = fork();
  if (init < 0) fail("pidns", index, errno, NULL, NULL, 126);
  if (init > 0) {
    close(sv[1]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    outer_main(sv[0], init);
  }
  close(sv[0]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd pf = {sv[1], POLLIN, 0}; /* the outer launcher died before prctl */
  if (poll(&pf, 1, 0) > 0 && (pf.revents & POLLHUP)) _exit(126);
  pid_t workload = fork();
  if (workload < 0) fail("pidns", index, errno, NULL, NULL, 126);
  if (workload > 0) init_main(sv[1], workload);
  sigprocmask(SIG_SETMASK, &old, NULL);
  pid_sock = sv[1];
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    fail("pidns", index, errno, "/proc", NULL, 126);
}

/* Root's map is written from outside: a process that unshared its user
 * namespace can map only itself, so a child left in the parent namespace
 * (with CAP_SETUID there) writes it once we have unshared. Returns 0 or an
 * errno, the failing path in *bad. */
static int write_root_maps(const char **bad) {
  int go[2];
  if (pipe2(go, O_CLOEXEC) < 0) return errno;
  pid_t parent = getpid(), writer = fork();
  if (writer < 0) return errno;
  if (writer == 0) {
    char path[64], c;
    close(go[1]);
    ssize_t n;
    do n = read(go[0], &c, 1); while (n < 0 && errno == EINTR);
    if (n != 1) _exit(1);
    snprintf(path, sizeof path, "/proc/%ld/uid_map", (long)parent);
    if (write_file(path, "0 0 4294967294") < 0) _exit(2);
    snprintf(path, sizeof path, "/proc/%ld/gid_map", (long)parent);
    _exit(write_file(path, "0 0 4294967294") < 0 ? 3 : 0);
  }
  close(go[0]);
  int err = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
  if (!err && write(go[1], "x", 1) != 1) err = errno;
  close(go[1]);
  int st = 0;
  while (waitpid(writer, &st, 0) < 0 && errno == EINTR) {}
  if (err) return err;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  *bad = WIFEXITED(st) && WEXITSTATUS(st) == 3 ? "/proc/self/gid_map" : "/proc/self/uid_map";
  return EPERM;
}

/* Every uid gets a user namespace, real root too: the mounts it inherits are then
 * locked (nothing they cover can be revealed) and its capabilities count only
 * inside. Root maps every uid but (uid_t)-2 onto itself, so that files of any
 * owner stay writable by their owner (a full 0..2^32-1 map would look like the
 * initial namespace to tools that check for it). Others map only themselves. */
/* Maps the caller's own uid and gid (taken before unshare: unmapped, getuid() says 65534). */
static void map_self(int i, uid_t uid, gid_t gid) {
  char map[64];
  /* mapping uid 0 of the parent namespace needs CAP_SETFCAP there: uid 0 inside another sandbox has none */
  const char *why = uid == 0 ? "uid 0 without capabilities (inside another sandbox, such as `branching run`) "
                                    "cannot map itself into a nested user namespace: the kernel requires CAP_SETFCAP"
                                  : NULL;
  if (write_file("/proc/self/setgroups", "deny") < 0) fail("userns", i, errno, "/proc/self/setgroups", NULL, 126);
  snprintf(map, sizeof map, "%u %u 1", (unsigned)uid, (unsigned)uid);
  if (write_file("/proc/self/uid_map", map) < 0) fail("userns", i, errno, "/proc/self/uid_map", why, 126);
  snprintf(map, sizeof map, "%u %u 1", (unsigned)gid, (unsigned)gid);
  if (write_file("/proc/self/gid_map", map) < 0) fail("userns", i, errno, "/proc/self/gid_map", why, 126);
}

static void enter_userns(int i) {
  const char *bad = NULL;
  uid_t uid = getuid();
  gid_t gid = getgid();
  /* uid 0 without CAP_SETUID over its namespace cannot map every uid (EPERM): it maps only itself */
  int err = uid == 0 ? write_root_maps(&bad) : -1;
  if (err == -1 || err == EPERM) {
    if (err == -1 && unshare(CLONE_NEWUSER) < 0) fail("userns", i, errno, NULL, NULL, 126);
    map_self(i, uid, gid);
  } else if (err) {
    fail("userns", i, err, bad, NULL, 126);
  }
  in_userns = 1;
}

static void apply(struct op *o, int i) {
  const char *name = names[o->kind];
  char *p1 = o->f[1];
  switch (o->kind) {
  case USERNS: enter_userns(i); return;
  case MOUNTNS:
    if (unshare(CLONE_NEWNS) < 0) fail(name, i, errno, NULL, NULL, 126);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(name, i, errno, "/", NULL, 126);
    did_mountns = 1;
    return;
  case PIDNS: enter_pidns(i); return;
  case NETNS: {
    if (unshare(CLONE_NEWNET) < 0) fail(name, i, errno, NULL, NULL, 126);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(name, i, errno, "lo", NULL, 126);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(name, i, errno, "lo", NULL, 126);
    close(s);
    deny_unix = 1;
    return;
  }
  case OVERLAY:
    if (mount_overlay(p1, o->f[2], o->f[3], o->f[4], o->nf == 6 ? o->f[5] : NULL) < 0)
      fail(name, i, errno, p1, NULL, 126);
    return;
  case BIND:
    if (bind_mount(p1, o->f[2], !strcmp(o->f[3], "ro")) < 0) fail(name, i, errno, o->f[2], NULL, 126);
    return;
  case TMPFS: {
    char data[32];
    snprintf(data, sizeof data, "mode=%s", o->f[2]);
    if (mount("tmpfs", p1, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) fail(name, i, errno, p1, NULL, 126);
    return;
  }
  case RDONLY:
  case WRITABLE: {
    unsigned long long set = o->kind == RDONLY ? MOUNT_ATTR_RDONLY : 0, clr = MOUNT_ATTR_RDONLY - set;
    if (o->kind == RDONLY && mount_setattr_path(p1, set, clr) == 0) return;
    if (o->kind == RDONLY && errno != EINVAL) fail(name, i, errno, p1, NULL, 126);
    /* not a mount root (EINVAL), or `writable`: bind it onto itself first */
    if (mount(p1, p1, NULL, MS_BIND | MS_REC, NULL) < 0 || mount_setattr_path(p1, set, clr) < 0)
      fail(name, i, errno, p1, NULL, 126);
    return;
  }
  case CHDIR:
    if (chdir(p1) < 0) fail(name, i, errno, p1, NULL, 126);
    return;
  case HELPER: start_helper(o, i); return;
  }
}

static int valid_field(enum kind k, int j, const char *s) {
  if (k == TMPFS && j == 2) return strspn(s, "01234567") == strlen(s) && strlen(s) >= 3 && strlen(s) <= 4;
  if (k == BIND && j == 3) return !strcmp(s, "ro") || !strcmp(s, "rw");
  if (k == OVERLAY && j == 5) return options_ok(s);
  return s[0] == '/' && !strchr(s, ',');
}

int main(int argc, char **argv) {
  (void)argc;
  const char *fdtext = getenv("BRANCHING_LAUNCH_STATUS_FD"), *spec_env = getenv("BRANCHING_LAUNCH_SPEC");
  char *exec_path = getenv("BRANCHING_LAUNCH_EXEC");
  if (fdtext) {
    char *end;
    long n = strtol(fdtext, &end, 10);
    if (*fdtext && !*end && n >= 0 && n < INT_MAX && fcntl((int)n, F_SETFD, FD_CLOEXEC) == 0) status_fd = (int)n;
  }
  char *spec = strdup(spec_env ? spec_env : "");
  exec_path = exec_path ? strdup(exec_path) : NULL;
  die_with_parent();
  drop_inherited_helper();
  unsetenv("BRANCHING_LAUNCH_SPEC"), unsetenv("BRANCHING_LAUNCH_EXEC"), unsetenv("BRANCHING_LAUNCH_STATUS_FD");
  unsetenv("BRANCHING_LAUNCH_PARENT");
  if (!spec || !exec_path || exec_path[0] != '/')
    fail("spec", -1, EINVAL, NULL, "BRANCHING_LAUNCH_EXEC must be an absolute path", 126);

  static struct op ops[MAX_OPS];
  int nops = 0;
  for (char *save = NULL, *line = strtok_r(spec, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    struct op *o = &ops[nops];
    if (nops == MAX_OPS) fail("spec", nops, E2BIG, NULL, "too many operations", 126);
    o->nf = 0;
    for (char *p = line, *tab;; p = tab + 1) {
      if (o->nf == MAX_FIELDS) fail(line, nops, EINVAL, NULL, "too many fields", 126);
      o->f[o->nf++] = p;
      if (!(tab = strchr(p, '\t'))) break;
      *tab = 0;
    }
    int k = 0;
    while (k <= HELPER && strcmp(o->f[0], names[k])) k++;
    if (k > HELPER) fail(o->f[0], nops, EINVAL, NULL, "unknown operation", 126);
    o->kind = (enum kind)k;
    if (o->nf < min_fields[k] || o->nf > max_fields[k]) fail(o->f[0], nops, EINVAL, NULL, "wrong number of fields", 126);
    for (int j = 1; j < o->nf; j++)
      if (!valid_field(o->kind, j, o->f[j])) fail(o->f[0], nops, EINVAL, o->f[j], "invalid field", 126);
    nops++;
  }
  for (int i = 0; i < nops; i++) apply(&ops[i], i);

  drop_privileges();
  if (deny_unix) deny_unix_sockets();
  long pid = getpid();
  if (pid_sock >= 0) { /* our pid as the caller sees it, from the outer launcher */
    char buf[32] = "P";
    ssize_t n;
    send(pid_sock, buf, 1, MSG_NOSIGNAL);
    do n = recv(pid_sock, buf, sizeof buf - 1, 0); while (n < 0 && errno == EINTR);
    if (n <= 0) fail("pidns", -1, n < 0 ? errno : EPIPE, NULL, "no pid from the outer launcher", 126);
    buf[n] = 0;
    pid = atol(buf);
    close(pid_sock);
  }
  setenv("BRANCHING_SANDBOX", "1", 1);
  if (status_fd >= 0) {
    char line[64];
    int len = snprintf(line, sizeof line, "{\"ok\":true,\"pid\":%ld}\n", pid);
    write_all(status_fd, line, (size_t)len);
  }
  argv[0] = exec_path;
  execv(exec_path, argv);
  fail("exec", -1, errno, exec_path, NULL, 127);
}
