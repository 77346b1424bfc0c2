// Loads the core library `branching` (a peer dependency) through Node's own loader, never through
// Vite's module runner: the pool, the setup file and the environment must share one copy of it
// (its layer stacks and notices keep per-process state). Each is loaded on first use: a test
// worker is a process per test file, and in sandbox mode it needs only the layer engine
// (`branching/layers`), a fifth of the whole library's size to compile.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Core from '../../../src/index.ts';
import type * as Layers from '../../../src/layers.ts';

const require = createRequire(import.meta.url);

function isBranchingRepo(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'branching';
  } catch {
    return false;
  }
}

function load<T>(specifier: string, bundle: string): T {
  try {
    return require(specifier);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e?.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes(`'${specifier}'`)) throw err;
    // Inside the branching repository itself (plugins/vitest/dist): npm workspaces cannot link the
    // root package into its own plugins, so use the repository's build.
    const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const built = join(repo, 'dist', bundle);
    if (isBranchingRepo(repo) && existsSync(built)) return require(built);
    throw new Error('vitest-environment-branching needs its peer dependency `branching`: npm install branching', {
      cause: err,
    });
  }
}

/** A module namespace that is loaded when one of its members is first read. */
function onFirstUse<T extends object>(loadModule: () => T): T {
  let loaded: T | undefined;
  const module = (): T => {
    loaded ??= loadModule();
    return loaded;
  };
  return new Proxy({} as T, {
    get: (_target, key) => Reflect.get(module(), key),
    has: (_target, key) => Reflect.has(module(), key),
  });
}

export const core: typeof Core = onFirstUse(() => load<typeof Core>('branching', 'index.cjs'));
export const layers: typeof Layers = onFirstUse(loadLayers);

function loadLayers(): typeof Layers {
  try {
    return load<typeof Layers>('branching/layers', 'layers.cjs');
  } catch (err) {
    // A core release without the entry: the whole library exports the same.
    if ((err as NodeJS.ErrnoException)?.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return core;
    throw err;
  }
}

export type { Core };
