// runner: 'jest-environment-branching/runner'. Jest's own runner cannot be told to start its workers
// through another executable, so this one builds the same jest-worker pool with `execPath` set to
// the sandbox launcher: every worker is born in its own user + mount namespace with a mount helper,
// and mounts each file's branch at the project's path (worker.ts) before the file's environment
// loads. In-band runs (--runInBand, a single file) use one such worker too, since a multi-threaded
// Node process (the Jest CLI) cannot enter a new user namespace itself. Without a working sandbox
// it says why and hands the run to Jest's default runner (unless told never to fall back).
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { launchEnv } from 'branching';
import { TEST_WORKER_ENV } from './constants.ts';
import { BASES_ENV, ownEntry } from './environment.ts';
import { requireJestModule, resolveJestModule } from './jest-modules.ts';
import { notice } from './notice.ts';
import { noFallbackSource } from './options.ts';
import { type Plan, planSandbox, projectOptions, removeRunDirs, type TestLike } from './plan.ts';
import { unsupportedJest } from './versions.ts';

type Listener = (payload: any) => unknown;

interface Watcher {
  isInterrupted: () => boolean;
  on?: (event: string, fn: (state: { interrupted: boolean }) => void) => void;
}

/** A @jest-environment docblock: such a file gets Jest's environment directly, without the hooks. */
function docblockEnvironment(path: string): string | null {
  try {
    const docblock = requireJestModule('jest-docblock', 'jest-runner');
    const pragmas = docblock.parse(docblock.extract(readFileSync(path, 'utf8')));
    const env = pragmas['jest-environment'];
    return typeof env === 'string' ? env : Array.isArray(env) ? String(env[0]) : null;
  } catch {
    return null;
  }
}

/**
 * Every project's configured environment is recorded (for the wrapper to extend) and replaced by
 * this package's, so that isolation works under whichever environment a project uses.
 */
function withOurEnvironment(tests: readonly TestLike[]): { tests: TestLike[]; bases: Record<string, string> } {
  const own = ownEntry();
  const bases: Record<string, string> = {};
  const configs = new Map<any, any>();
  const out = tests.map((test) => {
    const config = test.context.config;
    if (!configs.has(config)) {
      if (typeof config.testEnvironment === 'string') bases[config.id] = config.testEnvironment;
      configs.set(config, { ...config, testEnvironment: own });
    }
    return { ...test, context: { ...test.context, config: configs.get(config) } } as TestLike;
  });
  return { tests: out, bases };
}

/** Sets `values` in process.env (undefined ones are left alone); returns what puts the old values back. */
function setEnv(values: NodeJS.ProcessEnv): () => void {
  const defined = Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined);
  const saved = Object.fromEntries(defined.map(([k]) => [k, process.env[k]]));
  Object.assign(process.env, Object.fromEntries(defined));
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export default class BranchingRunner {
  private readonly globalConfig: any;
  private readonly context: any;
  readonly isSerial = false;
  readonly supportsEventEmitters = true;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(globalConfig: any, context?: any) {
    this.globalConfig = globalConfig;
    this.context = context ?? {};
  }

  on(eventName: string, listener: Listener): () => void {
    if (!this.listeners.has(eventName)) this.listeners.set(eventName, new Set());
    this.listeners.get(eventName)!.add(listener);
    return () => this.listeners.get(eventName)?.delete(listener);
  }

  private async emit(eventName: string, payload: unknown): Promise<void> {
    for (const listener of [...(this.listeners.get(eventName) ?? [])]) await listener(payload);
  }

  async runTests(tests: TestLike[], watcher: Watcher, options?: { serial?: boolean }): Promise<void> {
    const refusal = unsupportedJest();
    if (refusal) throw new Error(refusal);
    const { tests: wrapped, bases } = withOurEnvironment(tests);
    let plan: Plan | { reason: string };
    try {
      plan = planSandbox(wrapped);
    } catch (err) {
      plan = { reason: `cannot prepare the sandbox: ${(err as Error).message}` };
    }
    if ('reason' in plan) return this.runWithJestRunner(wrapped, watcher, options ?? {}, plan.reason, bases);
    this.noticeDocblocks(wrapped, 'ran in its file branch, without per-test branches');
    try {
      await this.runInSandbox(wrapped, watcher, plan, this.workerCount(wrapped, options ?? {}), bases);
    } finally {
      removeRunDirs(plan);
    }
  }

  private noticeDocblocks(tests: readonly TestLike[], what: string): void {
    for (const test of tests) {
      const env = docblockEnvironment(test.path);
      if (env === null) continue;
      notice(
        `jest-environment-branching: ${test.path} ${what}: its docblock picks \`@jest-environment ${env}\`, which Jest loads directly; remove the docblock and set testEnvironment in the config (the plugin extends whichever environment that names)`,
      );
    }
  }

  /**
   * Jest runs in band when asked to (--runInBand, maxWorkers 1) and also, as a speed heuristic, when
   * its cached timings say the files are fast. Here a worker must be started either way, so only the
   * user's choice keeps the run serial (one sandboxed worker); otherwise the workers share the files.
   */
  private workerCount(tests: readonly TestLike[], options: { serial?: boolean }): number {
    const { maxWorkers, runInBand } = this.globalConfig;
    if (options.serial && (runInBand || maxWorkers <= 1)) return 1;
    return Math.max(1, Math.min(maxWorkers, tests.length));
  }

  /** The fallback: Jest's default runner, with the reason passed on to the environments' notice. */
  private async runWithJestRunner(
    tests: TestLike[],
    watcher: Watcher,
    options: { serial?: boolean },
    reason: string,
    bases: Record<string, string>,
  ): Promise<void> {
    const strict = projectOptions(tests).find((o) => !o.fallback);
    if (strict) {
      throw new Error(
        `jest-environment-branching/runner: refusing to run unsandboxed (${noFallbackSource()}): ${reason}`,
      );
    }
    notice(`jest-environment-branching/runner: no sandbox (${reason}); running with Jest's default runner`);
    this.noticeDocblocks(tests, 'is NOT isolated');
    process.env.BRANCHING_JEST_FALLBACK_REASON = `no sandbox: ${reason}`;
    process.env[BASES_ENV] = JSON.stringify(bases);
    const JestRunner = requireJestModule('jest-runner', '@jest/core').default;
    const inner = new JestRunner(this.globalConfig, this.context);
    for (const eventName of this.listeners.keys()) {
      inner.on(eventName, (payload: unknown) => this.emit(eventName, payload));
    }
    return inner.runTests(tests, watcher, options);
  }

  private async runInSandbox(
    tests: TestLike[],
    watcher: Watcher,
    plan: Plan,
    numWorkers: number,
    bases: Record<string, string>,
  ): Promise<void> {
    if (this.globalConfig.workerThreads) {
      notice('jest-environment-branching/runner: workerThreads is ignored: threads cannot have their own namespaces');
    }
    const { Worker } = requireJestModule('jest-worker', 'jest-runner');
    // Not in jest-runner's "exports": found next to its package.json (build/testWorker.js in 28-30).
    const testWorker = join(
      dirname(resolveJestModule('jest-runner/package.json', '@jest/core')),
      'build',
      'testWorker.js',
    );
    const resolvers = new Map<string, unknown>();
    for (const test of tests) {
      const config = test.context.config;
      if (!resolvers.has(config.id)) {
        resolvers.set(config.id, { config, serializableModuleMap: test.context.moduleMap.toJSON() });
      }
    }
    // The launcher reads its spec from the environment. jest-worker passes process.env to every
    // worker it forks (also restarts), and forkOptions.env would drop JEST_WORKER_ID.
    const restoreEnv = setEnv({
      ...launchEnv(plan.spec, process.execPath),
      BRANCHING_JEST_SANDBOX: JSON.stringify({
        runDirs: plan.runDirs,
        network: plan.network,
        realViews: plan.realViews,
      }),
      [TEST_WORKER_ENV]: realpathSync(testWorker),
      [BASES_ENV]: JSON.stringify(bases),
    });
    const worker = new Worker(join(__dirname, 'worker.cjs'), {
      enableWorkerThreads: false,
      exposedMethods: ['worker'],
      forkOptions: { serialization: 'json', stdio: 'pipe', execPath: plan.launcher },
      idleMemoryLimit:
        typeof this.globalConfig.workerIdleMemoryLimit === 'number'
          ? this.globalConfig.workerIdleMemoryLimit
          : undefined,
      maxRetries: 3,
      numWorkers,
      setupArgs: [{ serializableResolvers: [...resolvers.values()] }],
      workerGracefulExitTimeout: this.globalConfig.workerGracefulExitTimeout,
    });
    worker.getStdout()?.pipe(process.stdout);
    worker.getStderr()?.pipe(process.stderr);
    try {
      await this.dispatch(tests, watcher, worker, numWorkers);
    } finally {
      const { forceExited } = await worker.end();
      restoreEnv();
      if (forceExited) console.error('A worker process has failed to exit gracefully and has been force exited.');
    }
  }

  private runOne(worker: any, test: TestLike): Promise<unknown> {
    const promise = worker.worker({
      config: test.context.config,
      context: {
        ...this.context,
        changedFiles: this.context.changedFiles && [...this.context.changedFiles],
        sourcesRelatedToTestsInChangedFiles: this.context.sourcesRelatedToTestsInChangedFiles && [
          ...this.context.sourcesRelatedToTestsInChangedFiles,
        ],
      },
      globalConfig: this.globalConfig,
      path: test.path,
    });
    promise.UNSTABLE_onCustomMessage?.(([event, payload]: [string, unknown]) => this.emit(event, payload));
    return promise;
  }

  /** Sends test files to the workers as they free up, emitting the events Jest's scheduler listens to. */
  private async dispatch(tests: TestLike[], watcher: Watcher, worker: any, numWorkers: number): Promise<void> {
    let next = 0;
    let cancelled = false;
    watcher.on?.('change', (state) => {
      if (state.interrupted) cancelled = true;
    });
    const lane = async () => {
      while (next < tests.length && !cancelled && !watcher.isInterrupted()) {
        const test = tests[next++];
        await this.emit('test-file-start', [test]);
        let result: unknown;
        try {
          result = await this.runOne(worker, test);
        } catch (error) {
          await this.emit('test-file-failure', [test, error]);
          continue;
        }
        await this.emit('test-file-success', [test, result]);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(numWorkers, tests.length)) }, lane));
  }
}
