/**
 * A change set: what a branch did to its parent's tree, in the order it must
 * be applied (parents before children). Paths are relative, '/'-separated,
 * and never contain '.', '..' or empty components. Every path appears once,
 * with the final state it must have.
 */
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
