import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The unprivileged run cannot write node_modules/.vite.
  cacheDir: join(tmpdir(), 'branching-vitest-cache'),
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'test/fixtures/**'],
    pool: 'forks',
    // Most test files spend their time waiting on the real Vitest, Jest and git they spawn, which
    // bring their own workers: one file per core leaves the cores idle (Vitest's default is cores - 1).
    maxWorkers: Math.max(2, availableParallelism()),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: ['test/setup.ts'],
  },
});
