// Tree walks off the main thread, fd-relative and iterative, so that trees of any depth work (no
// path is ever longer than one name) and each entry costs a handful of system calls instead of
// Node's several round trips. Only one directory level is open at a time.
//   copyTree: `cp -a` of a directory, listing what it copied.
//   scanTree: every entry below a directory with its lstat, in pre-order.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

#include "addon.h"

namespace branching {
namespace {

enum CopyFlags { kPreserveOwner = 1, kHardLink = 2, kManifest = 4 };

#ifdef __linux__
constexpr int kDirOpen = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

struct Copied {
  std::string rel;
  char kind;  // 'f', 'd' or 'l'
  struct stat st;
};

// What a walk found: each entry with its stat (of the copy, for copyTree) and the ones it skipped.
struct Entries {
  std::vector<Copied> list;
  std::vector<std::string> skipped;
  Napi::Value Result(Napi::Env env) const;
};

// Where a walk failed, as a Node-style error.
struct Failure {
  int err = 0;
  const char *call = "";
  std::string where;
  Napi::Error Error(Napi::Env env) const { return ErrnoError(env, err, call, &where); }
};

struct Level {
  std::vector<std::string> names;
  size_t next = 0;
  struct stat st;     // the source directory's, applied to the copy when its children are done
  size_t parentLen;   // the length of `rel` before this directory's name was appended
};

int ReadNames(int fd, std::vector<std::string> *out) {
  int copy = dup(fd);
  DIR *dir = copy < 0 ? nullptr : fdopendir(copy);
  if (!dir) {
    int e = errno;
    if (copy >= 0) close(copy);
    return e;
  }
  errno = 0;
  while (struct dirent *e = readdir(dir)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) out->emplace_back(e->d_name);
  }
  int e = errno;
  closedir(dir);
  return e;
}

// Dense files go through copy_file_range alone; sparse ones (or a kernel without it) keep their holes.
int CopyData(int in, int out, const struct stat &st) {
  if (static_cast<off_t>(st.st_blocks) * 512 >= st.st_size) {
    for (off_t at = 0; at < st.st_size;) {
      ssize_t n = copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(st.st_size - at), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) break;
      if (n < 0) return errno;
      if (n == 0) return 0;  // the file shrank meanwhile
      at += n;
      if (at >= st.st_size) return 0;
    }
    if (st.st_size == 0) return 0;
  }
  int e = CopyExtents(in, out, st.st_size);
  if (!e && ftruncate(out, st.st_size) < 0) e = errno;
  return e;
}

class Copier {
 public:
  Copier(std::string src, std::string dest, int flags, std::set<std::string> shared, std::string linkBase)
      : src_(std::move(src)), dest_(std::move(dest)), flags_(flags), shared_(std::move(shared)),
        linkBase_(std::move(linkBase)) {}
  ~Copier() { CloseLevel(); }

  int Run();
  Napi::Value Result(Napi::Env env) const { return entries_.Result(env); }
  Napi::Error Error(Napi::Env env) const { return failure_.Error(env); }

 private:
  int Fail(int e, const char *call, bool onDest) {
    failure_ = {e, call, (onDest ? dest_ : src_) + (rel_.empty() ? "" : "/" + rel_)};
    return e;
  }
  void CloseLevel() {
    if (sfd_ >= 0) close(sfd_);
    if (dfd_ >= 0) close(dfd_);
    sfd_ = dfd_ = -1;
  }
  void Record(char kind, int dirfd, const char *name) {
    if (!(flags_ & kManifest)) return;
    Copied c{rel_, kind, {}};
    if (StatAt(dirfd, name, &c.st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) == 0) entries_.list.push_back(c);
  }
  int Enter(int sfd, int dfd, const struct stat &st, size_t parentLen);
  int Step();
  int FinishDir();
  int CopyFile(const std::string &name, const struct stat &st);
  int CopyLink(const std::string &name, const struct stat &st);
  int LinkShared(const std::string &name);
  int Descend(const std::string &name, const struct stat &st, size_t parentLen);
  // futimens for an open file or directory (empty name), utimensat for a symlink.
  int Times(int fd, const char *name, const struct stat &st, int at) {
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    return *name ? utimensat(fd, name, times, at) : futimens(fd, times);
  }

  const std::string src_, dest_;
  const int flags_;
  const std::set<std::string> shared_;
  const std::string linkBase_;
  int sfd_ = -1, dfd_ = -1;  // the level being copied: source and copy
  std::vector<Level> stack_;
  std::string rel_;
  bool cloneWorks_ = true;  // FICLONE failed once: this filesystem has no reflinks, stop asking
  Entries entries_;
  Failure failure_;
};

int Copier::Run() {
  struct stat root;
  if (StatAt(AT_FDCWD, src_.c_str(), &root, AT_SYMLINK_NOFOLLOW) < 0) return Fail(errno, "lstat", false);
  if (!S_ISDIR(root.st_mode)) return Fail(ENOTDIR, "copytree", false);
  int sfd = open(src_.c_str(), kDirOpen);
  if (sfd < 0) return Fail(errno, "open", false);
  if (mkdir(dest_.c_str(), 0700) < 0) {
    close(sfd);
    return Fail(errno, "mkdir", true);
  }
  int dfd = open(dest_.c_str(), kDirOpen);
  if (dfd < 0) {
    close(sfd);
    return Fail(errno, "open", true);
  }
  if (int e = Enter(sfd, dfd, root, 0)) return e;
  while (!stack_.empty()) {
    if (int e = Step()) return e;
  }
  return 0;
}

// Makes (sfd, dfd) the current level and lists it.
int Copier::Enter(int sfd, int dfd, const struct stat &st, size_t parentLen) {
  CloseLevel();
  sfd_ = sfd, dfd_ = dfd;
  Level level;
  level.st = st;
  level.parentLen = parentLen;
  if (int e = ReadNames(sfd_, &level.names)) return Fail(e, "scandir", false);
  stack_.push_back(std::move(level));
  return 0;
}

// Copies the next entry of the current level, or finishes the level when none is left.
int Copier::Step() {
  Level &level = stack_.back();
  if (level.next == level.names.size()) return FinishDir();
  std::string name = level.names[level.next++];
  size_t parentLen = rel_.size();
  rel_ += rel_.empty() ? name : "/" + name;
  struct stat st;
  int e = 0;
  if (StatAt(sfd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) e = Fail(errno, "lstat", false);  // gone meanwhile: nothing to copy
  } else if (S_ISDIR(st.st_mode)) {
    if (!shared_.count(name)) return Descend(name, st, parentLen);
    e = LinkShared(name);
  } else if (S_ISREG(st.st_mode)) {
    e = CopyFile(name, st);
  } else if (S_ISLNK(st.st_mode)) {
    e = CopyLink(name, st);
  } else {
    entries_.skipped.push_back(rel_);
  }
  rel_.resize(parentLen);
  return e;
}

int Copier::Descend(const std::string &name, const struct stat &st, size_t parentLen) {
  if (mkdirat(dfd_, name.c_str(), 0700) < 0) return Fail(errno, "mkdir", true);
  int sfd = openat(sfd_, name.c_str(), kDirOpen);
  if (sfd < 0) return Fail(errno, "open", false);
  int dfd = openat(dfd_, name.c_str(), kDirOpen);
  if (dfd < 0) {
    close(sfd);
    return Fail(errno, "open", true);
  }
  return Enter(sfd, dfd, st, parentLen);
}

// A directory gets its owner, mode and times after its children (so read-only ones copy too). The parent is
// opened first: ".." of a directory that just became mode 000 could not be looked up any more.
int Copier::FinishDir() {
  const Level &level = stack_.back();
  int sfd = -1, dfd = -1;
  if (stack_.size() > 1) {
    sfd = openat(sfd_, "..", kDirOpen & ~O_NOFOLLOW);
    dfd = openat(dfd_, "..", kDirOpen & ~O_NOFOLLOW);
    if (sfd < 0 || dfd < 0) {
      int e = errno;
      if (sfd >= 0) close(sfd);
      if (dfd >= 0) close(dfd);
      return Fail(e, "open", true);
    }
  }
  int e = 0;
  if ((flags_ & kPreserveOwner) && fchown(dfd_, level.st.st_uid, level.st.st_gid) < 0) e = Fail(errno, "fchown", true);
  if (!e && fchmod(dfd_, level.st.st_mode & 07777) < 0) e = Fail(errno, "fchmod", true);
  if (!e && Times(dfd_, "", level.st, AT_EMPTY_PATH) < 0) e = Fail(errno, "futimens", true);
  if (!e) Record('d', dfd_, "");
  CloseLevel();
  rel_.resize(level.parentLen);
  stack_.pop_back();
  sfd_ = sfd, dfd_ = dfd;
  return e;
}

int Copier::CopyFile(const std::string &name, const struct stat &st) {
  if (flags_ & kHardLink) {
    if (linkat(sfd_, name.c_str(), dfd_, name.c_str(), 0) == 0) {
      Record('f', dfd_, name.c_str());
      return 0;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP) return Fail(errno, "link", true);
  }
  int in = openat(sfd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (in < 0) return Fail(errno, "open", false);
  int out = openat(dfd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
  if (out < 0) {
    int e = errno;
    close(in);
    return Fail(e, "open", true);
  }
  int e = 0;
  const char *call = "copy_file_range";
  bool cloned = cloneWorks_ && ioctl(out, FICLONE, in) == 0;
  if (!cloned) cloneWorks_ = false;
  if (!cloned) e = CopyData(in, out, st);
  if (!e && (flags_ & kPreserveOwner) && fchown(out, st.st_uid, st.st_gid) < 0) e = errno, call = "fchown";
  if (!e && fchmod(out, st.st_mode & 07777) < 0) e = errno, call = "fchmod";
  if (!e && Times(out, "", st, AT_EMPTY_PATH) < 0) e = errno, call = "futimens";
  if (!e) Record('f', out, "");
  close(in);
  if (close(out) < 0 && !e) e = errno, call = "close";
  return e ? Fail(e, call, true) : 0;
}

int Copier::CopyLink(const std::string &name, const struct stat &st) {
  std::vector<char> target(static_cast<size_t>(st.st_size) + 2);
  ssize_t n = readlinkat(sfd_, name.c_str(), target.data(), target.size() - 1);
  if (n < 0) return Fail(errno, "readlink", false);
  target[static_cast<size_t>(n)] = '\0';
  if (symlinkat(target.data(), dfd_, name.c_str()) < 0) return Fail(errno, "symlink", true);
  if ((flags_ & kPreserveOwner) && fchownat(dfd_, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return Fail(errno, "lchown", true);
  Times(dfd_, name.c_str(), st, AT_SYMLINK_NOFOLLOW);  // best effort, as `cp -a`
  Record('l', dfd_, name.c_str());
  return 0;
}

// node_modules and the like: a link to the workspace's own copy instead of hundreds of MB nobody writes.
int Copier::LinkShared(const std::string &name) {
  std::string target = linkBase_ + "/" + rel_;
  if (symlinkat(target.c_str(), dfd_, name.c_str()) < 0) return Fail(errno, "symlink", true);
  Record('l', dfd_, name.c_str());
  return 0;
}

// A pre-order walk listing every entry below `root` with its lstat (kinds 'f', 'd', 'l', 'o').
class Scanner {
 public:
  explicit Scanner(std::string root) : root_(std::move(root)) {}
  ~Scanner() {
    if (fd_ >= 0) close(fd_);
  }
  int Run();
  Napi::Value Result(Napi::Env env) const { return entries_.Result(env); }
  Napi::Error Error(Napi::Env env) const { return failure_.Error(env); }

 private:
  int Fail(int e, const char *call) {
    failure_ = {e, call, root_ + (rel_.empty() ? "" : "/" + rel_)};
    return e;
  }
  int Enter(int fd, size_t parentLen) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
    Level level;
    level.parentLen = parentLen;
    if (int e = ReadNames(fd_, &level.names)) return Fail(e, "scandir");
    stack_.push_back(std::move(level));
    return 0;
  }
  int Ascend();
  int Step();

  const std::string root_;
  int fd_ = -1;
  std::vector<Level> stack_;
  std::string rel_;
  Entries entries_;
  Failure failure_;
};

int Scanner::Run() {
  int fd = open(root_.c_str(), kDirOpen);
  if (fd < 0) return Fail(errno, "open");
  if (int e = Enter(fd, 0)) return e;
  while (!stack_.empty()) {
    int e = stack_.back().next == stack_.back().names.size() ? Ascend() : Step();
    if (e) return e;
  }
  return 0;
}

int Scanner::Ascend() {
  rel_.resize(stack_.back().parentLen);
  stack_.pop_back();
  if (stack_.empty()) return 0;
  int up = openat(fd_, "..", kDirOpen & ~O_NOFOLLOW);
  if (up < 0) return Fail(errno, "open");
  close(fd_);
  fd_ = up;
  return 0;
}

int Scanner::Step() {
  std::string name = stack_.back().names[stack_.back().next++];
  size_t parentLen = rel_.size();
  rel_ += rel_.empty() ? name : "/" + name;
  struct stat st;
  if (StatAt(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = errno == ENOENT ? 0 : Fail(errno, "lstat");  // gone meanwhile: not there
    rel_.resize(parentLen);
    return e;
  }
  char kind = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' : 'o';
  entries_.list.push_back({rel_, kind, st});
  if (kind != 'd') {
    rel_.resize(parentLen);
    return 0;
  }
  int child = openat(fd_, name.c_str(), kDirOpen);
  if (child < 0) return Fail(errno, "open");
  return Enter(child, parentLen);
}

Napi::Value Entries::Result(Napi::Env env) const {
  Napi::Object result = Napi::Object::New(env);
  Napi::Array paths = Napi::Array::New(env, list.size());
  std::string kinds;
  Napi::ArrayBuffer stats = Napi::ArrayBuffer::New(env, list.size() * 5 * sizeof(int64_t));
  auto *out = static_cast<int64_t *>(stats.Data());
  for (size_t i = 0; i < list.size(); i++) {
    const Copied &c = list[i];
    paths.Set(static_cast<uint32_t>(i), Napi::String::New(env, c.rel));
    kinds += c.kind;
    uint64_t ino = c.st.st_ino;
    memcpy(&out[i * 5], &ino, sizeof ino);  // read back as unsigned
    out[i * 5 + 1] = static_cast<int64_t>(c.st.st_ctim.tv_sec) * 1000000000 + c.st.st_ctim.tv_nsec;
    out[i * 5 + 2] = static_cast<int64_t>(c.st.st_size);
    out[i * 5 + 3] = static_cast<int64_t>(c.st.st_mtim.tv_sec) * 1000000000 + c.st.st_mtim.tv_nsec;
    out[i * 5 + 4] = static_cast<int64_t>(c.st.st_mode & 07777);
  }
  Napi::Array skippedPaths = Napi::Array::New(env, skipped.size());
  for (size_t i = 0; i < skipped.size(); i++) skippedPaths.Set(static_cast<uint32_t>(i), skipped[i]);
  result.Set("paths", paths);
  result.Set("kinds", Napi::String::New(env, kinds));
  result.Set("stats", stats);
  result.Set("skipped", skippedPaths);
  return result;
}

// Runs a walk (Copier or Scanner) on the thread pool and settles a promise with its result.
template <class Job>
class TreeWorker : public Napi::AsyncWorker {
 public:
  TreeWorker(Napi::Env env, Job *job)
      : Napi::AsyncWorker(env, "branching.tree"), deferred_(Napi::Promise::Deferred::New(env)), job_(job) {}
  ~TreeWorker() override { delete job_; }
  Napi::Promise Promise() const { return deferred_.Promise(); }
  void Execute() override { failed_ = job_->Run() != 0; }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (failed_) deferred_.Reject(job_->Error(Env()).Value());
    else deferred_.Resolve(job_->Result(Env()));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Job *job_;
  bool failed_ = false;
};

template <class Job>
Napi::Value Queue(Napi::Env env, Job *job) {
  auto *worker = new TreeWorker<Job>(env, job);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}
#endif

}  // namespace

// copyTree(src, dest, flags, sharedNames, linkBase): resolves to the copied entries (when flags has
// kManifest) and the skipped ones (sockets, fifos, devices). dest must not exist.
Napi::Value CopyTree(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string src = Str(info, 0, "src"), dest = Str(info, 1, "dest"), linkBase = Str(info, 4, "linkBase");
  if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "flags must be a number");
  if (!info[3].IsArray()) throw Napi::TypeError::New(env, "sharedNames must be an array");
  int flags = info[2].As<Napi::Number>().Int32Value();
  Napi::Array names = info[3].As<Napi::Array>();
  std::set<std::string> shared;
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value v = names.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, "sharedNames must hold strings");
    shared.insert(v.As<Napi::String>().Utf8Value());
  }
#ifdef __linux__
  return Queue(env, new Copier(src, dest, flags, std::move(shared), linkBase));
#else
  (void)flags;
  throw ErrnoError(env, ENOSYS, "copytree", &src, &dest);
#endif
}

// scanTree(path): resolves to every entry below `path` (not `path` itself), pre-order, with its lstat.
Napi::Value ScanTree(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info, 0, "path");
#ifdef __linux__
  return Queue(env, new Scanner(path));
#else
  throw ErrnoError(env, ENOSYS, "scantree", &path);
#endif
}

}  // namespace branching
