/** Env var the runner sets for its workers: jest-runner's testWorker.js, which worker.ts wraps. */
export const TEST_WORKER_ENV = 'BRANCHING_JEST_TEST_WORKER';
