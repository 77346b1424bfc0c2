import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import type { Change } from '../base/changes.ts';
import type { Branch } from '../core/branch.ts';
import type { Workspace } from '../core/workspace.ts';

export interface DiffStat {
  /** Paths (relative) that a commit of the branch would write or delete. */
  files: string[];
  /** Lines added plus lines removed; a binary file or a symlink counts as one line. */
  lines: number;
}

/**
 * What a candidate's branch changed relative to the workspace: exactly the
 * change set its commit would apply (the backend's own view), so it is the
 * same for diffs, file maps and functions.
 */
export async function diffStat(ws: Workspace, branch: Branch): Promise<DiffStat> {
  const handle = branch.parentView().handle;
  if (!handle) return { files: [], lines: 0 };
  const changes = await ws.backend.changes(handle, ws.parentView());
  let lines = 0;
  const files: string[] = [];
  for (const change of changes) {
    if (change.op === 'mkdir') continue;
    files.push(change.path);
    lines += await linesOf(change, ws.path);
  }
  return { files, lines };
}

async function linesOf(change: Exclude<Change, { op: 'mkdir' }>, root: string): Promise<number> {
  const before = join(root, change.path);
  switch (change.op) {
    case 'symlink':
      return 1;
    case 'delete':
      return countTreeLines(before);
    case 'tree':
      return (await countTreeLines(before)) + (await countTreeLines(change.source));
    case 'file': {
      const st = await fs.lstat(before).catch(() => null);
      if (!st?.isFile()) return (await countTreeLines(before)) + (await countTreeLines(change.source));
      return numstat(before, change.source);
    }
  }
}

async function countTreeLines(path: string): Promise<number> {
  const st = await fs.lstat(path).catch(() => null);
  if (!st) return 0;
  if (st.isFile()) return countLines(await fs.readFile(path));
  if (!st.isDirectory()) return 1;
  let total = 0;
  for (const name of await fs.readdir(path)) total += await countTreeLines(join(path, name));
  return total;
}

function countLines(data: Buffer): number {
  if (data.includes(0)) return 1; // binary
  let n = 0;
  for (const byte of data) if (byte === 10) n++;
  return data.length > 0 && data[data.length - 1] !== 10 ? n + 1 : n;
}

/** Lines added + removed between two files, by `git diff --no-index --numstat` (a binary change counts 1). */
function numstat(a: string, b: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('git', ['diff', '--no-index', '--numstat', '--', a, b], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.once('error', () => resolve(1));
    child.once('close', () => {
      const [added, removed] = out.split('\t');
      if (added === undefined || removed === undefined) return resolve(0); // identical contents (a mode change)
      if (added === '-') return resolve(1);
      resolve(Number(added) + Number(removed));
    });
  });
}
