// The setup file (setupFiles) of vitest-environment-branching: an environment cannot register
// per-test hooks, so these dispatch to what the environment set up for this worker. Registered
// first, our beforeEach runs before the test file's own hooks and our afterEach after them (Vitest
// runs afterEach hooks in reverse order), so a test's whole life happens inside its branch.
import { afterEach, beforeEach } from 'vitest';
import { workerState } from './state.js';

const state = workerState();
state.hooks = true;

beforeEach((ctx) => {
  state.beforeTest?.(ctx);
});

afterEach(async (ctx) => {
  state.file = ctx.task.file?.filepath ?? state.file;
  if (ctx.task.result?.state === 'fail') state.failed = true;
  await state.afterTest?.(ctx);
});
