// `import branching from 'vitest-environment-branching/plugin'`, then `plugins: [branching()]`:
// one line that turns on the full sandbox. Its config() hook sets the sandbox pool (workers born
// through the launcher), the setup file with the per-file and per-test hooks, and the snapshot
// environment that writes snapshots to the real tree. It leaves the project's environment alone:
// isolation is the pool's and the setup file's job, so jsdom, happy-dom or a custom environment work.
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vitest/config';
import { core } from './core.ts';
import { type BranchingOptions, fallbackRefused, type ResolvedOptions, resolveOptions } from './options.ts';
import { branchingPool, POOL_NAME } from './pool.ts';
import { sandboxFilesHooks } from './sandbox-files.ts';
import { checkVitestVersion } from './version.ts';

export type { BranchingOptions } from './options.ts';
export type { BranchingPool } from './pool.ts';
export { checkVitestVersion, SUPPORTED_VITEST } from './version.ts';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url)).replace(/\/$/, '');
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Vitest 3.2 takes a custom pool as the path of a module (pool-v3.ts); 4.0+ as an object. */
const POOL_V3 = here('./pool-v3.js');
const isOurPool = (pool: unknown) => pool === POOL_NAME || pool === POOL_V3;

const VM_POOLS = new Set(['vmThreads', 'vmForks']);
const THREAD_POOLS = new Set(['threads', ...VM_POOLS]);

/** Why a pool other than ours gets no sandbox. */
function foreignPoolReason(pool: string): string {
  return VM_POOLS.has(pool)
    ? `pool '${pool}' runs test files in vm contexts of workers that only the sandbox pool could start in a namespace`
    : `pool '${pool}' runs test files in worker threads of one process, which cannot enter a namespace`;
}

let told = false;
/**
 * The final pool (the config's, or --pool) is not ours: say so once, and why, or refuse under
 * fallback: false. The setup file then falls back to clone branches and its notice names the pool.
 */
function checkFinalPool(config: { pool?: unknown; env?: Record<string, string> }, options: ResolvedOptions): void {
  if (isOurPool(config.pool)) return;
  const why = foreignPoolReason(String(config.pool));
  config.env = { ...config.env, BRANCHING_VITEST_FALLBACK: why };
  if (fallbackRefused(options)) {
    throw new core.NamespaceError(
      `vitest-environment-branching: refusing to run without the sandbox (fallback: false or BRANCHING_NO_FALLBACK=1): ${why}; use pool 'forks'`,
    );
  }
  if (told || process.env.BRANCHING_QUIET === '1') return;
  told = true;
  process.stderr.write(`branching: ${why}. Use pool 'forks' (or remove test.pool) for the sandbox.\n`);
}

/**
 * @param options defaults for every test file; a file's `@vitest-environment-options
 *   {"branching": {...}}` replaces them (Vitest does not merge the two)
 */
export default function branching(options: BranchingOptions = {}): Plugin {
  let resolved = resolveOptions(options);
  return {
    name: 'vitest-environment-branching',
    config(config) {
      const api = checkVitestVersion();
      const test = ((config as { test?: Record<string, any> }).test ?? {}) as Record<string, any>;
      resolved = resolveOptions({ ...options, ...test.environmentOptions?.branching });
      const pool = test.pool as string | { name?: string } | undefined;
      const foreign = typeof pool === 'string' && THREAD_POOLS.has(pool);
      if (pool !== undefined && pool !== 'forks' && !foreign) {
        throw new core.ArgumentError(
          `vitest-environment-branching/plugin: test.pool is ${JSON.stringify(typeof pool === 'string' ? pool : pool.name)}; ` +
            'the plugin brings its own pool (forks through the sandbox launcher): remove test.pool',
          { argument: 'test.pool' },
        );
      }
      // First, so that our beforeEach runs before (and our afterEach after) every other hook.
      const userSetup = test.setupFiles === undefined ? [] : [test.setupFiles].flat();
      (config as { test?: unknown }).test = { ...test, setupFiles: [here('./setup.js'), ...userSetup] };
      const snapshots = test.snapshotEnvironment ? {} : { snapshotEnvironment: here('./snapshot-environment.js') };
      const env = {
        ...test.env,
        BRANCHING_VITEST_CONFIG_OPTIONS: JSON.stringify(resolved),
        BRANCHING_VITEST_HOOKS: here('./hooks.js'),
      };
      // Our modules run natively in every environment (a DOM environment would transform them for
      // the browser); only the setup file itself is always transformed, and it stays tiny.
      const server = { deps: { external: [new RegExp(`^${escapeRegExp(here('.'))}/`)] } };
      return {
        // DOM environments (jsdom, happy-dom) load the setup file through Vite's client environment,
        // which serves only allowed directories: ours is outside the project.
        server: { fs: { allow: [here('.')] } },
        test: {
          ...(foreign ? {} : { pool: api === 'v3' ? POOL_V3 : branchingPool(resolved) }),
          env,
          server,
          ...snapshots,
        },
      };
    },
    // Modules a test wrote inside its sandbox, which this process cannot see otherwise.
    resolveId: { order: 'pre', handler: sandboxFilesHooks.resolveId },
    load: { order: 'pre', handler: sandboxFilesHooks.load },
    // After the CLI's options (--pool) are in: the pool that really runs the files.
    configureVitest({ project }) {
      checkFinalPool(project.config as { pool?: unknown; env?: Record<string, string> }, resolved);
    },
  };
}

export { branchingPool };
