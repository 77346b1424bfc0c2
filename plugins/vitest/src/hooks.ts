// What the setup file (setup.ts) installs: an environment cannot register per-test hooks, and the
// project may use any environment (node, jsdom, happy-dom, ...), so the branching happens here.
// Vitest runs setup files before each test file is imported, so the file's layer is up before the
// test file's own top-level code. Registered first, our
// beforeEach runs before the file's own hooks, our afterEach and afterAll after them (Vitest runs
// after-hooks in reverse order): a test's whole life happens inside its branch, and the file's
// beforeAll/afterAll (at any depth) inside the file's.
import type { afterAll, afterEach, beforeEach } from 'vitest';
import { openCloneSession } from './clone.ts';
import { resolveOptions } from './options.ts';
import { SandboxSession } from './sandbox.ts';
import { type HookContext, type Session, sandboxInfo, type WorkerState, workerState } from './state.ts';

async function open(state: WorkerState): Promise<Session> {
  const info = sandboxInfo();
  if (info) {
    state.sandbox ??= new SandboxSession(info);
    const session = state.sandbox as SandboxSession;
    session.beginFile(currentFile());
    return session;
  }
  // The pool's (with this file's docblock) first, else the plugin's (pools that are not ours).
  const text = process.env.BRANCHING_VITEST_OPTIONS ?? process.env.BRANCHING_VITEST_CONFIG_OPTIONS;
  const options = resolveOptions(JSON.parse(text ?? 'null'));
  return openCloneSession(options);
}

/** The test file this setup run belongs to (for labels of kept branches). */
function currentFile(): string {
  const worker = (globalThis as { __vitest_worker__?: { filepath?: string } }).__vitest_worker__;
  return worker?.filepath ?? 'file';
}

export interface Hooks {
  afterAll: typeof afterAll;
  afterEach: typeof afterEach;
  beforeEach: typeof beforeEach;
}

/** Opens (or continues) this worker's session for the test file being set up and registers its hooks. */
export async function installHooks({ afterAll, afterEach, beforeEach }: Hooks): Promise<void> {
  const state = workerState();
  state.hooks = true;
  state.failed = false;
  // The environment (`environment: 'branching'` alone) may have opened a session already: it ends it.
  if (state.owner !== 'environment' || !state.session) {
    state.session = await open(state);
    state.owner = 'setup';
  }

  beforeEach((ctx) => {
    state.session?.beforeTest(ctx as unknown as HookContext);
  });

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') state.failed = true;
    await state.session?.afterTest(ctx as unknown as HookContext);
  });

  afterAll(async () => {
    if (state.owner !== 'setup') return;
    const session = state.session;
    state.session = null;
    state.owner = null;
    await session?.endFile();
  });
}
