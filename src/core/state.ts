import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ArgumentError, hasErrno } from '../base/errors.ts';
import { writeFileDurable } from '../base/fsutil.ts';
import { Lease } from './lock.ts';
import { gitWorkTreeTop, isInside, outermostWorkTree } from './worktree.ts';

/**
 * Where a workspace keeps its branches, journals and locks: outside the
 * workspace tree (so `git status` stays clean and tools never see it), but
 * on the same filesystem (so commits can stage and rename atomically).
 *
 *   <state>/workspace.json         which workspace this is
 *   <state>/lock                   the commit lock
 *   <state>/main.version           commits into the workspace so far
 *   <state>/leases/<pid>-<rand>    one per live process (flocked)
 *   <state>/names/<parent>/<name>  open branch names, for sibling uniqueness
 *   <state>/branches/<id>/         one per branch: info.json + backend data
 *   <state>/txn/<id>/              commit journals and staged files
 */
export interface StateLayout {
  root: string;
  lock: string;
  mainVersion: string;
  leases: string;
  names: string;
  branches: string;
  txn: string;
}

export function layoutOf(root: string): StateLayout {
  return {
    root,
    lock: join(root, 'lock'),
    mainVersion: join(root, 'main.version'),
    leases: join(root, 'leases'),
    names: join(root, 'names'),
    branches: join(root, 'branches'),
    txn: join(root, 'txn'),
  };
}

function stateName(workspace: string): string {
  const hash = createHash('sha256').update(workspace).digest('hex').slice(0, 10);
  return `${basename(workspace) || 'root'}-${hash}`;
}

/** The user's cache directory: $XDG_CACHE_HOME, else ~/Library/Caches (macOS) or ~/.cache. */
function userCacheDir(): string | null {
  if (process.env.XDG_CACHE_HOME && isAbsolute(process.env.XDG_CACHE_HOME)) return process.env.XDG_CACHE_HOME;
  const home = process.env.HOME || homedir();
  if (!home || !isAbsolute(home)) return null;
  return process.platform === 'darwin' ? join(home, 'Library', 'Caches') : join(home, '.cache');
}

/** The nearest existing ancestor of `path` (or `path` itself), canonical. */
function existingAncestor(path: string): string {
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      return realpathSync(dir);
    } catch {
      if (dirname(dir) === dir) return dir;
    }
  }
}

/**
 * Why `dir` must not hold branch state, or null: never inside the workspace
 * (tools and `git status` would see it) nor inside any git work tree (git
 * would take the temp dirs for part of the repository).
 */
function unfitStateDir(dir: string, workspace: string): string | null {
  const near = existingAncestor(dir);
  if (isInside(near, workspace) || isInside(dir, workspace)) return `it is inside the workspace ${workspace}`;
  const tree = gitWorkTreeTop(near);
  if (tree !== null) return `it is inside the git work tree ${tree}`;
  return null;
}

/**
 * Where branch state may go by default, best first: the user's cache dir
 * (it survives a reboot, so an interrupted commit can still be finished),
 * then `$TMPDIR/branching-<uid>`. gc looks in all of them.
 */
export function defaultStateRoots(): string[] {
  const uid = process.getuid?.() ?? 0;
  const cache = userCacheDir();
  return [...(cache ? [join(cache, 'branching')] : []), join(tmpdir(), `branching-${uid}`)];
}

function explicitStateDir(chosen: unknown, workspace: string, wsDev: number, name: string): string {
  if (typeof chosen !== 'string' || chosen === '') {
    throw new ArgumentError(`stateDir must be a non-empty path string; got ${JSON.stringify(chosen)}`, {
      argument: 'stateDir',
    });
  }
  const dir = join(resolve(chosen), name);
  const unfit = unfitStateDir(dir, workspace);
  if (unfit?.startsWith('it is inside the workspace')) {
    throw new ArgumentError(`the state directory ${dir} cannot be used: ${unfit}`, {
      argument: 'stateDir',
      path: dir,
      code: 'ERR_BRANCHING_STATE_INSIDE',
    });
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ArgumentError(`cannot create the state directory ${dir}: ${(err as Error).message}`, {
      argument: 'stateDir',
      path: dir,
      cause: err,
    });
  }
  if (statSync(dir).dev !== wsDev) {
    throw new ArgumentError(
      `the state directory ${dir} is on another filesystem than the workspace ${workspace}; commits need both on one filesystem`,
      { argument: 'stateDir', path: dir, code: 'ERR_BRANCHING_STATE_XDEV' },
    );
  }
  return dir;
}

/**
 * Picks the state directory: an explicit choice (option or
 * BRANCHING_STATE_DIR, made absolute) first, then the first default root
 * (defaultStateRoots) that can be created on the workspace's own filesystem
 * and lies neither in the workspace nor in a git work tree.
 */
export function resolveStateDir(workspace: string, explicit?: unknown): string {
  const wsDev = statSync(workspace).dev;
  const name = stateName(workspace);
  const chosen = explicit ?? process.env.BRANCHING_STATE_DIR;
  if (chosen !== undefined && chosen !== '') return explicitStateDir(chosen, workspace, wsDev, name);
  const tried: string[] = [];
  for (const root of defaultStateRoots()) {
    const dir = join(root, name);
    const unfit = unfitStateDir(dir, workspace);
    if (unfit) {
      tried.push(`${dir} (${unfit})`);
      continue;
    }
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (statSync(dir).dev === wsDev) return dir;
      tried.push(`${dir} (another filesystem)`);
    } catch (err) {
      tried.push(`${dir} (${(err as NodeJS.ErrnoException).code ?? 'not writable'})`);
    }
  }
  throw new ArgumentError(
    `no place for branch state on the filesystem of ${workspace} (tried ${tried.join(', ')}); set BRANCHING_STATE_DIR (or the stateDir option) to a writable directory on that filesystem, outside the project and any git work tree`,
    { argument: 'path', path: workspace, code: 'ERR_BRANCHING_NO_STATE_DIR' },
  );
}

/**
 * Where the test plugins keep state for `commit: true`: beside the project
 * (in the parent of its outermost git work tree, or of the project itself),
 * because a commit made from inside the sandbox needs the journal and the
 * real tree under one directory that the worker sees, and that directory
 * must be small. BRANCHING_STATE_DIR, when set, still wins.
 */
export function commitStateRoot(workspace: string): string | undefined {
  if (process.env.BRANCHING_STATE_DIR) return undefined;
  const top = outermostWorkTree(workspace) ?? workspace;
  return join(dirname(top), '.branching');
}

/**
 * Every state dir `workspace` may have used: where its state lives depends on
 * what was writable at the time, so gc looks in each default root (and the
 * BRANCHING_STATE_DIR root), not only where it would go today.
 */
export function stateDirsOf(workspace: string): string[] {
  const name = stateName(workspace);
  const commitRoot = join(dirname(outermostWorkTree(workspace) ?? workspace), '.branching');
  const roots = [
    ...defaultStateRoots(),
    commitRoot,
    ...(process.env.BRANCHING_STATE_DIR ? [resolve(process.env.BRANCHING_STATE_DIR)] : []),
  ];
  return [...new Set(roots.map((root) => join(root, name)))].filter((dir) => {
    try {
      return JSON.parse(readFileSync(join(dir, 'workspace.json'), 'utf8')).path === workspace;
    } catch {
      return false;
    }
  });
}

/** Every state dir under the default roots, with the workspace it belongs to (for `branching gc` with no path). */
export function allStateDirs(): Array<{ stateDir: string; workspace: string }> {
  const found: Array<{ stateDir: string; workspace: string }> = [];
  for (const root of defaultStateRoots()) {
    let names: string[] = [];
    try {
      names = readdirSync(root);
    } catch {
      continue;
    }
    for (const name of names) {
      try {
        const { path } = JSON.parse(readFileSync(join(root, name, 'workspace.json'), 'utf8')) as { path: string };
        if (typeof path === 'string') found.push({ stateDir: join(root, name), workspace: path });
      } catch {
        // not a state dir (or one being created)
      }
    }
  }
  return found;
}

export async function ensureLayout(layout: StateLayout, workspace: string): Promise<void> {
  await Promise.all(
    [layout.leases, layout.names, layout.branches, layout.txn].map((d) =>
      fs.mkdir(d, { recursive: true, mode: 0o700 }),
    ),
  );
  const marker = join(layout.root, 'workspace.json');
  try {
    const recorded = JSON.parse(await fs.readFile(marker, 'utf8')) as { path: string };
    if (recorded.path !== workspace) {
      throw new ArgumentError(`state directory ${layout.root} belongs to ${recorded.path}, not ${workspace}`, {
        argument: 'stateDir',
        path: layout.root,
      });
    }
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
    await writeFileDurable(marker, JSON.stringify({ path: workspace, version: 1 }));
  }
}

export async function readVersion(file: string): Promise<number> {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return 0;
    throw err;
  }
}

/** What a branch records about itself on disk, for gc and crash detection. */
export interface BranchInfo {
  id: string;
  name: string;
  branchPath: string;
  parentId: string;
  backend: string;
  lease: string;
  pid: number;
  createdAt: string;
}

export async function writeBranchInfo(dir: string, info: BranchInfo): Promise<void> {
  writeFileSync(join(dir, 'info.json'), JSON.stringify(info, null, 2));
}

export async function readBranchInfo(dir: string): Promise<BranchInfo | null> {
  try {
    return JSON.parse(await fs.readFile(join(dir, 'info.json'), 'utf8')) as BranchInfo;
  } catch {
    return null;
  }
}

/**
 * Claims `name` under `parentId` for branch `id`. An open sibling keeps its
 * claim; a claim whose owner died is taken over.
 */
export async function claimName(layout: StateLayout, parentId: string, name: string, id: string, lease: Lease) {
  const dir = join(layout.names, parentId);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // Synchronous: tiny, and on every branch creation.
      writeFileSync(file, JSON.stringify({ id, lease: lease.file }), { flag: 'wx' });
      return file;
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
    }
    const holder = await readClaim(file);
    if (holder && (await Lease.isAlive(holder.lease))) return null;
    await fs.rm(file, { force: true });
  }
  return null;
}

async function readClaim(file: string): Promise<{ id: string; lease: string } | null> {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

export async function releaseName(file: string, id: string): Promise<void> {
  const holder = await readClaim(file);
  if (holder?.id === id) rmSync(file, { force: true });
}
