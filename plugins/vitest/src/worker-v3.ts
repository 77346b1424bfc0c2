// The main module of a sandboxed Vitest 3.2 worker process (pool-v3.ts starts it through the
// launcher). Vitest 3.2 runs its forks workers under tinypool, whose child entry imports Vitest's
// worker module and calls its run / collect / teardown for each task; this does the same for our
// pool. Our messages carry tinypool's marker, which Vitest's own worker RPC skips.

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** A task from pool-v3.ts; the reply echoes its id. */
export interface WorkerTask {
  __tinypool_worker_message__: true;
  source: 'branching';
  id: number;
  method: 'run' | 'collect' | 'teardown';
  /** Vitest's worker module (dist/worker.js), which exports the three. */
  filename: string;
  ctx?: unknown;
}

export interface WorkerReply {
  __tinypool_worker_message__: true;
  source: 'branching';
  id: number;
  error: { name: string; message: string; stack?: string } | null;
}

export function isWorkerMessage(message: unknown): message is WorkerTask | WorkerReply {
  const m = message as Partial<WorkerTask> | null;
  return typeof m === 'object' && m !== null && m.__tinypool_worker_message__ === true && m.source === 'branching';
}

type VitestWorkerModule = Record<WorkerTask['method'], (ctx?: unknown) => Promise<void>>;

async function runTask(task: WorkerTask, send: (reply: WorkerReply) => void): Promise<void> {
  let error: WorkerReply['error'] = null;
  try {
    const worker = (await import(task.filename)) as VitestWorkerModule;
    await worker[task.method](task.ctx);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    error = { name: e.name, message: e.message, stack: e.stack };
  }
  // Like tinypool: the task's output reaches the pipes before the pool hears that it ended.
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength > 0) await new Promise((done) => stream.write('', done));
  }
  send({ __tinypool_worker_message__: true, source: 'branching', id: task.id, error });
}

function main(): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('vitest-environment-branching: worker-v3 runs only as a child process of its pool');
  // Vitest 3.2 reads its pool id (VITEST_POOL_ID) from tinypool's process state.
  (process as unknown as Record<string, unknown>).__tinypool_state__ = {
    isChildProcess: true,
    isTinypoolWorker: true,
    workerData: null,
    workerId: Number(process.env.TINYPOOL_WORKER_ID),
  };
  process.on('message', (message) => {
    if (isWorkerMessage(message) && 'method' in message) void runTask(message, (reply) => send(reply));
  });
}

/** Whether this module is the process's main module (pool-v3.ts imports it for the types and the check). */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false; // argv[1] is no file (node -e): not us
  }
}

if (isMain()) main();
