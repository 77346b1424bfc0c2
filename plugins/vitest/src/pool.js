// The sandbox pool: a Vitest PoolWorker that forks Vitest's own forks worker entry through
// branching-launcher (as execPath), so that each worker is born inside a user+mount namespace where
//   - the project root is a fresh overlay branch at its own path (upper/work in the state dir),
//   - the real root stays reachable at `realView` (a bind made before the overlay covers the root)
//     for the framework's own output (snapshots, see snapshot-environment.js),
//   - TMPDIR is a private tmpfs (the main process's os.tmpdir() stays visible: workers read
//     transformed modules from there),
//   - a privileged helper mounts the per-test layers (the worker itself holds no capabilities).
// With isolate: true (Vitest's default) a worker runs one test file, so its branch is per file.
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { core } from './core.js';
import { forceRemove, forceRemoveAsync, takeWhiteouts } from './fsops.js';
import { resolveOptions } from './options.js';

export const POOL_NAME = 'branching';

/** @param {import('./options.js').BranchingOptions} [defaults] options for files that set none */
export function branchingPool(defaults = {}) {
  resolveOptions(defaults);
  return {
    name: POOL_NAME,
    createPoolWorker: (options) => new SandboxPoolWorker(options, defaults),
  };
}

/** One directory per Vitest process in the state dir, so that concurrent runs never share scratch. */
const runDirs = new Map();
let workerSeq = 0;

function runDirFor(stateDir) {
  let dir = runDirs.get(stateDir);
  if (dir) return dir;
  const base = join(stateDir, 'vitest');
  mkdirSync(base, { recursive: true });
  removeDeadRuns(base);
  dir = realpathSync(base);
  dir = join(dir, `${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  runDirs.set(stateDir, dir);
  process.once('exit', () => forceRemove(dir));
  return dir;
}

/** Scratch of runs whose Vitest process died (SIGKILL, crash): nothing else will remove it. */
function removeDeadRuns(base) {
  for (const name of readdirSync(base)) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if (err?.code === 'ESRCH') forceRemove(join(base, name));
    }
  }
}

const stateDirs = new Map();
function stateDirOf(root) {
  let dir = stateDirs.get(root);
  if (!dir) {
    dir = new core.Workspace(root, { backend: 'clone', onNotice: () => {} }).stateDir;
    stateDirs.set(root, dir);
  }
  return dir;
}

/** The coverage reports directory when coverage is on and it lies inside the branched root. */
function coverageDirOf(config, root) {
  const coverage = config?.coverage;
  if (!coverage?.enabled || !coverage.reportsDirectory) return null;
  const dir = resolve(config.root ?? root, coverage.reportsDirectory);
  const rel = relative(root, dir);
  if (rel === '' || rel.startsWith('..') || !existsSync(dir)) return null;
  return realpathSync(dir);
}

let probe;
function sandboxProbe() {
  probe ??= core.probeSandbox();
  return probe;
}

export class SandboxPoolWorker {
  name = POOL_NAME;
  cacheFs = true;

  constructor(options, defaults) {
    this.execArgv = options.execArgv;
    this.env = options.env;
    this.stdout = options.project.vitest.logger.outputStream;
    this.stderr = options.project.vitest.logger.errorStream;
    this.entrypoint = resolve(options.distPath, 'workers/forks.js');
    const fileOptions = options.environment?.options?.branching;
    this.options = resolveOptions(fileOptions ?? defaults);
    this.root = realpathSync(this.options.root ?? options.project.config.root);
    this.vitestConfig = options.project.vitest.config;
    this.dir = null;
    this._fork = undefined;
  }

  on(event, callback) {
    this.fork.on(event, callback);
  }
  off(event, callback) {
    this.fork.off(event, callback);
  }
  send(message) {
    this.fork.send(message);
  }
  deserialize(data) {
    return data;
  }
  get fork() {
    if (!this._fork) throw new Error('vitest-environment-branching: the worker was torn down or never started');
    return this._fork;
  }

  async start() {
    if (this._fork) return;
    const available = sandboxProbe();
    if (available.available) this._fork = this.forkSandboxed(available.launcher);
    else this._fork = this.forkPlain(`the namespace sandbox is unavailable: ${available.reason}`);
    this.pipeOutput(this._fork);
  }

  forkPlain(reason) {
    return fork(this.entrypoint, [], {
      env: { ...this.env, BRANCHING_VITEST_FALLBACK: reason, BRANCHING_VITEST_ROOT: this.root },
      execArgv: this.execArgv,
      stdio: 'pipe',
      serialization: 'advanced',
    });
  }

  forkSandboxed(launcher) {
    const stateDir = stateDirOf(this.root);
    this.dir = join(runDirFor(stateDir), `w${++workerSeq}`);
    this.stateDir = stateDir;
    const realView = join(this.dir, 'real');
    const tmp = join(this.dir, 'tmp');
    for (const d of ['upper', 'work', 'real', 'tmp', 't']) mkdirSync(join(this.dir, d), { recursive: true });
    const spec = new core.LaunchSpec().userns().mountns();
    if (!this.options.network) spec.netns();
    // Read-only but for the worker's own dir (layers, the real root for snapshots),
    // BRANCHING_WRITABLE and the mounts made after this: the branch, TMPDIR, per-test layers.
    const kept = join(stateDir, 'vitest-kept'); // where workers keep failing tests' layers
    mkdirSync(kept, { recursive: true });
    spec.rdonly('/').writable(this.dir).writable(kept);
    for (const dir of core.extraWritableDirs()) spec.writable(dir);
    spec.bind(this.root, realView).writable(realView);
    this.addOverlay(spec);
    // Vitest 5 workers write coverage files themselves (Vitest 4 sends them to the main process):
    // the real reports directory, which Vitest creates before the workers start, shows through.
    const reports = coverageDirOf(this.vitestConfig, this.root);
    if (reports) spec.bind(join(realView, relative(this.root, reports)), reports);
    spec
      .tmpfs(tmp, 0o700)
      // Per-test layers live in memory: creating and dropping them costs ~0.2 ms there, and an
      // ext4 under write load makes each a few ms; they vanish with the namespace.
      .tmpfs(join(this.dir, 't'), 0o700)
      // A PID namespace with a fresh /proc: test code sees no host process (no /proc/<pid>/root).
      .pidns()
      .helper([this.root, this.dir])
      .chdir(process.cwd());
    const info = { root: this.root, dir: this.dir, realView, stateDir };
    return fork(this.entrypoint, [], {
      env: {
        ...this.env,
        TMPDIR: tmp,
        BRANCHING_VITEST: JSON.stringify(info),
        BRANCHING_LAUNCH_SPEC: spec.toString(),
        BRANCHING_LAUNCH_EXEC: process.execPath,
        BRANCHING_LAUNCH_PARENT: String(process.pid),
      },
      execPath: launcher,
      execArgv: this.execArgv,
      stdio: 'pipe',
      serialization: 'advanced',
    });
  }

  addOverlay(spec) {
    spec.overlay({
      target: this.root,
      lowers: [this.root],
      upper: join(this.dir, 'upper'),
      work: join(this.dir, 'work'),
      options: ['volatile'],
    });
  }

  pipeOutput(child) {
    if (child.stdout) {
      this.stdout.setMaxListeners(1 + this.stdout.getMaxListeners());
      child.stdout.pipe(this.stdout);
    }
    if (child.stderr) {
      this.stderr.setMaxListeners(1 + this.stderr.getMaxListeners());
      child.stderr.pipe(this.stderr);
    }
  }

  async stop() {
    const child = this.fork;
    const exited = new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) done();
      else child.once('exit', done);
    });
    // Like Vitest's own forks pool: SIGTERM, then SIGKILL for code that ignores it.
    const killer = setTimeout(() => child.kill('SIGKILL'), 500);
    child.kill();
    await exited;
    clearTimeout(killer);
    if (child.stdout) {
      child.stdout.unpipe(this.stdout);
      this.stdout.setMaxListeners(this.stdout.getMaxListeners() - 1);
    }
    if (child.stderr) {
      child.stderr.unpipe(this.stderr);
      this.stderr.setMaxListeners(this.stderr.getMaxListeners() - 1);
    }
    this._fork = undefined;
    await this.removeScratch();
  }

  /** The mount namespace died with the worker: its branch is plain files now. */
  async removeScratch() {
    const dir = this.dir;
    if (!dir) return;
    this.dir = null;
    const keep = join(dir, 'keep');
    if (existsSync(keep)) {
      const kept = readFileSync(keep, 'utf8');
      renameSync(join(dir, 'upper'), join(kept, 'changes'));
      const deleted = takeWhiteouts(join(kept, 'changes'));
      if (deleted.length > 0) writeFileSync(join(kept, 'deleted.txt'), `${deleted.join('\n')}\n`);
    }
    await forceRemoveAsync(dir);
  }
}
