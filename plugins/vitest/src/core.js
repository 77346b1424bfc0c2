// Loads the core library `branching` (a peer dependency) through Node's own loader, never through
// Vite's module runner: the environment, the setup file and the pool must share one copy of it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

function isBranchingRepo(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'branching';
  } catch {
    return false;
  }
}

function load() {
  try {
    return require('branching');
  } catch (err) {
    if (err?.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes("'branching'")) throw err;
    // Inside the branching repository itself: npm workspaces cannot link the root package into
    // its own plugins, so use the repository's build.
    const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const bundle = join(repo, 'dist', 'index.cjs');
    if (isBranchingRepo(repo) && existsSync(bundle)) return require(bundle);
    throw new Error('vitest-environment-branching needs its peer dependency `branching`: npm install branching', {
      cause: err,
    });
  }
}

/** @type {typeof import('branching')} */
export const core = load();
