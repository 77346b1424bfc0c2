/**
 * A change set: what a branch did to its parent's tree, in the order it must
 * be applied (parents before children). Paths are relative, '/'-separated,
 * and never contain '.', '..' or empty components. Every path appears once,
 * with the final state it must have.
 */
import {
  chmodSync,
  copyFileSync,
  cpSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';
import { removeTreeSync } from './fsutil.ts';

export type Change =
  /** Remove whatever is at `path` (recursively). */
  | { op: 'delete'; path: string }
  /** Make sure a directory is at `path` (replacing a non-directory), with `mode`. */
  | { op: 'mkdir'; path: string; mode: number }
  /** Put the regular file `source` at `path` (mode and mtime come with it). */
  | { op: 'file'; path: string; source: string }
  /** Put a symlink to `target` at `path`. */
  | { op: 'symlink'; path: string; target: string }
  /** Replace whatever is at `path` with the whole directory tree `source` (an opaque directory). */
  | { op: 'tree'; path: string; source: string };

export function depthOf(path: string): number {
  let depth = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) depth++;
  return depth;
}

/** Sorts changes so that every ancestor's change precedes its descendants'. */
export function orderChanges(changes: Change[]): Change[] {
  return [...changes].sort((a, b) => depthOf(a.path) - depthOf(b.path) || (a.path < b.path ? -1 : 1));
}

/**
 * Applies a change set to `root` in place, without the journal: for trees
 * nobody else sees and that a crash may leave half-changed (a layer under
 * the one being settled). Directory modes are set last, children first, so
 * that a read-only directory can still receive its new entries.
 */
export function applyChangesSync(changes: Change[], root: string): void {
  const dirModes: Array<{ path: string; mode: number }> = [];
  const asRoot = process.getuid?.() === 0;
  for (const change of orderChanges(changes)) {
    const dest = join(root, change.path);
    const current = lstatSync(dest, { throwIfNoEntry: false });
    if (change.op === 'mkdir') {
      if (current && !current.isDirectory()) removeTreeSync(dest);
      if (!current?.isDirectory()) mkdirSync(dest, { mode: 0o700 });
      else chmodSync(dest, (current.mode & 0o7777) | 0o700);
      dirModes.push({ path: dest, mode: change.mode });
      continue;
    }
    if (current) removeTreeSync(dest);
    if (change.op === 'symlink') symlinkSync(change.target, dest);
    else if (change.op === 'file') copyFileWithMetadataSync(change.source, dest, asRoot);
    else if (change.op === 'tree') {
      cpSync(change.source, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    }
  }
  for (const { path, mode } of dirModes.reverse()) chmodSync(path, mode);
}

function copyFileWithMetadataSync(source: string, dest: string, asRoot: boolean): void {
  copyFileSync(source, dest);
  const st = statSync(source);
  chmodSync(dest, st.mode & 0o7777);
  utimesSync(dest, st.atime, st.mtime);
  if (asRoot) lchownSync(dest, st.uid, st.gid);
}
