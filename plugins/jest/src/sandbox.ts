// Inside a worker born through the sandbox launcher (see sandbox-runner.ts): the worker has its own mount
// namespace and a mount helper. Two core layer stacks move in lockstep: one over the project root
// (so relative, absolute and __dirname writes all land in the branch) and one over the worker's
// TMPDIR, a directory whose path never changes for the worker's life (libraries cache
// os.tmpdir() at first use) while its content rolls back with every layer.
import { randomBytes } from 'node:crypto';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HelperClient, type LayerChange, LayerStack } from 'branching';

/** What the runner tells its workers (env BRANCHING_JEST_SANDBOX). */
export interface SandboxPlan {
  /** Branched root -> its run dir (scratch, TMPDIRs, kept layers). */
  runDirs: Record<string, string>;
  network: boolean;
  /** Branched root -> where the real tree is visible, and a state dir on that mount (commit: true only). */
  realViews: Record<string, { root: string; stateDir: string }>;
}

export function sandboxPlanFromEnv(env: NodeJS.ProcessEnv = process.env): SandboxPlan | null {
  if (!env.BRANCHING_JEST_SANDBOX || env.BRANCHING_SANDBOX !== '1' || !HelperClient.fromEnv(env)) return null;
  return JSON.parse(env.BRANCHING_JEST_SANDBOX) as SandboxPlan;
}

/** Where, inside a root's run dir, each worker's private tmpfs (scratch and TMPDIR) is mounted. */
export function workersDir(runDir: string): string {
  return join(runDir, 'w');
}

/** One finished test's layer: what it changed, for explaining failures that rollback caused. */
export interface FinishedLayer {
  test: string;
  changes: LayerChange[];
}

export type LayerOutcome = { kind: 'dropped' } | { kind: 'kept'; path: string } | { kind: 'committed' };

let counter = 0;

/** The two stacks of one branched root in this worker, and the fixed TMPDIR under them. */
export class RootLayers {
  readonly root: string;
  readonly tmpdir: string;
  private readonly project: LayerStack;
  private readonly tmp: LayerStack;
  private readonly runDir: string;

  constructor(root: string, runDir: string) {
    this.root = root;
    this.runDir = runDir;
    // Every sandboxed worker is pid 2 of its own PID namespace: the pid alone would collide.
    const dir = join(workersDir(runDir), `w${process.env.JEST_WORKER_ID ?? 0}-${randomBytes(4).toString('hex')}`);
    const scratch = join(dir, 'scratch');
    this.tmpdir = join(dir, 'tmp');
    for (const d of [dir, scratch, this.tmpdir]) mkdirSync(d, { mode: 0o700 });
    this.tmpdir = realpathSync(this.tmpdir);
    this.project = new LayerStack({ target: root, scratch });
    this.tmp = new LayerStack({ target: this.tmpdir, scratch });
  }

  get depth(): number {
    return this.project.depth;
  }

  push(name: string): void {
    this.project.push(name);
    try {
      this.tmp.push(name);
    } catch (err) {
      this.project.pop();
      throw err;
    }
  }

  /** What the top project layer changed (TMPDIR changes are private to the layer anyway). */
  changes(): Promise<LayerChange[]> {
    return this.project.changes();
  }

  /** Ends the top layer: committed into the real tree, kept for inspection, or dropped. */
  async finish(
    name: string,
    how: { commit?: { root: string; stateDir: string } | null; keep?: boolean; spare?: boolean },
  ): Promise<LayerOutcome> {
    if (how.spare && !how.commit && !how.keep) {
      // A layer that wrote nothing stays up for the next test (core LayerStack.popToSpare()): the
      // caller settles it before anything else runs in the file's layer.
      this.tmp.popToSpare();
      this.project.popToSpare();
      return { kind: 'dropped' };
    }
    this.tmp.pop();
    if (how.commit) {
      try {
        await this.project.commitTo(how.commit.root, { stateDir: how.commit.stateDir });
      } catch (err) {
        // A failed commit leaves the layer mounted: the stacks must stay in lockstep.
        this.project.pop();
        throw err;
      }
      return { kind: 'committed' };
    }
    if (how.keep) {
      const dest = join(
        this.runDir,
        `kept-${process.env.JEST_WORKER_ID ?? 0}-${randomBytes(3).toString('hex')}-${++counter}`,
      );
      const kept = await this.project.keep(dest);
      // The runner removes its run dir at the end, except what is marked as kept.
      writeFileSync(join(dest, 'KEPT'), `kept by keep: 'on-failure': ${name}\n`);
      return { kind: 'kept', path: kept.changes };
    }
    this.project.pop();
    return { kind: 'dropped' };
  }

  /** Takes down a spare layer before code that writes into the file's layer (beforeAll, afterAll). */
  settle(): void {
    this.tmp.settle();
    this.project.settle();
  }

  /** Waits for the background removal of popped layers; rejects with the first that failed. */
  async settled(): Promise<void> {
    await Promise.all([this.tmp.settled(), this.project.settled()]);
  }

  /** Pops every layer left (a file whose environment never reached its teardown). */
  popAll(): void {
    while (this.tmp.depth > 0) this.tmp.pop();
    while (this.project.depth > 0) this.project.pop();
  }
}

/** The state a worker shares between its worker entry and the environments it constructs. */
export interface WorkerState {
  plan: SandboxPlan | null;
  roots: Map<string, RootLayers>;
  /** The file the worker entry is running now, and its branch (sandbox only). */
  file: { path: string; layers: RootLayers | null } | null;
}

const KEY = Symbol.for('jest-environment-branching.worker');

/** One per process: the worker entry and the environment are separate bundles. */
export function workerState(): WorkerState {
  const g = globalThis as unknown as Record<symbol, WorkerState | undefined>;
  g[KEY] ??= { plan: sandboxPlanFromEnv(), roots: new Map(), file: null };
  return g[KEY];
}

/** This worker's layers for `root`, made on first use; null when the runner did not prepare it. */
export function layersFor(state: WorkerState, root: string): RootLayers | null {
  const existing = state.roots.get(root);
  if (existing) return existing;
  const runDir = state.plan?.runDirs[root];
  if (!runDir) return null;
  const layers = new RootLayers(root, runDir);
  state.roots.set(root, layers);
  return layers;
}
