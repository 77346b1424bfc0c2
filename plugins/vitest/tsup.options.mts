import type { Options } from 'tsup';

// The plugin's build entries (the root tsup.config.ts builds every package): ESM only, since Vitest
// loads plugins, setup files and environments as ES modules. `branching` (the core, a peer) and
// Vitest stay external: one copy of each is shared by everything in a worker.
const options: Options[] = [
  {
    entry: {
      index: 'plugins/vitest/src/index.ts',
      plugin: 'plugins/vitest/src/plugin.ts',
      setup: 'plugins/vitest/src/setup.ts',
      hooks: 'plugins/vitest/src/hooks.ts',
      'snapshot-environment': 'plugins/vitest/src/snapshot-environment.ts',
      'pool-v3': 'plugins/vitest/src/pool-v3.ts',
      'worker-v3': 'plugins/vitest/src/worker-v3.ts',
    },
    outDir: 'plugins/vitest/dist',
    format: ['esm'],
    dts: { entry: { index: 'plugins/vitest/src/index.ts', plugin: 'plugins/vitest/src/plugin.ts' } },
    target: 'node20',
    platform: 'node',
    sourcemap: false,
    clean: true,
    splitting: false,
    external: ['branching', 'vitest', /^vitest\//],
  },
];
export default options;
