// What the addon's source files share: the raw stat calls, the hole-keeping copy and Node-style errors.
#pragma once
#include <napi.h>

#include <string>

#include <sys/stat.h>
#include <sys/types.h>

namespace branching {

#ifdef __linux__
// fstatat as the system call (glibc 2.33 versioned the wrappers; see branching.cc).
int StatAt(int dirfd, const char *path, struct stat *st, int flags);
int StatFd(int fd, struct stat *st);
// Copies the data extents of `in` to `out`, so holes stay holes. Returns 0 or an errno.
int CopyExtents(int in, int out, off_t size);
#endif

// A Node-style system error: .code ('ENOENT'), .errno (negative), .syscall, .path and .dest.
Napi::Error ErrnoError(Napi::Env env, int err, const char *syscall, const std::string *path = nullptr,
                       const std::string *dest = nullptr);

// The string argument i, or a TypeError naming it.
std::string Str(const Napi::CallbackInfo &info, size_t i, const char *name);

// copyTree(src, dest, flags, sharedNames, linkBase) and scanTree(path): see tree.cc.
Napi::Value CopyTree(const Napi::CallbackInfo &info);
Napi::Value ScanTree(const Napi::CallbackInfo &info);

}  // namespace branching
