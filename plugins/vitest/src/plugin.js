// `import branching from 'vitest-environment-branching/plugin'`, then `plugins: [branching()]`:
// one line that turns on the full sandbox. Its config() hook sets the environment, the sandbox
// pool (workers born through the launcher), the setup file with the per-test hooks, and the
// snapshot environment that writes snapshots to the real tree.
import { fileURLToPath } from 'node:url';
import { resolveOptions } from './options.js';
import { branchingPool } from './pool.js';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

/**
 * @param {import('./options.js').BranchingOptions} [options] defaults for every test file; a file's
 *   `@vitest-environment-options {"branching": {...}}` replaces them (Vitest does not merge the two)
 */
export default function branching(options = {}) {
  resolveOptions(options);
  return {
    name: 'vitest-environment-branching',
    config(config) {
      const test = config.test ?? {};
      const userPool = test.pool;
      if (userPool !== undefined && userPool !== 'forks') {
        throw new Error(
          `vitest-environment-branching/plugin: test.pool is ${JSON.stringify(typeof userPool === 'string' ? userPool : userPool.name)}; ` +
            "the plugin brings its own pool (forks through the sandbox launcher): remove test.pool, or use environment: 'branching' alone",
        );
      }
      // First, so that our beforeEach runs before (and our afterEach after) every other hook.
      const userSetup = test.setupFiles === undefined ? [] : [test.setupFiles].flat();
      config.test = { ...test, setupFiles: [here('./setup.js'), ...userSetup] };
      return {
        test: {
          environment: 'branching',
          environmentOptions: { branching: { ...options, ...test.environmentOptions?.branching } },
          pool: branchingPool(options),
          ...(test.snapshotEnvironment ? {} : { snapshotEnvironment: here('./snapshot-environment.js') }),
        },
      };
    },
  };
}

export { branchingPool };
