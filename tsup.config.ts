import { defineConfig } from 'tsup';
import jest from './plugins/jest/tsup.options.mts';
import vitest from './plugins/vitest/tsup.options.mts';

// One ESM and one CJS bundle per entry, with declarations. `shims` maps
// import.meta.url to __filename in the CJS build (native addon and launcher
// paths are resolved relative to the bundle). The plugins (TypeScript
// adapters) bring their own entries, built into their own dist/.
export default defineConfig([
  {
    entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
    format: ['esm', 'cjs'],
    dts: { entry: { index: 'src/index.ts' } },
    target: 'node20',
    platform: 'node',
    shims: true,
    sourcemap: true,
    clean: true,
    splitting: false,
  },
  ...vitest,
  ...jest,
]);
