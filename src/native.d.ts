/**
 * The private binding of native/branching.cc. TypeScript validates and
 * normalises; these functions take primitives and return results. Every
 * failure is a Node-style system error: `err.code` is the errno name
 * (`ENOENT`, `EPERM`, ...), with `err.errno`, `err.syscall` and `err.path`.
 */
export interface NativeBinding {
  /** flock(2). Returns false when `nonBlocking` and the lock is held elsewhere. */
  flock(fd: number, operation: 'shared' | 'exclusive' | 'unlock', nonBlocking: boolean): boolean;
  /** ioctl(FICLONE) of a whole file: creates `dest` (mode of `src`, O_EXCL). Throws EOPNOTSUPP/EXDEV/EINVAL when the filesystem cannot clone. */
  cloneFile(src: string, dest: string): void;
  /** A reflink, else a copy that keeps holes (SEEK_DATA/SEEK_HOLE + copy_file_range); mode and times kept; dest must not exist (Linux). */
  copyFile(src: string, dest: string): void;
  /** rm -rf, fd-relative and iterative (any depth), through read-only and mode-000 dirs; EXDEV at a mount inside (Linux). */
  removeTree(path: string): void;
  /**
   * `cp -a` of the directory `src` to `dest` (which must not exist), on a worker thread: fd-relative and
   * iterative (any depth), reflinks or hole-keeping copies, modes and times (owners with flag 1), files
   * hard-linked with flag 2. Directories named in `sharedNames` become symlinks to `linkBase/<rel>`. With
   * flag 4 it lists every copied entry: `paths[i]`, `kinds[i]` ('f' | 'd' | 'l') and five int64s per
   * entry in `stats` (ino, ctime ns, size, mtime ns, mode), of the copy. `skipped` names sockets, fifos
   * and devices, which are not copied (Linux).
   */
  copyTree(
    src: string,
    dest: string,
    flags: number,
    sharedNames: readonly string[],
    linkBase: string,
  ): Promise<{ paths: string[]; kinds: string; stats: ArrayBuffer; skipped: string[] }>;
  /** Every entry below `path` (not `path` itself), each directory before its contents, in copyTree's format with the lstat of each (kind 'o': neither file, dir nor symlink); fd-relative, any depth, on a worker thread (Linux). */
  scanTree(path: string): Promise<{ paths: string[]; kinds: string; stats: ArrayBuffer; skipped: string[] }>;
  /** mount(2). `data` is the comma-separated option string, or null. */
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** umount2(2). */
  umount2(target: string, flags: number): void;
  /** lgetxattr(2): the value, or null when the attribute is absent (ENODATA). */
  getxattr(path: string, name: string): Buffer | null;
  /** lsetxattr(2). */
  setxattr(path: string, name: string, value: Buffer | string, flags: number): void;
  /** llistxattr(2). */
  listxattr(path: string): string[];
  /** lremovexattr(2). */
  removexattr(path: string, name: string): void;
  /** renameat2(2) with AT_FDCWD on both sides. */
  renameat2(oldPath: string, newPath: string, flags: number): void;
  /** mknod(path, S_IFCHR | 0000, makedev(0, 0)): an overlayfs whiteout (no CAP_MKNOD needed since Linux 5.8). */
  mknodWhiteout(path: string): void;
  /**
   * One synchronous request/response with the launcher's privileged helper
   * (fd from BRANCHING_HELPER_FD). `request` is a TAB-separated line (see
   * src/backends/helper-client.ts); the answer is the helper's JSON line. The
   * reply travels on a private socketpair passed along with the request, so
   * processes sharing the fd never read each other's replies. Throws EPIPE
   * when the helper is gone.
   */
  helperCall(fd: number, request: string): string;
  /** The package version the binary was built for (from package.json at build time). */
  readonly version: string;
  /** Numeric constants of this platform (MS_*, MNT_*, UMOUNT_NOFOLLOW, RENAME_*, XATTR_*, LOCK_*). */
  readonly constants: Readonly<Record<string, number>>;
}
