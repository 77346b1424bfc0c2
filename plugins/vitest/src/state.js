// State shared by the environment, the setup file and the tests of one worker. It lives on
// globalThis under a registered symbol because Vite's module runner may load our modules more
// than once (the environment, the setup file and a test's own import are separate graphs).
const KEY = Symbol.for('vitest-environment-branching');

/**
 * @typedef {object} WorkerState
 * @property {import('./index.js').BranchInfo | null} branch  the current branch, for tests
 * @property {((ctx: any) => void) | null} beforeTest
 * @property {((ctx: any) => void | Promise<void>) | null} afterTest
 * @property {boolean} failed  whether a test of this file failed (recorded by the setup file)
 * @property {boolean} hooks  whether the setup file is loaded (per-test hooks work)
 */

/** @returns {WorkerState} */
export function workerState() {
  globalThis[KEY] ??= { branch: null, beforeTest: null, afterTest: null, failed: false, hooks: false };
  return globalThis[KEY];
}

/** What the plugin's pool tells a worker it started in a sandbox (env BRANCHING_VITEST), or null. */
export function sandboxInfo() {
  const text = process.env.BRANCHING_VITEST;
  if (!text || process.env.BRANCHING_SANDBOX !== '1') return null;
  return JSON.parse(text);
}
