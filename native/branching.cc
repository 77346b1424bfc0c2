// The private binding (typed in src/native.d.ts): syscalls Node lacks. Every
// failure is a Node-style system error: .code ('ENOENT'), .errno (negative),
// .syscall and .path (and .dest where two paths are involved).
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/time.h>
#include <algorithm>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#endif
#ifdef __APPLE__
#include <sys/clonefile.h>
#endif

#include "addon.h"

extern "C" {
#include "errname.h"
}

// The package version this binary was built for (binding.gyp passes it from package.json), so that
// the loader can tell a stale binary from a current one.
#define BRANCHING_STR2(x) #x
#define BRANCHING_STR(x) BRANCHING_STR2(x)

namespace branching {

#ifdef __linux__
// glibc 2.33 gave stat, fstat, lstat, fstatat and mknod versioned symbols of their own (before, they
// were inline wrappers of __xstat & co.), so calling them from a binary built with a newer glibc
// requires 2.33 at load time. The system calls themselves keep the prebuilt addon loadable down to
// glibc 2.28, Node 20's own floor. The kernel's struct stat is glibc's on every 64-bit Linux.
int StatAt(int dirfd, const char *path, struct stat *st, int flags) {
#ifdef SYS_newfstatat
  return static_cast<int>(syscall(SYS_newfstatat, dirfd, path, st, flags));
#else
  return fstatat(dirfd, path, st, flags);
#endif
}
int StatFd(int fd, struct stat *st) { return StatAt(fd, "", st, AT_EMPTY_PATH); }
#endif

Napi::Error ErrnoError(Napi::Env env, int err, const char *syscall, const std::string *path,
                       const std::string *dest) {
  const char *code = branching_errname(err);
  std::string message = std::string(code) + ": " + strerror(err) + ", " + syscall;
  if (path) message += " '" + *path + "'";
  if (dest) message += " -> '" + *dest + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("code", Napi::String::New(env, code));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (path) error.Set("path", Napi::String::New(env, *path));
  if (dest) error.Set("dest", Napi::String::New(env, *dest));
  return error;
}

#ifdef __linux__
// Copies the data extents of `in` to `out` (SEEK_DATA/SEEK_HOLE), so holes stay holes;
// copy_file_range where the kernel can, read/write where it cannot. Returns 0 or an errno.
int CopyExtents(int in, int out, off_t size) {
  std::vector<char> buf;
  for (off_t data = 0; data < size;) {
    data = lseek(in, data, SEEK_DATA);
    if (data < 0) return errno == ENXIO ? 0 : errno;  // ENXIO: only a hole is left
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) return errno;
    for (off_t at = data; at < hole;) {
      loff_t src = at, dst = at;
      ssize_t n = copy_file_range(in, &src, out, &dst, static_cast<size_t>(hole - at), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        if (buf.empty()) buf.resize(1 << 20);
        n = pread(in, buf.data(), std::min(buf.size(), static_cast<size_t>(hole - at)), at);
        if (n > 0 && pwrite(out, buf.data(), static_cast<size_t>(n), at) != n) return errno ? errno : EIO;
      }
      if (n < 0) return errno;
      if (n == 0) return 0;  // the file shrank meanwhile
      at += n;
    }
    data = hole;
  }
  return 0;
}
#endif

// A string argument, without NUL (a path cut short at a NUL would name another file).
std::string Str(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

}  // namespace branching

namespace {

using branching::ErrnoError;
using branching::Str;
#ifdef __linux__
using branching::CopyExtents;
using branching::StatAt;
using branching::StatFd;
#endif

[[noreturn]] void Throw(Napi::Env env, int err, const char *syscall, const std::string *path = nullptr,
                        const std::string *dest = nullptr) {
  throw ErrnoError(env, err, syscall, path, dest);
}

bool OptStr(const Napi::CallbackInfo &info, size_t i, const char *name, std::string *out) {
  if (info[i].IsNull() || info[i].IsUndefined()) return false;
  *out = Str(info, i, name);
  return true;
}

int Int(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t Uint(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

#ifndef __linux__
[[noreturn]] void NoSys(Napi::Env env, const char *syscall, const std::string *path = nullptr) {
  Throw(env, ENOSYS, syscall, path);
}
#endif

Napi::Value Flock(const Napi::CallbackInfo &info) {
  int fd = Int(info, 0, "fd");
  std::string op = Str(info, 1, "operation");
  bool nonBlocking = info[2].ToBoolean();
  int how = op == "shared" ? LOCK_SH : op == "exclusive" ? LOCK_EX : op == "unlock" ? LOCK_UN : -1;
  if (how < 0) throw Napi::TypeError::New(info.Env(), "operation must be 'shared', 'exclusive' or 'unlock'");
  if (nonBlocking) how |= LOCK_NB;
  int r;
  do r = flock(fd, how); while (r < 0 && errno == EINTR);
  if (r < 0 && nonBlocking && errno == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
  if (r < 0) Throw(info.Env(), errno, "flock");
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value CloneFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string src = Str(info, 0, "src"), dest = Str(info, 1, "dest");
#if defined(__linux__) && defined(FICLONE)
  int in;
  do in = open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY); while (in < 0 && errno == EINTR);
  if (in < 0) Throw(env, errno, "open", &src);
  struct stat st;
  if (StatFd(in, &st) < 0) {
    int e = errno;
    close(in);
    Throw(env, e, "fstat", &src);
  }
  if (!S_ISREG(st.st_mode)) {
    close(in);
    Throw(env, EINVAL, "ioctl_ficlone", &src, &dest);
  }
  int out;
  do out = open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, st.st_mode & 07777);
  while (out < 0 && errno == EINTR);
  if (out < 0) {
    int e = errno;
    close(in);
    Throw(env, e, "open", &dest);
  }
  int r;
  do r = ioctl(out, FICLONE, in); while (r < 0 && errno == EINTR);
  int e = errno;
  const char *call = "ioctl_ficlone";
  if (r == 0 && fchmod(out, st.st_mode & 07777) < 0) r = -1, e = errno, call = "fchmod";
  close(in);
  if (close(out) < 0 && r == 0) r = -1, e = errno, call = "close";
  if (r < 0) {
    unlink(dest.c_str());
    Throw(env, e == ENOTTY ? EOPNOTSUPP : e, call, &src, &dest);
  }
#elif defined(__APPLE__)
  if (clonefile(src.c_str(), dest.c_str(), CLONE_NOFOLLOW) < 0) Throw(env, errno, "clonefile", &src, &dest);
#else
  Throw(env, ENOSYS, "ioctl_ficlone", &src, &dest);
#endif
  return env.Undefined();
}


// copyFile(src, dest): a reflink where the filesystem has them, else a copy that keeps holes;
// mode and timestamps are the source's. dest must not exist.
Napi::Value CopyFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string src = Str(info, 0, "src"), dest = Str(info, 1, "dest");
#ifdef __linux__
  int in;
  do in = open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW); while (in < 0 && errno == EINTR);
  if (in < 0) Throw(env, errno, "open", &src);
  struct stat st;
  if (StatFd(in, &st) < 0 || !S_ISREG(st.st_mode)) {
    int e = S_ISREG(st.st_mode) ? errno : EINVAL;
    close(in);
    Throw(env, e, "copyfile", &src, &dest);
  }
  int out;
  do out = open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
  while (out < 0 && errno == EINTR);
  if (out < 0) {
    int e = errno;
    close(in);
    Throw(env, e, "open", &dest);
  }
  int e = 0;
  const char *call = "copy_file_range";
  if (ioctl(out, FICLONE, in) != 0) {
    e = CopyExtents(in, out, st.st_size);
    if (!e && ftruncate(out, st.st_size) < 0) e = errno, call = "ftruncate";
  }
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (!e && fchmod(out, st.st_mode & 07777) < 0) e = errno, call = "fchmod";
  if (!e && futimens(out, times) < 0) e = errno, call = "futimens";
  close(in);
  if (close(out) < 0 && !e) e = errno, call = "close";
  if (e) {
    unlink(dest.c_str());
    Throw(env, e, call, &src, &dest);
  }
#else
  Throw(env, ENOSYS, "copyfile", &src, &dest);
#endif
  return env.Undefined();
}

#ifdef __linux__
// One step of an iterative rm -rf: the first entry of `fd` other than . and .., or "" when it is empty.
std::string FirstEntry(int fd, unsigned char *type) {
  int copy = dup(fd);
  DIR *dir = copy < 0 ? nullptr : fdopendir(copy);
  if (!dir) {
    if (copy >= 0) close(copy);
    return "";
  }
  rewinddir(dir);  // a dup shares the offset: start over, every time
  std::string name;
  while (struct dirent *e = readdir(dir)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    name = e->d_name;
    *type = e->d_type;
    break;
  }
  closedir(dir);
  return name;
}
#endif

// removeTree(path): rm -rf without recursion and without long paths (fd-relative, one level
// open at a time, so a 10,000-deep tree goes too), through read-only and mode-000 directories;
// it never follows a symlink and never crosses into another mount (EXDEV). A missing path is fine.
Napi::Value RemoveTree(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info, 0, "path");
#ifdef __linux__
  struct stat root;
  if (StatAt(AT_FDCWD, path.c_str(), &root, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return env.Undefined();
    Throw(env, errno, "lstat", &path);
  }
  if (!S_ISDIR(root.st_mode)) {
    if (unlink(path.c_str()) < 0 && errno != ENOENT) Throw(env, errno, "unlink", &path);
    return env.Undefined();
  }
  chmod(path.c_str(), 0700);
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) Throw(env, errno, "open", &path);
  std::vector<std::string> names;  // the path below `path`, one name per level
  for (;;) {
    unsigned char type = DT_UNKNOWN;
    std::string name = FirstEntry(fd, &type);
    if (name.empty()) {
      if (names.empty()) break;
      int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int e = errno;
      close(fd);
      if (parent < 0) Throw(env, e, "openat", &path);
      fd = parent;
      if (unlinkat(fd, names.back().c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) {
        e = errno;
        close(fd);
        Throw(env, e, "rmdir", &path);
      }
      names.pop_back();
      continue;
    }
    struct stat st;
    bool isDir = type == DT_DIR;
    if (type == DT_UNKNOWN && StatAt(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) isDir = S_ISDIR(st.st_mode);
    if (!isDir) {
      if (unlinkat(fd, name.c_str(), 0) < 0 && errno != ENOENT) {
        int e = errno;
        close(fd);
        Throw(env, e, "unlink", &path);
      }
      continue;
    }
    if (StatAt(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) st.st_mode = 0, st.st_dev = root.st_dev;
    if (st.st_dev != root.st_dev) {
      close(fd);
      Throw(env, EXDEV, "rmdir", &path);  // a mount inside: unmount it first, never delete through it
    }
    // mode-000 (overlayfs work dirs) and read-only dirs: we must read, search and empty it
    if ((st.st_mode & 0700) != 0700) fchmodat(fd, name.c_str(), 0700, 0);
    int child = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) {
      int e = errno;
      close(fd);
      Throw(env, e, "openat", &path);
    }
    close(fd);
    fd = child;
    names.push_back(name);
  }
  close(fd);
  if (rmdir(path.c_str()) < 0 && errno != ENOENT) Throw(env, errno, "rmdir", &path);
#else
  Throw(env, ENOSYS, "removetree", &path);
#endif
  return env.Undefined();
}

Napi::Value Mount(const Napi::CallbackInfo &info) {
  std::string source = Str(info, 0, "source"), target = Str(info, 1, "target"), fstype, data;
  bool hasType = OptStr(info, 2, "fstype", &fstype);
  uint32_t flags = Uint(info, 3, "flags");
  bool hasData = OptStr(info, 4, "data", &data);
#ifdef __linux__
  // mount(2) reads one page of options: past it a path would be cut short and mean another one
  if (hasData && data.size() >= static_cast<size_t>(sysconf(_SC_PAGESIZE))) Throw(info.Env(), E2BIG, "mount", &target);
  if (mount(source.c_str(), target.c_str(), hasType ? fstype.c_str() : nullptr, flags,
            hasData ? data.c_str() : nullptr) < 0)
    Throw(info.Env(), errno, "mount", &target);
  return info.Env().Undefined();
#else
  (void)hasType, (void)flags, (void)hasData;
  NoSys(info.Env(), "mount", &target);
#endif
}

Napi::Value Umount2(const Napi::CallbackInfo &info) {
  std::string target = Str(info, 0, "target");
  int flags = Int(info, 1, "flags");
#ifdef __linux__
  if (umount2(target.c_str(), flags) < 0) Throw(info.Env(), errno, "umount2", &target);
  return info.Env().Undefined();
#else
  (void)flags;
  NoSys(info.Env(), "umount2", &target);
#endif
}

Napi::Value Getxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info, 0, "path"), name = Str(info, 1, "name");
#ifdef __linux__
  for (;;) {
    ssize_t size = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size < 0 && errno == ENODATA) return env.Null();
    if (size < 0) Throw(env, errno, "lgetxattr", &path);
    std::vector<char> buf(static_cast<size_t>(size) + 1);
    ssize_t got = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (got < 0 && errno == ERANGE) continue;  // grew in between
    if (got < 0 && errno == ENODATA) return env.Null();
    if (got < 0) Throw(env, errno, "lgetxattr", &path);
    return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(got));
  }
#else
  NoSys(env, "lgetxattr", &path);
#endif
}

Napi::Value Setxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info, 0, "path"), name = Str(info, 1, "name"), value;
  if (info[2].IsBuffer()) {
    auto b = info[2].As<Napi::Buffer<char>>();
    value.assign(b.Data(), b.Length());
  } else {
    value = Str(info, 2, "value");
  }
  int flags = Int(info, 3, "flags");
#ifdef __linux__
  if (lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), flags) < 0)
    Throw(env, errno, "lsetxattr", &path);
  return env.Undefined();
#else
  (void)flags;
  NoSys(env, "lsetxattr", &path);
#endif
}

Napi::Value Listxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info, 0, "path");
#ifdef __linux__
  for (;;) {
    ssize_t size = llistxattr(path.c_str(), nullptr, 0);
    if (size < 0) Throw(env, errno, "llistxattr", &path);
    std::vector<char> buf(static_cast<size_t>(size) + 1);
    ssize_t got = llistxattr(path.c_str(), buf.data(), buf.size());
    if (got < 0 && errno == ERANGE) continue;
    if (got < 0) Throw(env, errno, "llistxattr", &path);
    Napi::Array names = Napi::Array::New(env);
    uint32_t n = 0;
    for (ssize_t i = 0; i < got;) {
      size_t len = strnlen(buf.data() + i, static_cast<size_t>(got - i));
      if (len > 0) names.Set(n++, Napi::String::New(env, buf.data() + i, len));
      i += static_cast<ssize_t>(len) + 1;
    }
    return names;
  }
#else
  NoSys(env, "llistxattr", &path);
#endif
}

Napi::Value Removexattr(const Napi::CallbackInfo &info) {
  std::string path = Str(info, 0, "path"), name = Str(info, 1, "name");
#ifdef __linux__
  if (lremovexattr(path.c_str(), name.c_str()) < 0) Throw(info.Env(), errno, "lremovexattr", &path);
  return info.Env().Undefined();
#else
  NoSys(info.Env(), "lremovexattr", &path);
#endif
}

Napi::Value Renameat2(const Napi::CallbackInfo &info) {
  std::string from = Str(info, 0, "oldPath"), to = Str(info, 1, "newPath");
  uint32_t flags = Uint(info, 2, "flags");
#if defined(__linux__) && defined(SYS_renameat2)
  if (syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) < 0)
    Throw(info.Env(), errno, "renameat2", &from, &to);
  return info.Env().Undefined();
#else
  (void)flags;
  Throw(info.Env(), ENOSYS, "renameat2", &from, &to);
#endif
}

// mknod(path, S_IFCHR|0000, makedev(0, 0)), as the system call (see StatAt): an overlayfs whiteout. Allowed
// without CAP_MKNOD since Linux 5.8 (also inside a user namespace).
Napi::Value MknodWhiteout(const Napi::CallbackInfo &info) {
  std::string path = Str(info, 0, "path");
#ifdef __linux__
  if (syscall(SYS_mknodat, AT_FDCWD, path.c_str(), S_IFCHR | 0000, 0) < 0) Throw(info.Env(), errno, "mknod", &path);
  return info.Env().Undefined();
#else
  NoSys(info.Env(), "mknod", &path);
#endif
}

// One request/response with the launcher's privileged helper. The reply comes
// back on a private socketpair passed along with the request (SCM_RIGHTS), so
// processes sharing the helper fd never read each other's replies.
Napi::Value HelperCall(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0, "fd");
  std::string request = Str(info, 1, "request");
#ifdef __linux__
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) Throw(env, errno, "socketpair");
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } cbuf;
  memset(&cbuf, 0, sizeof cbuf);
  struct iovec iov = {const_cast<char *>(request.data()), request.size()};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf.buf;
  msg.msg_controllen = sizeof cbuf.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &sv[1], sizeof(int));
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  int e = errno;
  close(sv[1]);
  if (n < 0) {
    close(sv[0]);
    Throw(env, e, "sendmsg");
  }
  char reply[16384];
  do n = recv(sv[0], reply, sizeof reply, 0); while (n < 0 && errno == EINTR);
  e = errno;
  close(sv[0]);
  if (n < 0) Throw(env, e, "recv");
  if (n == 0) Throw(env, EPIPE, "recv");  // the helper is gone
  return Napi::String::New(env, reply, static_cast<size_t>(n));
#else
  (void)fd;
  NoSys(env, "sendmsg");
#endif
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define C_(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)));
  C_(LOCK_SH) C_(LOCK_EX) C_(LOCK_UN) C_(LOCK_NB)
#ifdef __linux__
  C_(MS_RDONLY) C_(MS_NOSUID) C_(MS_NODEV) C_(MS_NOEXEC) C_(MS_SYNCHRONOUS) C_(MS_REMOUNT) C_(MS_MANDLOCK)
  C_(MS_DIRSYNC) C_(MS_NOATIME) C_(MS_NODIRATIME) C_(MS_BIND) C_(MS_MOVE) C_(MS_REC) C_(MS_SILENT)
  C_(MS_UNBINDABLE) C_(MS_PRIVATE) C_(MS_SLAVE) C_(MS_SHARED) C_(MS_RELATIME) C_(MS_STRICTATIME)
  C_(MS_LAZYTIME) C_(MNT_FORCE) C_(MNT_DETACH) C_(MNT_EXPIRE) C_(UMOUNT_NOFOLLOW)
  C_(XATTR_CREATE) C_(XATTR_REPLACE)
  c.Set("RENAME_NOREPLACE", Napi::Number::New(env, 1));
  c.Set("RENAME_EXCHANGE", Napi::Number::New(env, 2));
  c.Set("RENAME_WHITEOUT", Napi::Number::New(env, 4));
#endif
#undef C_
  c.Freeze();
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("cloneFile", Napi::Function::New(env, CloneFile, "cloneFile"));
  exports.Set("copyFile", Napi::Function::New(env, CopyFile, "copyFile"));
  exports.Set("removeTree", Napi::Function::New(env, RemoveTree, "removeTree"));
  exports.Set("copyTree", Napi::Function::New(env, branching::CopyTree, "copyTree"));
  exports.Set("scanTree", Napi::Function::New(env, branching::ScanTree, "scanTree"));
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("getxattr", Napi::Function::New(env, Getxattr, "getxattr"));
  exports.Set("setxattr", Napi::Function::New(env, Setxattr, "setxattr"));
  exports.Set("listxattr", Napi::Function::New(env, Listxattr, "listxattr"));
  exports.Set("removexattr", Napi::Function::New(env, Removexattr, "removexattr"));
  exports.Set("renameat2", Napi::Function::New(env, Renameat2, "renameat2"));
  exports.Set("mknodWhiteout", Napi::Function::New(env, MknodWhiteout, "mknodWhiteout"));
  exports.Set("helperCall", Napi::Function::New(env, HelperCall, "helperCall"));
  exports.Set("constants", Constants(env));
  exports.Set("version", Napi::String::New(env, BRANCHING_STR(BRANCHING_VERSION)));
  return exports;
}

}  // namespace

NODE_API_MODULE(branching, Init)
