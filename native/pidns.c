/* See pidns.h. */
#define _GNU_SOURCE
#include "pidns.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mounts.h"

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
static _Noreturn void outer_main(int sock, pid_t init, int status_fd) {
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
    ssize_t n = RETRY_EINTR(recvmsg(sock, &msg, 0));
    if (n <= 0) break;
    buf[n] = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (buf[0] == 'P' && c && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      int len = snprintf(buf, sizeof buf, "%d", (int)cred.pid);
      RETRY_EINTR(send(sock, buf, (size_t)len, MSG_NOSIGNAL));
    } else if (buf[0] == 'W') {
      status = atoi(buf + 1);
    }
  }
  int st;
  RETRY_EINTR(waitpid(init, &st, 0));
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
      RETRY_EINTR(send(sock, msg, (size_t)len, MSG_NOSIGNAL));
      _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
  }
}

int pidns_enter(int status_fd, int *workload_sock, const char **bad) {
  int sv[2];
  if (unshare(CLONE_NEWPID) < 0) return errno;
  int one = 1; /* before fork: creds are attached at send time only if PASSCRED is already on */
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
      setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    return errno;
  sigset_t set, old;
  sigemptyset(&set), sigaddset(&set, SIGCHLD);
  for (int i = 0; i < NFWD; i++) sigaddset(&set, fwd_sigs[i]);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid_t init = fork();
  if (init < 0) return errno;
  if (init > 0) {
    close(sv[1]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    outer_main(sv[0], init, status_fd);
  }
  close(sv[0]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd pf = {sv[1], POLLIN, 0}; /* the outer launcher died before prctl */
  if (poll(&pf, 1, 0) > 0 && (pf.revents & POLLHUP)) _exit(126);
  pid_t workload = fork();
  if (workload < 0) return errno;
  if (workload > 0) init_main(sv[1], workload);
  sigprocmask(SIG_SETMASK, &old, NULL);
  *workload_sock = sv[1];
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) return *bad = "/proc", errno;
  return 0;
}
