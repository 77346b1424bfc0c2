import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ArgumentError, hasErrno } from './errors.ts';
import { writeFileDurable } from './fsutil.ts';
import { Lease } from './lock.ts';

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

/**
 * Picks the state directory: an explicit choice (option or
 * BRANCHING_STATE_DIR) first, then `<parent>/.branching/<name>-<hash>`, then
 * `<tmpdir>/branching-<uid>/<name>-<hash>`; the first one that can be created
 * on the workspace's own filesystem wins.
 */
export function resolveStateDir(workspace: string, explicit?: string): string {
  const wsDev = statSync(workspace).dev;
  const name = stateName(workspace);
  const chosen = explicit ?? process.env.BRANCHING_STATE_DIR;
  if (chosen) {
    const dir = join(chosen, name);
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
  const uid = process.getuid?.() ?? 0;
  const candidates = [join(dirname(workspace), '.branching', name), join(tmpdir(), `branching-${uid}`, name)];
  for (const dir of candidates) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (statSync(dir).dev === wsDev) return dir;
    } catch {
      // Not writable here; try the next place.
    }
  }
  throw new ArgumentError(
    `no place for branch state on the filesystem of ${workspace} (tried ${candidates.join(', ')}); set BRANCHING_STATE_DIR to a writable directory on that filesystem`,
    { argument: 'path', path: workspace, code: 'ERR_BRANCHING_NO_STATE_DIR' },
  );
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
