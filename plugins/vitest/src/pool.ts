// The sandbox pool: a Vitest PoolWorker that forks Vitest's own forks worker entry through
// branching-launcher (as execPath), so that each worker is born inside a user+mount namespace where
//   - the project root is an overlay branch at its own path (upper/work in the state dir): nothing
//     the worker does before its first test file, or between files, reaches the real tree;
//   - the real tree stays reachable at a bind made before the overlay covers the root, for the
//     framework's own output (snapshots) and for commits;
//   - TMPDIR is a private tmpfs at a path fixed for the worker's life (libraries cache os.tmpdir());
//     the main process's os.tmpdir() stays visible: workers read transformed modules from there;
//   - a privileged helper mounts the file and test layers (the worker itself holds no capabilities).
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
// A namespace import: a Vitest outside the supported range (no ForksPoolWorker) must get as far
// as the plugin's version check, which names it.
import type { PoolOptions, PoolWorker } from 'vitest/node';
import * as vitestNode from 'vitest/node';
import { core } from './core.ts';
import {
  type BranchingOptions,
  docblockOptions,
  fallbackRefused,
  type ResolvedOptions,
  resolveOptions,
} from './options.ts';
import { registerWorkerView, unregisterWorkerView } from './sandbox-files.ts';
import type { SandboxInfo } from './state.ts';

export const POOL_NAME = 'branching';
/** The launcher's status fd in a sandboxed worker: after stdio and Vitest's IPC channel (fd 3). */
const STATUS_FD = 4;

/**
 * How messages cross the IPC channel is Vitest's business and changed within 4.0 (early 4.0
 * sends v8-serialized buffers, later ones structured clones): our worker speaks whatever the
 * running Vitest's own forks worker speaks, by borrowing its send/deserialize.
 */
const vitestForks = () =>
  vitestNode.ForksPoolWorker.prototype as unknown as {
    send(this: unknown, message: unknown): void;
    deserialize(this: unknown, data: unknown): unknown;
  };

export interface BranchingPool {
  name: 'branching';
  createPoolWorker(options: PoolOptions): PoolWorker;
}

/** @param defaults options for files whose docblock sets none */
export function branchingPool(defaults: BranchingOptions = {}): BranchingPool {
  resolveOptions(defaults);
  return {
    name: POOL_NAME,
    createPoolWorker: (options) => new SandboxPoolWorker(options, defaults),
  };
}

/** The branched directory: the option, else the top of the git work tree around Vitest's root (so that git works in a package of a monorepo), else that root. */
export function branchRoot(options: ResolvedOptions, vitestRoot: string): string {
  if (options.root) return realpathSync(options.root);
  return core.defaultBranchRoot(vitestRoot);
}

/** One directory per Vitest process in the state dir, so that concurrent runs never share scratch. */
const runDirs = new Map<string, string>();
let workerSeq = 0;

function runDirFor(stateDir: string): string {
  const known = runDirs.get(stateDir);
  if (known) return known;
  const base = join(stateDir, 'vitest');
  mkdirSync(base, { recursive: true });
  removeDeadRuns(base);
  const dir = join(realpathSync(base), `${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  runDirs.set(stateDir, dir);
  process.once('exit', () => core.removeLayerDirSync(dir));
  return dir;
}

/** Scratch of runs whose Vitest process died (SIGKILL, crash): nothing else will remove it. */
function removeDeadRuns(base: string): void {
  for (const name of readdirSync(base)) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException)?.code === 'ESRCH') core.removeLayerDirSync(join(base, name));
    }
  }
}

const stateDirs = new Map<string, string>();
/** commit: true commits from inside the worker: its journal must then sit beside the project. */
function stateDirOf(root: string, commit: boolean): string {
  const key = `${commit}:${root}`;
  const known = stateDirs.get(key);
  if (known) return known;
  const stateDir = commit ? core.commitStateRoot(root) : undefined;
  const dir: string = new core.Workspace(root, { backend: 'clone', stateDir, onNotice: () => {} }).stateDir;
  stateDirs.set(key, dir);
  return dir;
}

interface RealView {
  src: string;
  dst: string;
  realRoot: string;
  commitStateDir: string | null;
  commitProblem: string | null;
}

/**
 * Where the worker sees the real tree. A commit goes through the workspace journal, whose renames
 * need the state dir and the tree on one mount: so the bind covers their nearest common directory
 * (never /). It is mounted at one fixed path per state dir, so that the journal a crashed commit
 * left is found by the next one.
 */
function realViewOf(root: string, stateDir: string): RealView {
  const dst = join(stateDir, 'vitest', 'real');
  mkdirSync(dst, { recursive: true });
  const stateParent = dirname(stateDir);
  const top = core.commonAncestor(root, stateParent);
  if (top === sep) {
    const commitProblem = `the project ${root} and its state dir ${stateDir} share no directory but /: set BRANCHING_STATE_DIR to a directory beside the project`;
    return { src: root, dst, realRoot: dst, commitStateDir: null, commitProblem };
  }
  const realRoot = join(dst, relative(top, root));
  return { src: top, dst, realRoot, commitStateDir: join(dst, relative(top, stateParent)), commitProblem: null };
}

/** The coverage reports directory when coverage is on and it lies inside the branched root. */
function coverageDirOf(config: any, root: string): string | null {
  const coverage = config?.coverage;
  if (!coverage?.enabled || !coverage.reportsDirectory) return null;
  const dir = resolve(config.root ?? root, coverage.reportsDirectory);
  const rel = relative(root, dir);
  if (rel === '' || rel.startsWith('..') || !existsSync(dir)) return null;
  return realpathSync(dir);
}

let probe: ReturnType<typeof core.probeSandbox> | undefined;
function sandboxProbe() {
  probe ??= core.probeSandbox();
  return probe;
}

/**
 * What a sandboxed worker needs from Vitest: the PoolOptions of the 4.x pool API have it, and the
 * Vitest 3.2 adapter (pool-v3.ts) builds it from its own API.
 */
export interface WorkerOptions {
  execArgv: string[];
  env: Partial<NodeJS.ProcessEnv>;
  distPath: string;
  environment: { name?: string; options?: unknown };
  project: {
    config: { root: string };
    vitest: { config: unknown; logger: { outputStream: NodeJS.WritableStream; errorStream: NodeJS.WritableStream } };
  };
}

export class SandboxPoolWorker implements PoolWorker {
  name = POOL_NAME;
  cacheFs = true;
  private readonly execArgv: string[];
  private readonly env: Record<string, string>;
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;
  private readonly entrypoint: string;
  private readonly options: ResolvedOptions;
  private readonly root: string;
  private readonly vitestConfig: unknown;
  private dir: string | null = null;
  private child: ChildProcess | undefined;

  /** @param entrypoint the worker process's main module: by default, Vitest 4's own forks worker */
  constructor(
    options: WorkerOptions,
    defaults: BranchingOptions,
    entrypoint: string = resolve(options.distPath, 'workers/forks.js'),
  ) {
    this.execArgv = options.execArgv;
    this.env = options.env as Record<string, string>;
    this.stdout = options.project.vitest.logger.outputStream;
    this.stderr = options.project.vitest.logger.errorStream;
    this.entrypoint = entrypoint;
    this.options = resolveOptions(docblockOptions(options.environment) ?? defaults);
    this.root = branchRoot(this.options, options.project.config.root);
    this.vitestConfig = options.project.vitest.config;
  }

  on(event: string, callback: (arg: any) => void): void {
    this.fork.on(event, callback);
  }
  off(event: string, callback: (arg: any) => void): void {
    this.fork.off(event, callback);
  }
  send(message: any): void {
    vitestForks().send.call(this, message);
  }
  deserialize(data: unknown): unknown {
    return vitestForks().deserialize.call(this, data);
  }
  /** Public because Vitest's borrowed send() reaches the child as `this.fork`. */
  get fork(): ChildProcess {
    if (!this.child) throw new Error('vitest-environment-branching: the worker was torn down or never started');
    return this.child;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const available = sandboxProbe();
    if (!available.available || !available.launcher) {
      this.child = this.forkPlain(`the namespace sandbox is unavailable: ${available.reason}`);
      this.pipeOutput(this.child);
      return;
    }
    const { child, status } = this.forkSandboxed(available.launcher);
    this.child = child;
    this.pipeOutput(child);
    // A failed setup step (a mount, a namespace) is a SandboxError naming it, not a worker that died.
    await status;
  }

  private forkPlain(reason: string): ChildProcess {
    if (fallbackRefused(this.options)) {
      throw new core.NamespaceError(
        `vitest-environment-branching: refusing to run without the sandbox (fallback: false or BRANCHING_NO_FALLBACK=1): ${reason}`,
      );
    }
    const env = {
      ...this.env,
      BRANCHING_VITEST_FALLBACK: reason,
      BRANCHING_VITEST_ROOT: this.root,
      BRANCHING_VITEST_OPTIONS: JSON.stringify(this.options),
    };
    return fork(this.entrypoint, [], { env, execArgv: this.execArgv, stdio: 'pipe', serialization: 'advanced' });
  }

  private forkSandboxed(launcher: string): { child: ChildProcess; status: Promise<unknown> } {
    const stateDir = stateDirOf(this.root, this.options.commit === true);
    const dir = join(runDirFor(stateDir), `w${++workerSeq}`);
    this.dir = dir;
    for (const d of ['upper', 'work', 'tmp', 't']) mkdirSync(join(dir, d), { recursive: true });
    const keptDir = join(stateDir, 'vitest-kept');
    mkdirSync(keptDir, { recursive: true });
    const view = realViewOf(this.root, stateDir);
    const spec = this.launchSpec(dir, keptDir, view);
    const info: SandboxInfo = {
      root: this.root,
      dir,
      scratch: join(dir, 't'),
      tmp: join(dir, 'tmp'),
      realRoot: view.realRoot,
      commitStateDir: view.commitStateDir,
      commitProblem: view.commitProblem,
      keptDir,
      options: this.options,
    };
    const child = fork(this.entrypoint, [], {
      env: {
        ...this.env,
        TMPDIR: info.tmp,
        BRANCHING_VITEST: JSON.stringify(info),
        ...core.launchEnv(spec, process.execPath, STATUS_FD),
      },
      execPath: launcher,
      execArgv: this.execArgv,
      stdio: ['pipe', 'pipe', 'pipe', 'ipc', 'pipe'],
      serialization: 'advanced',
    });
    if (child.pid !== undefined) registerWorkerView(dir, child.pid);
    return { child, status: core.readLaunchStatus(child, STATUS_FD) };
  }

  private launchSpec(dir: string, keptDir: string, view: RealView) {
    const spec = new core.LaunchSpec().userns().mountns();
    if (!this.options.network) spec.netns();
    // Read-only but for the worker's own dir, the kept layers, BRANCHING_WRITABLE, the real view
    // and the mounts made after this: the branch, TMPDIR, the layers.
    spec.rdonly('/').writable(dir).writable(keptDir);
    for (const extra of core.extraWritableDirs()) spec.writable(extra);
    spec.bind(view.src, view.dst).writable(view.dst);
    spec.overlay({
      target: this.root,
      lowers: [this.root],
      upper: join(dir, 'upper'),
      work: join(dir, 'work'),
      options: ['volatile'],
    });
    // Vitest 5 workers write coverage files themselves (Vitest 4 sends them to the main process):
    // the real reports directory, which Vitest creates before the workers start, shows through.
    const reports = coverageDirOf(this.vitestConfig, this.root);
    if (reports) spec.bind(join(view.realRoot, relative(this.root, reports)), reports);
    // The layers live in memory: pushing and popping one costs ~0.2 ms there, and an ext4 under
    // write load makes each a few ms; they vanish with the namespace.
    spec.tmpfs(join(dir, 'tmp'), 0o700).tmpfs(join(dir, 't'), 0o700);
    // A PID namespace with a fresh /proc: test code sees no host process (no /proc/<pid>/root).
    spec.pidns().helper([this.root, dir]).chdir(process.cwd());
    return spec;
  }

  /** The worker's output streams and where they go (Vitest's logger streams). */
  private outputPairs(child: ChildProcess) {
    return [
      [child.stdout, this.stdout],
      [child.stderr, this.stderr],
    ] as const;
  }

  private pipeOutput(child: ChildProcess): void {
    for (const [from, to] of this.outputPairs(child)) {
      if (!from) continue;
      const emitter = to as unknown as NodeJS.EventEmitter;
      emitter.setMaxListeners(1 + emitter.getMaxListeners());
      from.pipe(to);
    }
  }

  async stop(): Promise<void> {
    const child = this.fork;
    const exited = new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) done();
      else child.once('exit', () => done());
    });
    // Like Vitest's own forks pool: SIGTERM, then SIGKILL for code that ignores it.
    const killer = setTimeout(() => child.kill('SIGKILL'), 500);
    child.kill();
    await exited;
    clearTimeout(killer);
    for (const [from, to] of this.outputPairs(child)) {
      if (!from) continue;
      from.unpipe(to);
      const emitter = to as unknown as NodeJS.EventEmitter;
      emitter.setMaxListeners(emitter.getMaxListeners() - 1);
    }
    this.child = undefined;
    // The mount namespace died with the worker: its scratch is plain files now.
    const dir = this.dir;
    this.dir = null;
    if (dir) unregisterWorkerView(dir);
    if (dir) await core.removeLayerDir(dir);
  }
}
