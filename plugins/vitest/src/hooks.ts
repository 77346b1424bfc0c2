// What the setup file (setup.ts) installs: an environment cannot register per-test hooks, and the
// project may use any environment (node, jsdom, happy-dom, ...), so the branching happens here.
// Vitest runs setup files before each test file is imported, so the file's layer is up before the
// test file's own top-level code. Registered first, our
// beforeEach runs before the file's own hooks, our afterEach and afterAll after them (Vitest runs
// after-hooks in reverse order): a test's whole life happens inside its branch, and the file's
// beforeAll/afterAll (at any depth) inside the file's.
import type { afterAll, afterEach, beforeEach } from 'vitest';
import { openCloneSession } from './clone.ts';
import { serveSandboxModules } from './module-fetch.ts';
import { docblockOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { SandboxSession } from './sandbox.ts';
import { type HookContext, type Session, sandboxInfo, type WorkerState, workerState } from './state.ts';

async function open(state: WorkerState): Promise<Session> {
  const info = sandboxInfo();
  if (info) {
    serveSandboxModules(workerContext() as Parameters<typeof serveSandboxModules>[0], info.dir);
    state.sandbox ??= new SandboxSession(info);
    const session = state.sandbox as SandboxSession;
    session.beginFile(workerContext()?.filepath ?? 'file', fileOptions(info.options));
    return session;
  }
  // The pool's first, else the plugin's (pools that are not ours).
  const text = process.env.BRANCHING_VITEST_OPTIONS ?? process.env.BRANCHING_VITEST_CONFIG_OPTIONS;
  return openCloneSession(fileOptions(resolveOptions(JSON.parse(text ?? 'null'))));
}

interface WorkerContext {
  filepath?: string;
  ctx?: { environment?: { name?: string; options?: unknown } };
}

function workerContext(): WorkerContext | undefined {
  return (globalThis as { __vitest_worker__?: WorkerContext }).__vitest_worker__;
}

/**
 * This file's docblock options, read in the worker: Vitest 4.0.0 tells a custom pool only the
 * environment's name. root and network stay as the worker was started with them.
 */
function fileOptions(base: ResolvedOptions): ResolvedOptions {
  const own = docblockOptions(workerContext()?.ctx?.environment);
  if (own === undefined) return base;
  return { ...resolveOptions(own), root: base.root, network: base.network };
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
