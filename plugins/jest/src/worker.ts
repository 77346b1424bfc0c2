// The module the runner's jest-worker processes load instead of jest-runner's testWorker.js (whose
// `setup` and `worker` it re-exports): the file's branch is the worker's job, so it is mounted
// before Jest loads the file's environment, whichever environment that is (a docblock may pick
// another), and removed after the file's result is in.
import { relative } from 'node:path';
import { TEST_WORKER_ENV } from './constants.ts';
import { requireFrom } from './jest-modules.ts';
import { parseOptions } from './options.ts';
import { layersFor, type RootLayers, workerState } from './sandbox.ts';

interface WorkerArgs {
  config: { rootDir: string; testEnvironmentOptions?: Record<string, unknown> };
  path: string;
}

const testWorker = requireFrom(process.env[TEST_WORKER_ENV] ?? 'jest-runner/build/testWorker.js') as {
  setup: (...args: unknown[]) => unknown;
  worker: (args: WorkerArgs) => Promise<unknown>;
};

export const setup = testWorker.setup;

/** The file's branch, for the root the project's config names; invalid options are the environment's to report. */
function fileLayers(config: WorkerArgs['config']): RootLayers | null {
  let root: string;
  try {
    root = parseOptions(config.testEnvironmentOptions?.branching, config.rootDir).root;
  } catch {
    return null;
  }
  return layersFor(workerState(), root);
}

export async function worker(args: WorkerArgs): Promise<unknown> {
  const state = workerState();
  const layers = fileLayers(args.config);
  if (layers) {
    // Fixed for the worker's life: libraries keep the first os.tmpdir() they see.
    process.env.TMPDIR = layers.tmpdir;
    layers.push(
      `file-${relative(layers.root, args.path)
        .replace(/[^A-Za-z0-9_.-]+/g, '_')
        .slice(0, 60)}`,
    );
  }
  state.file = { path: args.path, layers };
  try {
    return await testWorker.worker(args);
  } finally {
    layers?.popAll();
    state.file = null;
  }
}
