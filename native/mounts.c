/* See mounts.h. */
#define _GNU_SOURCE
#include "mounts.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errname.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

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

size_t error_json(char *buf, size_t cap, const char *op, int index, int err, const char *path, const char *msg) {
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

void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = RETRY_EINTR(write(fd, buf, len));
    if (n <= 0) return;
    buf += n, len -= (size_t)n;
  }
}

void close_all_but(int keep) {
  if (keep > 0) syscall(SYS_close_range, 0U, (unsigned)keep - 1, 0U);
  syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U);
}

int set_caps(unsigned long long keep) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{(unsigned)keep, (unsigned)keep, 0},
                                           {(unsigned)(keep >> 32), (unsigned)(keep >> 32), 0}};
  return (int)syscall(SYS_capset, &hdr, data);
}

int mount_setattr_path(const char *path, unsigned long long set, unsigned long long clr) {
  struct mount_attr attr = {set, clr, 0, 0};
  return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr);
}

int options_ok(const char *opts) {
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

int mount_overlay(const char *target, const char *lowers, const char *upper, const char *work, const char *opts,
                  int userxattr) {
  char data[8192];
  if (opts && *opts && !options_ok(opts)) return errno = EINVAL, -1;
  int n = snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s%s%s%s", lowers, upper, work,
                   userxattr ? ",userxattr" : "", opts && *opts ? "," : "", opts ? opts : "");
  if (n < 0 || (size_t)n >= sizeof data) return errno = ENAMETOOLONG, -1;
  /* mount(2) reads one page of options: past it the last lower dir would be cut short (ENOENT) */
  if (n >= sysconf(_SC_PAGESIZE)) return errno = E2BIG, -1;
  return mount("overlay", target, "overlay", 0, data);
}

int bind_mount(const char *src, const char *dst, int ro) {
  if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
  return ro ? mount_setattr_path(dst, MOUNT_ATTR_RDONLY, 0) : 0;
}
