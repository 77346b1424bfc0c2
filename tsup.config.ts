import { defineConfig } from 'tsup';
import jest from './plugins/jest/tsup.options.mts';
import vitest from './plugins/vitest/tsup.options.mts';

// The library as one ESM and one CJS bundle, with declarations, and its layer engine alone
// (`branching/layers`, for test workers: see src/layers.ts); the CLI (the `bin`) as ESM only,
// nobody requires it. `shims` maps import.meta.url to __filename in the CJS build (native addon
// and launcher paths are resolved relative to the bundle). No source maps: they would triple the
// tarball, and a map that is not shipped makes bundlers (Vite) warn about it. The plugins
// (TypeScript adapters) bring their own entries, built into their own dist/.
const common = { target: 'node20', platform: 'node', shims: true, sourcemap: false, splitting: false } as const;
export default defineConfig([
  {
    ...common,
    entry: { index: 'src/index.ts', layers: 'src/layers.ts' },
    format: ['esm', 'cjs'],
    dts: { entry: { index: 'src/index.ts', layers: 'src/layers.ts' } },
    // The CLI build writes into the same dist/ at the same time: leave its file alone.
    clean: ['!cli.js'],
  },
  { ...common, entry: { cli: 'src/cli/main.ts' }, format: ['esm'] },
  ...vitest,
  ...jest,
]);
