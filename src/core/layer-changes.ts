/**
 * What a layer changed, in terms of the view under it: the journal's change
 * set (what to apply) says what the layer holds; comparing each path with
 * the view below says whether it was added, modified or replaced.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Change } from '../base/changes.ts';

export type LayerChangeKind = 'added' | 'modified' | 'deleted' | 'opaque';

/** One path the top layer changed relative to the view under it. */
export interface LayerChange {
  /** Relative to the target, '/'-separated. */
  readonly path: string;
  /**
   * added: nothing was there; modified: replaced or changed in place (a
   * directory: its mode); deleted: gone; opaque: a directory that replaces
   * whatever was there, content and all (rm -rf, then made again); what
   * is in it now is listed as added.
   */
  readonly kind: LayerChangeKind;
  /** What is at `path` now; null when deleted. */
  readonly type: 'file' | 'dir' | 'symlink' | null;
}

/** The view under a layer, through a descriptor of the target taken before the layer was mounted over it. */
export function belowView(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

export function existsIn(view: string, rel: string): boolean {
  return lstatOrNull(join(view, rel)) !== null;
}

/** The layer's changes against `below`, parents before children. */
export function describeChanges(raw: readonly Change[], below: string): LayerChange[] {
  const out: LayerChange[] = [];
  for (const change of raw) {
    const classified = classify(change, join(below, change.path));
    if (classified) out.push(classified);
    // overlayfs marks new directories opaque too (kernel-dependent): list their content either way.
    if (change.op === 'tree') out.push(...treeEntries(change.source, change.path));
  }
  return out;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null; // ENOENT, or ENOTDIR under what is a file below
  }
}

function typeOf(change: Change): LayerChange['type'] {
  if (change.op === 'file') return 'file';
  if (change.op === 'symlink') return 'symlink';
  return change.op === 'delete' ? null : 'dir';
}

/** A journal change as seen against the view below; null for a directory that only holds changed entries. */
function classify(change: Change, belowPath: string): LayerChange | null {
  const type = typeOf(change);
  if (change.op === 'delete') return { path: change.path, kind: 'deleted', type };
  const before = lstatOrNull(belowPath);
  if (!before) return { path: change.path, kind: 'added', type };
  if (change.op === 'tree') return { path: change.path, kind: 'opaque', type };
  if (change.op === 'mkdir') {
    if (before.isDirectory() && (before.mode & 0o7777) === change.mode) return null;
  }
  return { path: change.path, kind: 'modified', type };
}

/** Everything under an added or opaque directory: all of it is new. */
function treeEntries(source: string, rel: string): LayerChange[] {
  const out: LayerChange[] = [];
  for (const entry of readdirSync(source, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      out.push({ path, kind: 'added', type: 'dir' });
      out.push(...treeEntries(join(source, entry.name), path));
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      out.push({ path, kind: 'added', type: entry.isFile() ? 'file' : 'symlink' });
    }
  }
  return out;
}
