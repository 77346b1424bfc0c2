// vitest-environment-branching: `currentBranch()` for tests, and `environment: 'branching'` (a
// node environment, in the shape of Vitest's own). Isolation does not depend on this environment:
// the plugin's pool and setup file give any environment (jsdom, happy-dom, ...) its branches.
// Used alone, without the plugin's pool, it opens a clone branch per file (see clone.ts).
import type { Environment } from 'vitest/environments';
import { openCloneSession } from './clone.ts';
import { core } from './core.ts';
import { docblockOptions, resolveOptions } from './options.ts';
import { type BranchInfo, sandboxInfo, workerState } from './state.ts';
import { poolApiOf, vitestVersion } from './version.ts';

export type { BranchingOptions } from './options.ts';
export type { BranchInfo } from './state.ts';

/** The branch the running test sees. Throws when the test runs in no branch. */
export function currentBranch(): BranchInfo {
  const branch = workerState().session?.branch;
  if (!branch) {
    throw new Error(
      "currentBranch(): this test runs in no branch (use plugins: [branching()] from 'vitest-environment-branching/plugin')",
    );
  }
  return branch;
}

/** `@vitest-environment-options` arrives filed under our name; the config's options as they are. */
function optionsOf(all: Record<string, unknown>): unknown {
  const fromDocblock = docblockOptions({ name: 'branching', options: all });
  return fromDocblock ?? all.branching;
}

/** Vitest's own node environment: from vitest/runtime (4.1+, 5), or vitest/environments (4.0). */
async function nodeEnvironment(): Promise<Environment> {
  const mod = await import('vitest/runtime').catch(() => import('vitest/environments'));
  return mod.builtinEnvironments.node;
}

const environment: Environment = {
  name: 'branching',
  viteEnvironment: 'ssr',
  // Vitest 3.2 requires the older name of the same choice (4.x warns that it is deprecated).
  ...(poolApiOf(vitestVersion()) === 'v3' ? { transformMode: 'ssr' as const } : {}),
  async setup(global, all) {
    const options = resolveOptions(optionsOf(all ?? {}));
    const node = await (await nodeEnvironment()).setup(global, all?.node ?? {});
    const state = workerState();
    if (!sandboxInfo() && !state.session) {
      state.session = await openCloneSession(options);
      state.owner = 'environment';
    }
    return {
      async teardown(g) {
        if (state.owner === 'environment') {
          const session = state.session;
          state.session = null;
          state.owner = null;
          await session?.endFile();
        }
        await node.teardown(g);
      },
    };
  },
  setupVM() {
    throw new core.ArgumentError(
      "vitest-environment-branching does not support the vmThreads and vmForks pools: use pool 'forks' " +
        "(or plugins: [branching()] from 'vitest-environment-branching/plugin', which sets its sandbox pool)",
      { argument: 'pool' },
    );
  },
};
export default environment;
