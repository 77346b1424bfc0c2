// Which Vitest this is, and which of its APIs the plugin speaks: the one version check that picks
// the version-specific parts (the pool module for 3.2, the transform field of the environment).
import { createRequire } from 'node:module';
import { core } from './core.ts';

/** The Vitest versions the pool and hooks are written for: 3.2 (its own pool API), 4 and 5. */
export const SUPPORTED_VITEST = '>=3.2.0 <6';

/** The running Vitest's version (the one that resolves from here, as Vitest's own imports do). */
export function vitestVersion(): string {
  return (createRequire(import.meta.url)('vitest/package.json') as { version: string }).version;
}

/** Which custom pool API the running Vitest speaks: 3.2's pool module, or 4.0's PoolWorker. */
export function poolApiOf(version: string): 'v3' | 'v4' | null {
  const [major, minor] = version.split('.').map(Number);
  if (major === 4 || major === 5) return 'v4';
  if (major === 3 && minor === 2) return 'v3';
  return null;
}

/**
 * Refuses, before any test runs, a Vitest whose pool API this plugin does not speak.
 * @returns the API that selects the version-specific parts (the pool, the environment's shape)
 */
export function checkVitestVersion(version: string = vitestVersion()): 'v3' | 'v4' {
  const api = poolApiOf(version);
  if (api) return api;
  throw new core.ArgumentError(
    `vitest-environment-branching supports Vitest ${SUPPORTED_VITEST} (its custom pool API); this is Vitest ${version}: ` +
      'upgrade Vitest, or remove the plugin',
    { argument: 'vitest', code: 'ERR_BRANCHING_VITEST_VERSION' },
  );
}
