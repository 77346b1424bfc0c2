import {
  chmodSync,
  closeSync,
  constants as fsc,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, join } from 'node:path';
import { native } from '../addon.ts';
import type { NativeBinding } from '../native.js';
import { hasErrno } from './errors.ts';

/** Runs async jobs with at most `limit` in flight; used to keep the fs busy without opening too many fds. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await job();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export type EntryKind = 'file' | 'dir' | 'symlink' | 'other';

export function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Identity of an inode version: a rewrite in place changes ctime, a replace changes ino. */
export interface Fingerprint {
  kind: EntryKind;
  ino: bigint;
  ctimeNs: bigint;
  size: bigint;
  mtimeNs: bigint;
  mode: number;
}

export function fingerprint(st: import('node:fs').BigIntStats): Fingerprint {
  return {
    kind: kindOf(st),
    ino: st.ino,
    ctimeNs: st.ctimeNs,
    size: st.size,
    mtimeNs: st.mtimeNs,
    mode: Number(st.mode & 0o7777n),
  };
}

export interface CopyTreeOptions {
  /** Called for each copied entry, with its path relative to the tree root ('' is the root). */
  onEntry?: (rel: string, fp: Fingerprint) => void;
  /** Entries that cannot be copied (sockets, fifos, devices) are reported here and skipped. */
  onSkip?: (rel: string, reason: string) => void;
  /** Preserve ownership (only meaningful for root). */
  preserveOwner?: boolean;
  /** Hard-link files where the filesystem allows (the source must then stay unchanged), else copy them. */
  hardLink?: boolean;
  /** Directories with these names (at any depth) become symlinks to the same path under `base` instead of copies. */
  shared?: { names: readonly string[]; base: string };
}

/**
 * A reflink (FICLONE / clonefile) where the filesystem has them, else a byte
 * copy; on Linux the addon's copy keeps holes (a 1 GB sparse file stays a
 * few blocks) and costs one call instead of Node's several.
 */
export async function cloneOrCopyFile(src: string, dest: string): Promise<void> {
  const binding = native();
  if (binding && process.platform === 'linux') return binding.copyFile(src, dest);
  await fs.copyFile(src, dest, fsc.COPYFILE_FICLONE | fsc.COPYFILE_EXCL);
}

function relJoin(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

/**
 * Copies a tree like `cp -a` (modes, timestamps, symlinks verbatim, empty
 * dirs; ownership when root), with bounded parallelism. Directory modes and
 * times are applied after their children, so read-only dirs copy fine.
 */
export async function copyTree(src: string, dest: string, options: CopyTreeOptions = {}): Promise<void> {
  const preserveOwner = options.preserveOwner ?? process.getuid?.() === 0;
  const binding = native();
  if (binding && process.platform === 'linux' && (await fs.lstat(src)).isDirectory()) {
    return nativeCopyTree(binding, src, dest, { ...options, preserveOwner });
  }
  return portableCopyTree(src, dest, { ...options, preserveOwner });
}

const COPY_OWNER = 1;
const COPY_HARD_LINK = 2;
const COPY_MANIFEST = 4;
const KINDS: Record<string, EntryKind> = { f: 'file', d: 'dir', l: 'symlink' };

/** The addon's walk: off the main thread, fd-relative (any depth), a few system calls per file. */
async function nativeCopyTree(
  binding: NativeBinding,
  src: string,
  dest: string,
  options: CopyTreeOptions,
): Promise<void> {
  const flags =
    (options.preserveOwner ? COPY_OWNER : 0) |
    (options.hardLink ? COPY_HARD_LINK : 0) |
    (options.onEntry ? COPY_MANIFEST : 0);
  const result = await binding.copyTree(src, dest, flags, options.shared?.names ?? [], options.shared?.base ?? '');
  for (const rel of result.skipped) options.onSkip?.(rel, 'not a regular file, directory or symlink');
  if (!options.onEntry) return;
  for (const entry of decodeEntries(result)) options.onEntry(entry.rel, entry.fp);
}

export interface ScannedEntry {
  /** The path relative to the scanned root, '/'-separated. */
  rel: string;
  fp: Fingerprint;
}

/** The addon's entry list: five int64s per entry (ino, ctime ns, size, mtime ns, mode), ino unsigned. */
function decodeEntries(result: { paths: string[]; kinds: string; stats: ArrayBuffer }): ScannedEntry[] {
  const signed = new BigInt64Array(result.stats);
  const unsigned = new BigUint64Array(result.stats);
  return result.paths.map((rel, i) => {
    const at = i * 5;
    const fp: Fingerprint = {
      kind: KINDS[result.kinds[i] as string] ?? 'other',
      ino: unsigned[at] as bigint,
      ctimeNs: signed[at + 1] as bigint,
      size: signed[at + 2] as bigint,
      mtimeNs: signed[at + 3] as bigint,
      mode: Number(signed[at + 4]),
    };
    return { rel, fp };
  });
}

/**
 * Every entry below `root` (not `root` itself) with its lstat fingerprint, each directory before
 * its contents. Iterative; on Linux the addon walks fd by fd, so any depth works.
 */
export async function scanTree(root: string): Promise<ScannedEntry[]> {
  const binding = native();
  if (binding && process.platform === 'linux') return decodeEntries(await binding.scanTree(root));
  const out: ScannedEntry[] = [];
  const dirs = [''];
  for (let rel = dirs.pop(); rel !== undefined; rel = dirs.pop()) {
    for (const name of await fs.readdir(rel === '' ? root : join(root, rel))) {
      const child = relJoin(rel, name);
      const fp = fingerprint(await fs.lstat(join(root, child), { bigint: true }));
      out.push({ rel: child, fp });
      if (fp.kind === 'dir') dirs.push(child);
    }
  }
  return out;
}

/** Node's fs, with bounded parallelism: other platforms, no addon, or a root that is not a directory. */
async function portableCopyTree(src: string, dest: string, options: CopyTreeOptions): Promise<void> {
  const limiter = new Limiter(32);
  const copyFile = options.hardLink ? linkOrCopyFile : cloneOrCopyFile;
  const sharedNames = new Set(options.shared?.names ?? []);

  const finish = async (path: string, st: import('node:fs').BigIntStats, rel: string, isLink = false) => {
    if (options.preserveOwner) await fs.lchown(path, Number(st.uid), Number(st.gid));
    if (!isLink) {
      await fs.chmod(path, Number(st.mode & 0o7777n));
      await fs.utimes(path, Number(st.atimeNs / 1000n) / 1e6, Number(st.mtimeNs / 1000n) / 1e6);
    } else {
      await fs.lutimes(path, Number(st.atimeNs / 1000n) / 1e6, Number(st.mtimeNs / 1000n) / 1e6).catch(() => {});
    }
    if (options.onEntry) options.onEntry(rel, fingerprint(await fs.lstat(path, { bigint: true })));
  };

  const copyEntry = async (from: string, to: string, rel: string, st: import('node:fs').BigIntStats): Promise<void> => {
    const shared = st.isDirectory() && rel !== '' && options.shared && sharedNames.has(basename(rel));
    if (shared) {
      await limiter.run(async () => {
        await fs.symlink(join(options.shared?.base as string, rel), to);
        options.onEntry?.(rel, fingerprint(await fs.lstat(to, { bigint: true })));
      });
    } else if (st.isDirectory()) {
      await limiter.run(() => fs.mkdir(to, { mode: 0o700 }));
      const names = await limiter.run(() => fs.readdir(from));
      await Promise.all(
        names.map(async (name) => {
          const childFrom = join(from, name);
          const childSt = await limiter.run(() => fs.lstat(childFrom, { bigint: true }));
          await copyEntry(childFrom, join(to, name), relJoin(rel, name), childSt);
        }),
      );
      await limiter.run(() => finish(to, st, rel));
    } else if (st.isFile()) {
      await limiter.run(async () => {
        await copyFile(from, to);
        await finish(to, st, rel);
      });
    } else if (st.isSymbolicLink()) {
      await limiter.run(async () => {
        await fs.symlink(await fs.readlink(from), to);
        await finish(to, st, rel, true);
      });
    } else {
      options.onSkip?.(rel, 'not a regular file, directory or symlink');
    }
  };

  const rootSt = await fs.lstat(src, { bigint: true });
  await copyEntry(src, dest, '', rootSt);
}

/** A hard link costs nothing; across filesystems (or where links are refused), a copy. */
export async function linkOrCopyFile(source: string, dest: string): Promise<void> {
  try {
    await fs.link(source, dest);
  } catch (err) {
    if (!hasErrno(err, 'EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP')) throw err;
    await cloneOrCopyFile(source, dest);
    const st = await fs.stat(source);
    await fs.chmod(dest, st.mode & 0o7777);
    await fs.utimes(dest, st.atime, st.mtime);
  }
}

/**
 * rm -rf that also works as a non-root user on trees holding read-only
 * directories (which a test may well create): on EACCES it makes the
 * directories writable and tries again. Never follows symlinks.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await fs.rm(path, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    // Too deep for paths (ENAMETOOLONG) or for recursion (RangeError): the addon walks fd by fd.
    const deep = hasErrno(err, 'ENAMETOOLONG') || err instanceof RangeError;
    if (!deep && !hasErrno(err, 'EACCES', 'EPERM', 'ENOTEMPTY')) throw err;
    const binding = native();
    if (binding && process.platform === 'linux') return binding.removeTree(path);
    if (deep) throw err;
    await makeDirsWritable(path);
    await fs.rm(path, { recursive: true, force: true, maxRetries: 2 });
  }
}

async function makeDirsWritable(path: string): Promise<void> {
  let st: import('node:fs').Stats;
  try {
    st = await fs.lstat(path);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  await fs.chmod(path, 0o700).catch(() => {});
  const names = await fs.readdir(path).catch(() => [] as string[]);
  await Promise.all(names.map((n) => makeDirsWritable(join(path, n))));
}

/** fsync a file or directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await fs.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates `path` (it must not exist) with `data`, and fsyncs it before returning. */
export async function writeFileSynced(path: string, data: string): Promise<void> {
  const handle = await fs.open(path, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a small file durably: temp file, fsync, rename, fsync of the directory. */
export async function writeFileDurable(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFileSynced(tmp, data);
  await fs.rename(tmp, path);
  await fsyncPath(join(path, '..'));
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch (err) {
    if (hasErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

// ---- synchronous twins, for recovery in the Workspace constructor (no tree may be read before it) ----

/** fsync a file or directory by path, synchronously. */
export function fsyncPathSync(path: string): void {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** rm -rf, synchronously, that also copes with directories without write permission. */
export function removeTreeSync(path: string): void {
  const binding = native();
  if (binding && process.platform === 'linux') {
    binding.removeTree(path);
    return;
  }
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    if (!hasErrno(err, 'EACCES', 'EPERM', 'ENOTEMPTY')) throw err;
    makeDirsWritableSync(path);
    rmSync(path, { recursive: true, force: true, maxRetries: 2 });
  }
}

function makeDirsWritableSync(root: string): void {
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory()) continue;
    try {
      chmodSync(dir, 0o700);
      for (const name of readdirSync(dir)) stack.push(join(dir, name));
    } catch {
      // not ours to change: rm reports what is left
    }
  }
}

/** Replaces `path` with `data` durably (write aside, fsync, rename, fsync the directory), synchronously. */
export function writeFileDurableSync(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncPathSync(join(path, '..'));
}

/**
 * Swaps the contents of two directories with renames (both on one filesystem), so that `a` holds
 * what `b` held and the reverse. Directories listed in `keep` (paths relative to `a`, e.g. the
 * ancestors of a process's cwd) keep their own inode in `a`: their contents are swapped
 * entry by entry instead, so a cwd inside them stays valid.
 */
export function exchangeTrees(a: string, b: string, keep: ReadonlySet<string> = new Set(), rel = ''): void {
  const dirA = rel === '' ? a : join(a, rel);
  const dirB = rel === '' ? b : join(b, rel);
  const names = new Set([...readdirSync(dirA), ...readdirSync(dirB)]);
  for (const name of names) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const inA = lstatOrNull(join(dirA, name));
    const inB = lstatOrNull(join(dirB, name));
    if (keep.has(childRel) && inA?.isDirectory() && inB?.isDirectory()) {
      exchangeTrees(a, b, keep, childRel);
      chmodSync(join(dirA, name), inB.mode & 0o7777);
      chmodSync(join(dirB, name), inA.mode & 0o7777);
    } else if (inA && inB) {
      const aside = join(dirA, `.branching-exchange-${process.pid}`);
      renameSync(join(dirA, name), aside);
      renameSync(join(dirB, name), join(dirA, name));
      renameSync(aside, join(dirB, name));
    } else if (inA) renameSync(join(dirA, name), join(dirB, name));
    else renameSync(join(dirB, name), join(dirA, name));
  }
}

function lstatOrNull(path: string): import('node:fs').Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return null;
    throw err;
  }
}
