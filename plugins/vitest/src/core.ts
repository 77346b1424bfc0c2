// Loads the core library `branching` (a peer dependency) through Node's own loader, never through
// Vite's module runner: the pool, the setup file and the environment must share one copy of it
// (its layer stacks and notices keep per-process state).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Core from '../../../src/index.ts';

const require = createRequire(import.meta.url);

function isBranchingRepo(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'branching';
  } catch {
    return false;
  }
}

function load(): typeof Core {
  try {
    return require('branching');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e?.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes("'branching'")) throw err;
    // Inside the branching repository itself (plugins/vitest/dist): npm workspaces cannot link the
    // root package into its own plugins, so use the repository's build.
    const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const bundle = join(repo, 'dist', 'index.cjs');
    if (isBranchingRepo(repo) && existsSync(bundle)) return require(bundle);
    throw new Error('vitest-environment-branching needs its peer dependency `branching`: npm install branching', {
      cause: err,
    });
  }
}

export const core: typeof Core = load();
export type { Core };
