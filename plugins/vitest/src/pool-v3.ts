// The sandbox pool on Vitest 3.2, whose custom pool API predates 4.0's PoolWorker: `test.pool`
// names a module whose default export makes a ProcessPool (runTests / collectTests over test
// specifications), and that pool owns the scheduling, the workers and the main half of each
// worker's RPC. The workers are the shared SandboxPoolWorker (pool.ts), started with worker-v3.js
// as their main module; what they do inside the sandbox is the same as on 4.x.
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import * as vitestNode from 'vitest/node';
import { type BranchingOptions, resolveOptions } from './options.ts';
import { SandboxPoolWorker, type WorkerOptions } from './pool.ts';
import { isWorkerMessage, type WorkerReply, type WorkerTask } from './worker-v3.ts';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-v3.js', import.meta.url));

/** The parts of Vitest 3.2's node API this pool uses (this repository type-checks against 4.x). */
interface Project3 {
  name: string;
  config: WorkerOptions['project']['config'] & {
    environment?: string;
    environmentMatchGlobs?: [string, string][];
    testTransformMode?: { web?: string[]; ssr?: string[] };
    env?: Record<string, string>;
  };
  vitest: Vitest3;
  getSerializableConfig(): unknown;
  getProvidedContext(): unknown;
}
interface Vitest3 {
  distPath: string;
  config: WorkerOptions['project']['vitest']['config'] & {
    watch?: boolean;
    maxWorkers?: number;
    fileParallelism?: boolean;
    poolOptions?: { forks?: { isolate?: boolean; singleFork?: boolean; maxForks?: number; execArgv?: string[] } };
  };
  logger: WorkerOptions['project']['vitest']['logger'];
  state: {
    clearFiles(project: Project3, paths: string[]): void;
    cancelFiles(paths: string[], project: Project3): void;
  };
  isCancelling: boolean;
  onCancel(listener: (reason: unknown) => unknown): void;
}
interface Spec3 {
  moduleId: string;
  project: Project3;
  testLines?: number[];
}
interface Environment3 {
  name: string;
  transformMode?: 'web' | 'ssr';
  options: Record<string, unknown> | null;
}
type RunFiles = (specs: Spec3[], invalidates?: string[]) => Promise<void>;
export interface ProcessPool3 {
  name: string;
  runTests: RunFiles;
  collectTests: RunFiles;
  close(): Promise<void>;
}

const createMethodsRPC = (vitestNode as unknown as Record<string, unknown>).createMethodsRPC as (
  project: Project3,
  options: { cacheFs?: boolean; collect?: boolean },
) => Record<string, (...args: unknown[]) => unknown>;

/** `picomatch` as Vitest 3.2 itself resolves it (its dependency), for the environment globs. */
function matcher(vitest: Vitest3): (file: string, globs: string | string[], options?: { cwd: string }) => boolean {
  return (file, globs, options) => {
    const picomatch = createRequire(join(vitest.distPath, '..', 'package.json'))('picomatch');
    return picomatch.isMatch(file, globs, options);
  };
}

/** A file's environment as Vitest 3.2's forks pool finds it: docblock, environmentMatchGlobs, config. */
async function environmentOf(spec: Spec3): Promise<Environment3> {
  const code = await readFile(spec.moduleId, 'utf8');
  const config = spec.project.config;
  const isMatch = matcher(spec.project.vitest);
  let name = /@(?:vitest|jest)-environment\s+([\w-]+)\b/.exec(code)?.[1];
  name ??= config.environmentMatchGlobs?.find(([glob]) => isMatch(spec.moduleId, glob, { cwd: config.root }))?.[1];
  name ??= config.environment || 'node';
  const { web, ssr } = config.testTransformMode ?? {};
  const transformMode =
    web && isMatch(spec.moduleId, web) ? 'web' : ssr && isMatch(spec.moduleId, ssr) ? 'ssr' : undefined;
  let json = /@(?:vitest|jest)-environment-options\s+(.+)/.exec(code)?.[1];
  if (json?.endsWith('*/')) json = json.slice(0, -2);
  const own = JSON.parse(json || 'null');
  const key = name === 'happy-dom' ? 'happyDOM' : name;
  return { name, transformMode, options: own ? { [key]: own } : null };
}

/**
 * The main half of a worker's RPC, in the wire format of the birpc that Vitest 3.2 bundles into its
 * workers (requests {t: 'q', i, m, a}, replies {t: 's', i, r | e}, v8-serialized): it answers the
 * worker's calls with Vitest's own methods, and sends the cancel event.
 */
function serveWorkerRpc(child: ChildProcess, methods: Record<string, (...args: unknown[]) => unknown>) {
  const post = (message: object) => child.connected && child.send(v8.serialize(message));
  const answer = (id: string, outcome: { r: unknown } | { e: unknown }) => {
    try {
      post({ t: 's', i: id, ...outcome });
    } catch (err) {
      post({ t: 's', i: id, e: err });
    }
  };
  const onMessage = async (data: unknown) => {
    if (isWorkerMessage(data)) return;
    const message = decode(data);
    if (message.t !== 'q') return;
    const fn = methods[message.m];
    let outcome: { r: unknown } | { e: unknown };
    try {
      if (!fn) throw new Error(`[birpc] function "${message.m}" not found`);
      outcome = { r: await fn.apply(methods, message.a) };
    } catch (err) {
      outcome = { e: err };
    }
    if (message.i) answer(message.i, outcome);
  };
  child.on('message', onMessage);
  return {
    cancel: (reason: unknown) => post({ t: 'q', m: 'onCancel', a: [reason] }),
    close: () => child.off('message', onMessage),
  };
}

function decode(data: unknown): { t: string; i?: string; m: string; a: unknown[] } {
  try {
    return v8.deserialize(Buffer.from(data as Uint8Array));
  } catch (err) {
    // As Vitest's own forks pool says it: test code sent something down the worker's IPC channel.
    throw new Error(
      "[vitest-pool]: Unexpected call to process.send(). Make sure your test cases are not interfering with process's channel.",
      { cause: err },
    );
  }
}

let taskSeq = 0;
/** Runs one of Vitest's worker functions in the worker; rejects when the worker dies first. */
function callWorker(
  worker: SandboxPoolWorker,
  task: Omit<WorkerTask, '__tinypool_worker_message__' | 'source' | 'id'>,
) {
  const child = worker.fork;
  const id = ++taskSeq;
  return new Promise<void>((done, fail) => {
    const onExit = () => finish({ name: 'Error', message: 'Worker exited unexpectedly' });
    const onMessage = (message: unknown) => {
      if (isWorkerMessage(message) && message.id === id && !('method' in message))
        finish((message as WorkerReply).error);
    };
    const finish = (error: WorkerReply['error']) => {
      child.off('exit', onExit).off('message', onMessage);
      if (!error) return done();
      fail(Object.assign(new Error(error.message), error));
    };
    if (child.exitCode !== null || child.signalCode !== null || !child.connected) return onExit();
    child.on('exit', onExit).on('message', onMessage);
    const message: WorkerTask = { __tinypool_worker_message__: true, source: 'branching', id, ...task };
    child.send(message, (err) => {
      if (err) finish({ name: err.name, message: err.message, stack: err.stack });
    });
  });
}

/** How many files run at once: as Vitest 3.2's forks pool counts its workers. */
function maxWorkersOf(vitest: Vitest3): number {
  const forks = vitest.config.poolOptions?.forks ?? {};
  if (forks.singleFork || vitest.config.fileParallelism === false) return 1;
  const cpus = availableParallelism();
  const fallback = vitest.config.watch ? Math.max(Math.floor(cpus / 2), 1) : Math.max(cpus - 1, 1);
  return forks.maxForks ?? vitest.config.maxWorkers ?? fallback;
}

/** The plugin hands its options to the pool through the project's env (plugin.ts). */
function defaultsOf(project: Project3, env: Record<string, string>): BranchingOptions {
  const text = project.config.env?.BRANCHING_VITEST_CONFIG_OPTIONS ?? env.BRANCHING_VITEST_CONFIG_OPTIONS;
  return resolveOptions(JSON.parse(text ?? 'null'));
}

async function stopWorker(worker: SandboxPoolWorker, filename: string): Promise<void> {
  // Vitest's worker teardown (its cleanup listeners), as tinypool calls it before ending a worker.
  if (worker.fork.connected) await callWorker(worker, { method: 'teardown', filename }).catch(() => {});
  await worker.stop();
}

/** A worker slot: its id (VITEST_POOL_ID), and the worker it keeps for the next file when files are not isolated. */
interface Slot {
  id: number;
  kept: { key: string; worker: SandboxPoolWorker } | null;
}

/** Files go to at most maxWorkersOf() workers at once, in the sequencer's order. */
class Scheduler {
  readonly slots: Slot[];
  private readonly free: Slot[];
  private readonly waiting: ((slot: Slot) => void)[] = [];

  constructor(count: number) {
    this.slots = Array.from({ length: count }, (_, i) => ({ id: i + 1, kept: null }));
    this.free = [...this.slots];
  }

  async withSlot<T>(run: (slot: Slot) => Promise<T>): Promise<T> {
    const slot = await new Promise<Slot>((take) => {
      const next = this.free.shift();
      if (next) take(next);
      else this.waiting.push(take);
    });
    try {
      return await run(slot);
    } finally {
      const next = this.waiting.shift();
      if (next) next(slot);
      else this.free.push(slot);
    }
  }
}

class BranchingPool3 implements ProcessPool3 {
  readonly name = 'branching';
  private readonly forks: NonNullable<NonNullable<Vitest3['config']['poolOptions']>['forks']>;
  private readonly isolated: boolean;
  private readonly vitestWorker: string;
  private readonly scheduler: Scheduler;
  private workerId = 0;

  constructor(
    private readonly vitest: Vitest3,
    private readonly execArgv: string[],
    private readonly env: Record<string, string>,
  ) {
    this.forks = vitest.config.poolOptions?.forks ?? {};
    this.isolated = this.forks.isolate ?? true;
    this.vitestWorker = resolve(vitest.distPath, 'worker.js');
    this.scheduler = new Scheduler(maxWorkersOf(vitest));
  }

  runTests: RunFiles = (specs, invalidates) => this.runAll('run', specs, invalidates);
  collectTests: RunFiles = (specs, invalidates) => this.runAll('collect', specs, invalidates);

  async close(): Promise<void> {
    await Promise.all(this.scheduler.slots.map((slot) => this.dropKept(slot)));
  }

  private async runAll(method: 'run' | 'collect', specs: Spec3[], invalidates: string[] = []): Promise<void> {
    const environments = await Promise.all(specs.map(environmentOf));
    const results = await Promise.allSettled(
      specs.map((spec, i) => this.runFile(method, spec, environments[i] as Environment3, invalidates)),
    );
    await this.close();
    const errors = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    if (errors.length > 0) {
      throw new AggregateError(
        errors,
        'Errors occurred while running tests. For more information, see serialized error.',
      );
    }
  }

  private runFile(method: 'run' | 'collect', spec: Spec3, environment: Environment3, invalidates: string[]) {
    const { project } = spec;
    return this.scheduler.withSlot(async (slot) => {
      if (this.vitest.isCancelling) return this.vitest.state.cancelFiles([spec.moduleId], project);
      this.vitest.state.clearFiles(project, [spec.moduleId]);
      const worker = await this.workerIn(slot, project, environment);
      const methods = createMethodsRPC(project, { cacheFs: true, collect: method === 'collect' });
      const rpc = serveWorkerRpc(worker.fork, methods);
      this.vitest.onCancel(rpc.cancel);
      const ctx = {
        pool: 'forks',
        worker: resolve(this.vitest.distPath, 'workers/forks.js'),
        config: project.getSerializableConfig(),
        files: [{ filepath: spec.moduleId, testLocations: spec.testLines }],
        invalidates,
        environment,
        workerId: ++this.workerId,
        projectName: project.name,
        providedContext: project.getProvidedContext(),
      };
      try {
        await callWorker(worker, { method, filename: this.vitestWorker, ctx });
      } finally {
        rpc.close();
        if (this.isolated) await stopWorker(worker, this.vitestWorker);
      }
    });
  }

  /** A started worker for this file: the slot's kept one when it ran the same project and environment. */
  private async workerIn(slot: Slot, project: Project3, environment: Environment3): Promise<SandboxPoolWorker> {
    const key = `${project.name}\0${environment.name}\0${JSON.stringify(environment.options)}`;
    if (slot.kept?.key === key) return slot.kept.worker;
    await this.dropKept(slot);
    const options: WorkerOptions = {
      execArgv: [...(this.forks.execArgv ?? []), ...this.execArgv],
      env: { ...this.env, TINYPOOL_WORKER_ID: String(slot.id) },
      distPath: this.vitest.distPath,
      environment,
      project,
    };
    const worker = new SandboxPoolWorker(options, defaultsOf(project, this.env), WORKER_ENTRY);
    try {
      await worker.start();
    } catch (err) {
      await worker.stop().catch(() => {});
      throw err;
    }
    if (!this.isolated) slot.kept = { key, worker };
    return worker;
  }

  private async dropKept(slot: Slot): Promise<void> {
    const kept = slot.kept;
    slot.kept = null;
    if (kept) await stopWorker(kept.worker, this.vitestWorker);
  }
}

/** Vitest 3.2 calls this with the options of its built-in pools (execArgv, env) once per run. */
export default function createBranchingPool(
  vitest: Vitest3,
  { execArgv, env }: { execArgv: string[]; env: Record<string, string> },
): ProcessPool3 {
  return new BranchingPool3(vitest, execArgv, env);
}
