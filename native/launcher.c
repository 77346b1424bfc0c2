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
 * The `helper` op starts the privileged mount helper (mount-helper.c), `pidns`
 * the outer launcher and init (pidns.c); the mount primitives and the failure
 * line are shared with the helper (mounts.c).
 * Every fd the launcher opens is close-on-exec, and every blocking call is
 * retried on EINTR. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mount-helper.h"
#include "mounts.h"
#include "pidns.h"

enum kind { USERNS, MOUNTNS, PIDNS, NETNS, OVERLAY, BIND, TMPFS, RDONLY, WRITABLE, CHDIR, HELPER };
static const char *const names[] = {"userns", "mountns", "pidns", "netns", "overlay", "bind",
                                    "tmpfs", "rdonly", "writable", "chdir", "helper"};
static const int min_fields[] = {1, 1, 1, 1, 5, 4, 3, 2, 2, 2, 2};
static const int max_fields[] = {1, 1, 1, 1, 6, 4, 3, 2, 2, 2, 2};
#define MAX_OPS 256
#define MAX_FIELDS 6
struct op { enum kind kind; int nf; char *f[MAX_FIELDS]; };

static int status_fd = -1, in_userns = 0, did_mountns = 0, pid_sock = -1, deny_unix = 0;

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
  ssize_t n = RETRY_EINTR(write(fd, text, strlen(text)));
  int saved = errno;
  close(fd);
  errno = saved;
  return n < 0 ? -1 : 0;
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

/* ---- the mount helper's client end --------------------------------------- */
#define HELPER_FD_MIN 100

/* Every Node process marks fds 0-15, and the ones after them up to the first
 * closed fd, close-on-exec at startup (libuv's uv_disable_stdio_inheritance).
 * A high fd survives that, so node -> node -> ... descendants inherit it. */
static int high_fd(int fd) {
  struct rlimit lim;
  long want = HELPER_FD_MIN;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && (long)lim.rlim_cur <= want)
    want = (long)lim.rlim_cur - 1;
  int high = want > fd ? fcntl(fd, F_DUPFD_CLOEXEC, (int)want) : -1;
  if (high < 0) return fd;
  close(fd);
  return high;
}

/* The workload inherits the helper's socket and finds it in BRANCHING_HELPER_FD. */
static void start_helper(struct op *o, int index) {
  int client = -1, err = mount_helper_start(o->f[1], in_userns, &client);
  if (err) fail("helper", index, err, NULL, NULL, 126);
  client = high_fd(client);
  char num[16];
  snprintf(num, sizeof num, "%d", client);
  if (fcntl(client, F_SETFD, 0) < 0 || setenv("BRANCHING_HELPER_FD", num, 1) < 0)
    fail("helper", index, errno, NULL, NULL, 126);
}

/* A pid namespace needs its own /proc, hence a mount namespace first. */
static void enter_pidns(int index) {
  const char *bad = NULL;
  if (!did_mountns) fail("pidns", index, EINVAL, NULL, "pidns needs a mountns op before it (for /proc)", 126);
  int err = pidns_enter(status_fd, &pid_sock, &bad);
  if (err) fail("pidns", index, err, bad, NULL, 126);
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
    if (RETRY_EINTR(read(go[0], &c, 1)) != 1) _exit(1);
    snprintf(path, sizeof path, "/proc/%ld/uid_map", (long)parent);
    if (write_file(path, "0 0 4294967294") < 0) _exit(2);
    snprintf(path, sizeof path, "/proc/%ld/gid_map", (long)parent);
    _exit(write_file(path, "0 0 4294967294") < 0 ? 3 : 0);
  }
  close(go[0]);
  int err = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
  if (!err && RETRY_EINTR(write(go[1], "x", 1)) != 1) err = errno;
  close(go[1]);
  int st = 0;
  RETRY_EINTR(waitpid(writer, &st, 0));
  if (err) return err;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  *bad = WIFEXITED(st) && WEXITSTATUS(st) == 3 ? "/proc/self/gid_map" : "/proc/self/uid_map";
  return EPERM;
}

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

/* Every uid gets a user namespace, real root too: the mounts it inherits are then
 * locked (nothing they cover can be revealed) and its capabilities count only
 * inside. Root maps every uid but (uid_t)-2 onto itself, so that files of any
 * owner stay writable by their owner (a full 0..2^32-1 map would look like the
 * initial namespace to tools that check for it). Others map only themselves. */
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

/* ---- the operations ------------------------------------------------------ */

static void enter_mountns(int i) {
  if (unshare(CLONE_NEWNS) < 0) fail("mountns", i, errno, NULL, NULL, 126);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail("mountns", i, errno, "/", NULL, 126);
  did_mountns = 1;
}

/* A private network with only loopback up; Unix sockets are refused later (deny_unix_sockets). */
static void enter_netns(int i) {
  if (unshare(CLONE_NEWNET) < 0) fail("netns", i, errno, NULL, NULL, 126);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("netns", i, errno, "lo", NULL, 126);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("netns", i, errno, "lo", NULL, 126);
  close(s);
  deny_unix = 1;
}

static void mount_tmpfs(const char *target, const char *mode, int i) {
  char data[32];
  snprintf(data, sizeof data, "mode=%s", mode);
  if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) fail("tmpfs", i, errno, target, NULL, 126);
}

/* `rdonly` or `writable` over the whole subtree at `path`. */
static void set_writability(const char *name, const char *path, int ro, int i) {
  unsigned long long set = ro ? MOUNT_ATTR_RDONLY : 0, clr = MOUNT_ATTR_RDONLY - set;
  if (ro && mount_setattr_path(path, set, clr) == 0) return;
  if (ro && errno != EINVAL) fail(name, i, errno, path, NULL, 126);
  /* not a mount root (EINVAL), or `writable`: bind it onto itself first */
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 || mount_setattr_path(path, set, clr) < 0)
    fail(name, i, errno, path, NULL, 126);
}

static void apply(struct op *o, int i) {
  const char *name = names[o->kind];
  char *p1 = o->f[1];
  switch (o->kind) {
  case USERNS: enter_userns(i); return;
  case MOUNTNS: enter_mountns(i); return;
  case PIDNS: enter_pidns(i); return;
  case NETNS: enter_netns(i); return;
  case OVERLAY:
    if (mount_overlay(p1, o->f[2], o->f[3], o->f[4], o->nf == 6 ? o->f[5] : NULL, in_userns) < 0)
      fail(name, i, errno, p1, NULL, 126);
    return;
  case BIND:
    if (bind_mount(p1, o->f[2], !strcmp(o->f[3], "ro")) < 0) fail(name, i, errno, o->f[2], NULL, 126);
    return;
  case TMPFS: mount_tmpfs(p1, o->f[2], i); return;
  case RDONLY:
  case WRITABLE: set_writability(name, p1, o->kind == RDONLY, i); return;
  case CHDIR:
    if (chdir(p1) < 0) fail(name, i, errno, p1, NULL, 126);
    return;
  case HELPER: start_helper(o, i); return;
  }
}

/* ---- the spec -------------------------------------------------------------- */

static int valid_field(enum kind k, int j, const char *s) {
  if (k == TMPFS && j == 2) return strspn(s, "01234567") == strlen(s) && strlen(s) >= 3 && strlen(s) <= 4;
  if (k == BIND && j == 3) return !strcmp(s, "ro") || !strcmp(s, "rw");
  if (k == OVERLAY && j == 5) return options_ok(s);
  return s[0] == '/' && !strchr(s, ',');
}

/* Splits one spec line (cut in place at its TABs) into op `index`, checking its kind and fields. */
static void parse_op(char *line, int index, struct op *o) {
  o->nf = 0;
  for (char *p = line, *tab;; p = tab + 1) {
    if (o->nf == MAX_FIELDS) fail(line, index, EINVAL, NULL, "too many fields", 126);
    o->f[o->nf++] = p;
    if (!(tab = strchr(p, '\t'))) break;
    *tab = 0;
  }
  int k = 0;
  while (k <= HELPER && strcmp(o->f[0], names[k])) k++;
  if (k > HELPER) fail(o->f[0], index, EINVAL, NULL, "unknown operation", 126);
  o->kind = (enum kind)k;
  if (o->nf < min_fields[k] || o->nf > max_fields[k]) fail(o->f[0], index, EINVAL, NULL, "wrong number of fields", 126);
  for (int j = 1; j < o->nf; j++)
    if (!valid_field(o->kind, j, o->f[j])) fail(o->f[0], index, EINVAL, o->f[j], "invalid field", 126);
}

/* Every line is parsed and checked before the first op is applied. */
static int parse_spec(char *spec, struct op *ops) {
  int nops = 0;
  for (char *save = NULL, *line = strtok_r(spec, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (nops == MAX_OPS) fail("spec", nops, E2BIG, NULL, "too many operations", 126);
    parse_op(line, nops, &ops[nops]);
    nops++;
  }
  return nops;
}

/* ---- main -------------------------------------------------------------------- */

/* Takes the status fd (made close-on-exec: the workload never sees it) and the
 * launch variables, which the workload does not inherit either. */
static void read_launch_env(char **spec, char **exec_path) {
  const char *fdtext = getenv("BRANCHING_LAUNCH_STATUS_FD"), *spec_env = getenv("BRANCHING_LAUNCH_SPEC");
  const char *exec_env = getenv("BRANCHING_LAUNCH_EXEC");
  if (fdtext) {
    char *end;
    long n = strtol(fdtext, &end, 10);
    if (*fdtext && !*end && n >= 0 && n < INT_MAX && fcntl((int)n, F_SETFD, FD_CLOEXEC) == 0) status_fd = (int)n;
  }
  *spec = strdup(spec_env ? spec_env : "");
  *exec_path = exec_env ? strdup(exec_env) : NULL;
  die_with_parent();
  drop_inherited_helper();
  unsetenv("BRANCHING_LAUNCH_SPEC"), unsetenv("BRANCHING_LAUNCH_EXEC"), unsetenv("BRANCHING_LAUNCH_STATUS_FD");
  unsetenv("BRANCHING_LAUNCH_PARENT");
  if (!*spec || !*exec_path || (*exec_path)[0] != '/')
    fail("spec", -1, EINVAL, NULL, "BRANCHING_LAUNCH_EXEC must be an absolute path", 126);
}

/* Our pid as the caller sees it: in a pid namespace, the outer launcher's answer. */
static long caller_visible_pid(void) {
  if (pid_sock < 0) return getpid();
  char buf[32] = "P";
  RETRY_EINTR(send(pid_sock, buf, 1, MSG_NOSIGNAL));
  ssize_t n = RETRY_EINTR(recv(pid_sock, buf, sizeof buf - 1, 0));
  if (n <= 0) fail("pidns", -1, n < 0 ? errno : EPIPE, NULL, "no pid from the outer launcher", 126);
  buf[n] = 0;
  close(pid_sock);
  return atol(buf);
}

static void report_ready(long pid) {
  if (status_fd < 0) return;
  char line[64];
  int len = snprintf(line, sizeof line, "{\"ok\":true,\"pid\":%ld}\n", pid);
  write_all(status_fd, line, (size_t)len);
}

int main(int argc, char **argv) {
  (void)argc;
  static struct op ops[MAX_OPS];
  char *spec, *exec_path;
  read_launch_env(&spec, &exec_path);
  int nops = parse_spec(spec, ops);
  for (int i = 0; i < nops; i++) apply(&ops[i], i);

  drop_privileges();
  if (deny_unix) deny_unix_sockets();
  long pid = caller_visible_pid();
  setenv("BRANCHING_SANDBOX", "1", 1);
  report_ready(pid);
  argv[0] = exec_path;
  execv(exec_path, argv);
  fail("exec", -1, errno, exec_path, NULL, 127);
}
