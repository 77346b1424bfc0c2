import type { Options } from 'tsup';

// The Jest plugin: CommonJS (Jest requires environments, runners and presets), one bundle per entry
// in plugins/jest/dist; `branching` stays external (a peer dependency), so the core's native addon
// and launcher are found relative to the core's own bundle.
const options: Options[] = [
  {
    entry: {
      index: 'plugins/jest/src/index.ts',
      // Built as runner.cjs: Jest configs name it `jest-environment-branching/runner`.
      runner: 'plugins/jest/src/sandbox-runner.ts',
      preset: 'plugins/jest/src/preset.ts',
      worker: 'plugins/jest/src/worker.ts',
    },
    outDir: 'plugins/jest/dist',
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    target: 'node20',
    platform: 'node',
    external: ['branching'],
    sourcemap: false,
    clean: true,
    splitting: false,
  },
];
export default options;
