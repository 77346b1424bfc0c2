// `import branching from 'vitest-environment-branching/plugin'`, then `plugins: [branching()]`:
// one line that turns on the full sandbox. Its config() hook sets the sandbox pool (workers born
// through the launcher), the setup file with the per-file and per-test hooks, and the snapshot
// environment that writes snapshots to the real tree. It leaves the project's environment alone:
// isolation is the pool's and the setup file's job, so jsdom, happy-dom or a custom environment work.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vitest/config';
import { core } from './core.ts';
import { type BranchingOptions, fallbackRefused, resolveOptions } from './options.ts';
import { branchingPool } from './pool.ts';

export type { BranchingOptions } from './options.ts';
export type { BranchingPool } from './pool.ts';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** The Vitest majors the pool and hooks are written for (the pool API came with 4.0). */
export const SUPPORTED_VITEST = '>=4.0.0 <6';

function vitestVersion(): string {
  return (createRequire(import.meta.url)('vitest/package.json') as { version: string }).version;
}

/** Refuses, before any test runs, a Vitest whose pool API this plugin does not speak. */
export function checkVitestVersion(version: string = vitestVersion()): void {
  const major = Number(version.split('.')[0]);
  if (major === 4 || major === 5) return;
  throw new core.ArgumentError(
    `vitest-environment-branching supports Vitest ${SUPPORTED_VITEST} (its custom pool API); this is Vitest ${version}: ` +
      'upgrade Vitest, or remove the plugin',
    { argument: 'vitest', code: 'ERR_BRANCHING_VITEST_VERSION' },
  );
}

const VM_POOLS = new Set(['vmThreads', 'vmForks']);

/** A pool that cannot run in the sandbox: say so once, and why (or refuse under fallback: false). */
function foreignPool(pool: string, options: ReturnType<typeof resolveOptions>): Record<string, unknown> {
  const why = VM_POOLS.has(pool)
    ? `pool '${pool}' runs test files in vm contexts, where the setup file's hooks cannot branch the project`
    : `pool '${pool}' runs test files in worker threads of one process, which cannot enter a namespace`;
  if (fallbackRefused(options)) {
    throw new core.NamespaceError(
      `vitest-environment-branching: refusing to run without the sandbox (fallback: false or BRANCHING_NO_FALLBACK=1): ${why}; use pool 'forks'`,
    );
  }
  if (VM_POOLS.has(pool)) {
    if (process.env.BRANCHING_QUIET !== '1') {
      process.stderr.write(`branching: no isolation at all: ${why}. Use pool 'forks' (or remove test.pool).\n`);
    }
    return {};
  }
  return {
    env: { BRANCHING_VITEST_FALLBACK: `${why}; use pool 'forks'`, BRANCHING_VITEST_OPTIONS: JSON.stringify(options) },
  };
}

/**
 * @param options defaults for every test file; a file's `@vitest-environment-options
 *   {"branching": {...}}` replaces them (Vitest does not merge the two)
 */
export default function branching(options: BranchingOptions = {}): Plugin {
  resolveOptions(options);
  return {
    name: 'vitest-environment-branching',
    config(config) {
      checkVitestVersion();
      const test = ((config as { test?: Record<string, any> }).test ?? {}) as Record<string, any>;
      const resolved = resolveOptions({ ...options, ...test.environmentOptions?.branching });
      const pool = test.pool as string | { name?: string } | undefined;
      let extra: Record<string, unknown> = { pool: branchingPool(resolved) };
      if (pool !== undefined && pool !== 'forks') {
        if (typeof pool !== 'string' || !['threads', ...VM_POOLS].includes(pool)) {
          throw new core.ArgumentError(
            `vitest-environment-branching/plugin: test.pool is ${JSON.stringify(typeof pool === 'string' ? pool : pool.name)}; ` +
              'the plugin brings its own pool (forks through the sandbox launcher): remove test.pool',
            { argument: 'test.pool' },
          );
        }
        extra = foreignPool(pool, resolved);
        if (VM_POOLS.has(pool)) return {};
      }
      // First, so that our beforeEach runs before (and our afterEach after) every other hook.
      const userSetup = test.setupFiles === undefined ? [] : [test.setupFiles].flat();
      (config as { test?: unknown }).test = { ...test, setupFiles: [here('./setup.js'), ...userSetup] };
      if (extra.env) extra.env = { ...test.env, ...(extra.env as object) };
      const snapshots = test.snapshotEnvironment ? {} : { snapshotEnvironment: here('./snapshot-environment.js') };
      return { test: { ...extra, ...snapshots } } as Record<string, unknown>;
    },
  };
}

export { branchingPool };
