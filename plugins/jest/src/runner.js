// runner: 'jest-environment-branching/runner'. Jest's own runner cannot be told to start its workers
// through another executable, so this one builds the same jest-worker pool over jest-runner's
// testWorker.js with `execPath` set to the sandbox launcher: every worker is born in its own user +
// mount namespace with a privileged mount helper, and the environment mounts each file's branch at
// the project's path inside it. In-band runs (--runInBand, a single file) use one such worker too,
// since a multi-threaded Node process (the Jest CLI) cannot enter a new user namespace itself.
// Without a working sandbox it says why and hands the run to Jest's default runner.
const { spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmdirSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { LaunchSpec, Workspace, extraWritableDirs, locateLauncher, parseStatus } = require('branching');
const { requireJestModule, resolveJestModule } = require('./jest-modules.js');
const { parseOptions } = require('./options.js');
const { notice } = require('./notice.js');
const { removeLayerDir } = require('./upper.js');

const SPEC_ENV = [
  'BRANCHING_LAUNCH_SPEC',
  'BRANCHING_LAUNCH_EXEC',
  'BRANCHING_LAUNCH_PARENT',
  'BRANCHING_JEST_SANDBOX',
];

/** The options of every project in this run that the sandbox must serve (invalid ones are left to the environment to report). */
function projectOptions(tests) {
  const byConfig = new Map();
  for (const test of tests) {
    const config = test.context.config;
    if (byConfig.has(config.id ?? config.rootDir)) continue;
    try {
      byConfig.set(config.id ?? config.rootDir, parseOptions(config.testEnvironmentOptions?.branching, config.rootDir));
    } catch {
      byConfig.set(config.id ?? config.rootDir, null);
    }
  }
  return [...byConfig.values()].filter(Boolean);
}

/** Jest's transform caches, which workers write; created now, since a bind needs an existing dir. */
function cacheDirsOf(tests) {
  const dirs = new Set();
  for (const test of tests) {
    const dir = test.context.config.cacheDirectory;
    if (typeof dir !== 'string' || dir === '') continue;
    mkdirSync(dir, { recursive: true });
    dirs.add(realpathSync(dir));
  }
  return dirs;
}

/**
 * Runs the launcher once with the workers' exact spec plus one overlay mount on scratch dirs, so a
 * sandbox that cannot work here is a clear reason up front, not a crashing worker (one spawn, a few
 * ms, instead of a probe per feature).
 */
function preflight(launcher, spec, scratch) {
  const dirs = ['lower', 'upper', 'work', 'merged'].map((d) => join(scratch, d));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const [lower, upper, work, merged] = dirs;
  const probe = `${spec}\noverlay\t${merged}\t${lower}\t${upper}\t${work}`;
  try {
    const result = spawnSync(launcher, [], {
      env: {
        PATH: process.env.PATH,
        BRANCHING_LAUNCH_SPEC: probe,
        BRANCHING_LAUNCH_EXEC: '/bin/true',
        BRANCHING_LAUNCH_STATUS_FD: '3',
      },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      timeout: 10_000,
    });
    let status = null;
    try {
      status = parseStatus(result.output?.[3]?.toString() ?? '');
    } catch {
      // unreadable: reported below
    }
    if (status?.ok) return null;
    if (!status)
      return `the sandbox launcher gave no status (exit ${result.status}): ${result.stderr?.toString().trim()}`;
    return `sandbox setup failed: ${status.op}${status.path ? ` ${status.path}` : ''}: ${status.code} (${status.message})`;
  } finally {
    removeLayerDir(scratch);
  }
}

/** Everything the workers need, or the reason the sandbox cannot be used. */
function planSandbox(tests) {
  if (process.env.BRANCHING_JEST_NO_SANDBOX === '1') return { reason: 'BRANCHING_JEST_NO_SANDBOX=1' };
  const { path: launcher, reason } = locateLauncher();
  if (!launcher) return { reason };
  const options = projectOptions(tests);
  if (options.length === 0) return { reason: 'no project in this run has valid branching options' };
  const network = !options.every((o) => o.network === false);
  const runDirs = {};
  for (const { root } of options) {
    if (runDirs[root]) continue;
    const { stateDir } = new Workspace(root, { backend: 'clone', onNotice: () => {} });
    runDirs[root] = realpathSync(mkdtempSync(join(stateDir, `jest-run-${process.pid}-`)));
  }
  const spec = new LaunchSpec().userns().mountns();
  if (!network) spec.netns();
  // Everything but the branched roots, their run dirs, Jest's caches and BRANCHING_WRITABLE is
  // read-only in a worker.
  spec.rdonly('/');
  const writable = [...Object.keys(runDirs), ...Object.values(runDirs), ...cacheDirsOf(tests), ...extraWritableDirs()];
  for (const dir of new Set(writable)) {
    spec.writable(dir);
  }
  // A PID namespace with a fresh /proc: test code sees no host process (no /proc/<pid>/root).
  spec.pidns().helper([...Object.keys(runDirs), ...Object.values(runDirs)]);
  const plan = { launcher, spec: spec.toString(), runDirs, network };
  const failure = preflight(launcher, plan.spec, join(Object.values(runDirs)[0], 'preflight'));
  if (failure) {
    removeRunDirs(plan);
    return { reason: failure };
  }
  return plan;
}

/** Removes what workers left in the run dirs, except branches kept by keep: 'on-failure'. */
function removeRunDirs(plan) {
  for (const dir of Object.values(plan.runDirs ?? {})) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (!existsSync(join(dir, name, 'KEPT'))) removeLayerDir(join(dir, name));
    }
    try {
      rmdirSync(dir);
    } catch {
      // kept branches are still inside
    }
  }
}

class BranchingRunner {
  constructor(globalConfig, context) {
    this._globalConfig = globalConfig;
    this._context = context ?? {};
    this.isSerial = false;
    this.supportsEventEmitters = true;
    this.listeners = new Map();
  }

  on(eventName, listener) {
    if (!this.listeners.has(eventName)) this.listeners.set(eventName, new Set());
    this.listeners.get(eventName).add(listener);
    return () => this.listeners.get(eventName).delete(listener);
  }

  async emit(eventName, payload) {
    for (const listener of [...(this.listeners.get(eventName) ?? [])]) await listener(payload);
  }

  async runTests(tests, watcher, options = {}) {
    let plan;
    try {
      plan = planSandbox(tests);
    } catch (err) {
      plan = { reason: `cannot prepare the sandbox: ${err.message}` };
    }
    if (plan.reason) return this.runWithJestRunner(tests, watcher, options, plan.reason);
    try {
      await this.runInSandbox(tests, watcher, plan, this.workerCount(tests, options));
    } finally {
      removeRunDirs(plan);
    }
  }

  /**
   * Jest runs in band when asked to (--runInBand, maxWorkers 1) and also, as a speed heuristic, when
   * its cached timings say the files are fast. Here a worker must be started either way, so only the
   * user's choice keeps the run serial (one sandboxed worker); otherwise the workers share the files.
   */
  workerCount(tests, options) {
    const { maxWorkers, runInBand } = this._globalConfig;
    if (options.serial && (runInBand || maxWorkers <= 1)) return 1;
    return Math.max(1, Math.min(maxWorkers, tests.length));
  }

  /** The fallback: Jest's default runner, with the reason passed on to the environments' notice. */
  async runWithJestRunner(tests, watcher, options, reason) {
    notice(`jest-environment-branching/runner: no sandbox (${reason}); running with Jest's default runner`);
    process.env.BRANCHING_JEST_FALLBACK_REASON = `no sandbox: ${reason}`;
    const JestRunner = requireJestModule('jest-runner', '@jest/core').default;
    const inner = new JestRunner(this._globalConfig, this._context);
    for (const eventName of this.listeners.keys()) inner.on(eventName, (payload) => this.emit(eventName, payload));
    return inner.runTests(tests, watcher, options);
  }

  async runInSandbox(tests, watcher, plan, numWorkers) {
    if (this._globalConfig.workerThreads) {
      notice('jest-environment-branching/runner: workerThreads is ignored: threads cannot have their own namespaces');
    }
    const { Worker } = requireJestModule('jest-worker', 'jest-runner');
    // Not in jest-runner's "exports": found next to its package.json (build/testWorker.js in 29 and 30).
    const testWorker = join(
      dirname(resolveJestModule('jest-runner/package.json', '@jest/core')),
      'build',
      'testWorker.js',
    );
    const resolvers = new Map();
    for (const test of tests) {
      if (!resolvers.has(test.context.config.id)) {
        resolvers.set(test.context.config.id, {
          config: test.context.config,
          serializableModuleMap: test.context.moduleMap.toJSON(),
        });
      }
    }
    // The launcher reads its spec from the environment. jest-worker passes process.env to every
    // worker it forks (also restarts), and forkOptions.env would drop JEST_WORKER_ID.
    const savedEnv = Object.fromEntries(SPEC_ENV.map((k) => [k, process.env[k]]));
    Object.assign(process.env, {
      BRANCHING_LAUNCH_SPEC: plan.spec,
      BRANCHING_LAUNCH_EXEC: process.execPath,
      BRANCHING_LAUNCH_PARENT: String(process.pid),
      BRANCHING_JEST_SANDBOX: JSON.stringify({ runDirs: plan.runDirs, network: plan.network }),
    });
    const worker = new Worker(testWorker, {
      enableWorkerThreads: false,
      exposedMethods: ['worker'],
      forkOptions: { serialization: 'json', stdio: 'pipe', execPath: plan.launcher },
      idleMemoryLimit:
        typeof this._globalConfig.workerIdleMemoryLimit === 'number'
          ? this._globalConfig.workerIdleMemoryLimit
          : undefined,
      maxRetries: 3,
      numWorkers,
      setupArgs: [{ serializableResolvers: [...resolvers.values()] }],
      workerGracefulExitTimeout: this._globalConfig.workerGracefulExitTimeout,
    });
    worker.getStdout()?.pipe(process.stdout);
    worker.getStderr()?.pipe(process.stderr);
    try {
      await this.dispatch(tests, watcher, worker, numWorkers);
    } finally {
      const { forceExited } = await worker.end();
      for (const [k, v] of Object.entries(savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      if (forceExited) {
        console.error('A worker process has failed to exit gracefully and has been force exited.');
      }
    }
  }

  /** Sends test files to the workers as they free up, emitting the events Jest's scheduler listens to. */
  async dispatch(tests, watcher, worker, numWorkers) {
    let next = 0;
    let cancelled = false;
    watcher.on?.('change', (state) => {
      if (state.interrupted) cancelled = true;
    });
    const runOne = async (test) => {
      await this.emit('test-file-start', [test]);
      const promise = worker.worker({
        config: test.context.config,
        context: {
          ...this._context,
          changedFiles: this._context.changedFiles && [...this._context.changedFiles],
          sourcesRelatedToTestsInChangedFiles: this._context.sourcesRelatedToTestsInChangedFiles && [
            ...this._context.sourcesRelatedToTestsInChangedFiles,
          ],
        },
        globalConfig: this._globalConfig,
        path: test.path,
      });
      promise.UNSTABLE_onCustomMessage?.(([event, payload]) => this.emit(event, payload));
      return promise;
    };
    const lane = async () => {
      while (next < tests.length && !cancelled && !watcher.isInterrupted()) {
        const test = tests[next++];
        let result;
        try {
          result = await runOne(test);
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

module.exports = BranchingRunner;
module.exports.default = BranchingRunner;
