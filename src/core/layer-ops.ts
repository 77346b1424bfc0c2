/**
 * What a layer stack does with a finished layer's upper dir, and the checks
 * on its arguments: kept for inspection (whiteouts replaced by a list), or
 * committed into the real tree through the crash-safe journal; and keeping
 * the process's cwd in the top layer.
 */
import { lstatSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { native } from '../addon.ts';
import type { Change } from '../base/changes.ts';
import { ArgumentError, hasErrno } from '../base/errors.ts';
import { copyTree } from '../base/fsutil.ts';
import { mountIdOf } from '../base/layer-dir.ts';
import { commitChanges, recoverTransactions } from './journal.ts';
import { acquireLock } from './lock.ts';
import { ensureLayout, layoutOf, readVersion, resolveStateDir } from './state.ts';

export function isUnder(path: string, root: string): boolean {
  return path === root || root === '/' || path.startsWith(`${root}/`);
}

/** Overlay mount options separate layers with ':' and options with ',': such paths cannot be layers. */
const UNSAFE_FOR_OPTIONS = /[,:\n\t\\]/;

/** An existing directory, canonical, that overlayfs options can carry; else an ArgumentError naming `argument`. */
export function canonicalDir(value: unknown, argument: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new ArgumentError(`${argument} must be a non-empty path`, { argument });
  }
  if (!isAbsolute(value)) {
    throw new ArgumentError(`${argument} must be an absolute path: ${value}`, { argument, path: value });
  }
  let real: string;
  try {
    real = realpathSync(value);
  } catch (err) {
    throw new ArgumentError(`${argument} ${value} does not exist`, { argument, path: value, cause: err });
  }
  if (!statSync(real).isDirectory()) {
    throw new ArgumentError(`${argument} ${value} is not a directory`, { argument, path: value });
  }
  if (UNSAFE_FOR_OPTIONS.test(real)) {
    throw new ArgumentError(
      `${argument} ${real} contains a character overlayfs options cannot carry (',', ':', '\\' or a control character)`,
      { argument, path: real, code: 'ERR_BRANCHING_UNSAFE_PATH' },
    );
  }
  return real;
}

/** realpath of a path that may not exist yet: its nearest existing ancestor resolved, the rest appended. */
function resolveExisting(path: string): string {
  try {
    return realpathSync(path);
  } catch (err) {
    const parent = dirname(path);
    if (!hasErrno(err, 'ENOENT') || parent === path) return path;
    return join(resolveExisting(parent), basename(path));
  }
}

/** `dest` for keep(): absolute, outside the stack's target and scratch, with no earlier kept layer in it. */
export function checkKeepDest(dest: unknown, forbidden: readonly string[]): string {
  if (typeof dest !== 'string' || !isAbsolute(dest)) {
    throw new ArgumentError(`dest must be an absolute path: ${String(dest)}`, { argument: 'dest' });
  }
  const real = resolveExisting(dest);
  const inside = forbidden.find((dir) => isUnder(real, dir));
  if (inside) {
    throw new ArgumentError(
      `dest ${dest} is inside ${inside}, which the layer stack mounts over or removes: keep layers elsewhere`,
      { argument: 'dest', path: dest, code: 'ERR_BRANCHING_LAYER_DEST_INSIDE' },
    );
  }
  for (const name of ['changes', 'deleted.txt']) {
    if (lstatSync(join(real, name), { throwIfNoEntry: false })) {
      throw new ArgumentError(`dest ${dest} already holds a kept layer (${name})`, {
        argument: 'dest',
        path: join(real, name),
        code: 'ERR_BRANCHING_LAYER_DEST_TAKEN',
      });
    }
  }
  return real;
}

/** What keep() leaves behind. */
export interface KeptLayer {
  /** The layer's upper dir, without its whiteouts. */
  readonly changes: string;
  /** One deleted path a line (relative to the target). */
  readonly deletedList: string;
  readonly deleted: readonly string[];
  /** Directories the layer replaced wholesale (removed and made again): their content below is gone. */
  readonly opaque: readonly string[];
}

/** Whiteouts (deletions) and opaque directories of an upper dir, relative paths, sorted. */
export function scanUpper(upper: string, xattrPrefix: string): { deleted: string[]; opaque: string[] } {
  const deleted: string[] = [];
  const opaque: string[] = [];
  const binding = native()!;
  const walk = (rel: string) => {
    for (const entry of readdirSync(rel === '' ? upper : join(upper, rel), { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isCharacterDevice() && lstatSync(join(upper, path)).rdev === 0) deleted.push(path);
      else if (entry.isDirectory()) {
        if (binding.getxattr(join(upper, path), `${xattrPrefix}opaque`)?.toString() === 'y') opaque.push(path);
        walk(path);
      }
    }
  };
  walk('');
  return { deleted: deleted.sort(), opaque: opaque.sort() };
}

/**
 * Moves an unmounted upper dir to `changes` (a rename, or a copy from another filesystem) and drops
 * its whiteouts. With `copy`, the upper stays where it is (a target that is its own layer's upper).
 */
export async function keepUpper(
  upper: string,
  destDir: string,
  { deleted, opaque, copy = false }: { deleted: string[]; opaque: string[]; copy?: boolean },
): Promise<KeptLayer> {
  await fs.mkdir(destDir, { recursive: true });
  const changes = join(destDir, 'changes');
  if (copy || !(await renamedOnOneFs(upper, changes))) {
    // Devices (the whiteouts among them) are skipped by the copy: deleted.txt lists them.
    await copyTree(upper, changes, { onSkip: () => {} });
  }
  await Promise.all(deleted.map((rel) => fs.rm(join(changes, rel), { force: true })));
  const deletedList = join(destDir, 'deleted.txt');
  await fs.writeFile(deletedList, deleted.map((rel) => `${rel}\n`).join(''));
  if (opaque.length > 0) await fs.writeFile(join(destDir, 'opaque.txt'), opaque.map((rel) => `${rel}\n`).join(''));
  return { changes, deletedList, deleted, opaque };
}

/** Renames `from` to `to`; false, renaming nothing, when they are on different filesystems. */
async function renamedOnOneFs(from: string, to: string): Promise<boolean> {
  try {
    await fs.rename(from, to);
    return true;
  } catch (err) {
    if (hasErrno(err, 'EXDEV')) return false;
    throw err;
  }
}

/** The real tree a commit lands in: an existing directory that is neither the stack's target nor inside it or its scratch. */
export function checkWorkspaceRoot(value: unknown, forbidden: readonly string[]): string {
  const root = canonicalDir(value, 'workspaceRoot');
  const inside = forbidden.find((dir) => isUnder(root, dir));
  if (inside) {
    throw new ArgumentError(
      `workspaceRoot ${root} is inside ${inside}, which shows the layers rather than the real tree: pass a path where the real tree is visible`,
      { argument: 'workspaceRoot', path: root, code: 'ERR_BRANCHING_LAYER_COMMIT_INSIDE' },
    );
  }
  return root;
}

/**
 * Lands `changes` in `root` through the workspace's own journal (the state
 * dir a Workspace of `root` uses), under its commit lock: a crash leaves a
 * journal that the next commit, or the next Workspace of `root`, replays.
 * The version moves on, so that branches opened before see a conflict.
 */
export async function commitIntoWorkspace(root: string, changes: Change[], stateDir?: string): Promise<void> {
  const layout = layoutOf(resolveStateDir(root, stateDir));
  await ensureLayout(layout, root);
  if (mountIdOf(layout.txn) !== mountIdOf(root)) {
    throw new ArgumentError(
      `the state directory ${layout.root} is on another mount than ${root} (a bind mount?), and the journal's renames cannot cross mounts: pass a stateDir on the mount of ${root}`,
      { argument: 'stateDir', path: layout.root, code: 'ERR_BRANCHING_STATE_XDEV' },
    );
  }
  const lock = await acquireLock(layout.lock, 'exclusive');
  try {
    await recoverTransactions(layout.txn, root);
    const version = await readVersion(layout.mainVersion);
    await commitChanges({
      target: root,
      txnRoot: layout.txn,
      changes,
      version: { file: layout.mainVersion, value: version + 1 },
    });
  } finally {
    await lock.release();
  }
}

/** Makes a scratch dir with restrictive permissions (overlayfs needs the upper and work dirs on one filesystem). */
export function makeLayerDirs(dir: string): { upper: string; work: string } {
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  for (const d of [dir, upper, work]) mkdirSync(d, { mode: 0o700 });
  return { upper, work };
}

/** The process's cwd when it is inside `target` (a later chdir to the same path enters the new top layer). */
export function cwdUnder(target: string): string | null {
  try {
    const cwd = process.cwd();
    return isUnder(cwd, target) ? cwd : null;
  } catch {
    return null; // the cwd was removed
  }
}

/** Re-enters `cwd` (or its nearest ancestor that exists in the new view) so that relative paths see the new top layer. */
export function reenter(cwd: string | null, target: string): void {
  for (let dir = cwd; dir !== null && isUnder(dir, target); dir = dir === target ? null : join(dir, '..')) {
    try {
      process.chdir(dir);
      return;
    } catch (err) {
      // Worker threads cannot chdir: their process's main thread owns the cwd.
      if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_UNSUPPORTED_OPERATION') return;
    }
  }
}
