/**
 * Where a project sits in git: test roots are often a package of a monorepo
 * (`packages/foo`), whose git commands must still find the repository, and
 * whose branch state must never land inside the work tree.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** The nearest directory at or above `dir` holding a `.git` (a directory, or a file for worktrees and submodules); null outside git. */
export function gitWorkTreeTop(dir: string): string | null {
  let current = realpathSync(dir);
  for (;;) {
    try {
      const st = lstatSync(join(current, '.git'));
      if (st.isDirectory() || st.isFile()) return current;
    } catch {
      // no .git here: keep walking up
    }
    const parent = dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/** The outermost work tree enclosing `dir` (a submodule's superproject, not the submodule), or null. */
export function outermostWorkTree(dir: string): string | null {
  let top = gitWorkTreeTop(dir);
  for (let next = top; next !== null; ) {
    top = next;
    const parent = dirname(next);
    next = parent === next ? null : gitWorkTreeTop(parent);
  }
  return top;
}

/**
 * The directory to branch for tests rooted at `testRoot`: the outermost git work tree around it
 * (a package of a monorepo still needs `.git` and its sibling packages, or git in a test stops at
 * the overlay's filesystem boundary; a submodule needs its superproject's `.git/modules`), else
 * `testRoot` itself. Canonical.
 */
export function defaultBranchRoot(testRoot: string): string {
  const real = realpathSync(testRoot);
  return outermostWorkTree(real) ?? real;
}

/** Whether `path` is `dir` or lies below it (both canonical). */
export function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep));
}

/** The nearest directory holding both absolute paths (`/` when they share nothing else). */
export function commonAncestor(a: string, b: string): string {
  let dir = a;
  while (!isInside(b, dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
