import { randomBytes } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Backend, BackendChoice, BackendKind, BranchHandle, ParentView } from '../backends/backend.ts';
import { parseBackendChoice, reclaimerFor, selectBackend } from '../backends/factory.ts';
import { ArgumentError, BranchError, CommitError, hasErrno } from '../base/errors.ts';
import { removeTree } from '../base/fsutil.ts';
import { Branch, type BranchOptions, type BranchOwner, ChildSet, normalizeBranchOptions } from './branch.ts';
import { hasTransactions, type RecoveryReport, recoverTransactions, recoverTransactionsSync } from './journal.ts';
import { acquireLock, acquireLockSync, type HeldLock, Lease } from './lock.ts';
import { showNoticeOnce } from './notice.ts';
import {
  ensureLayout,
  layoutOf,
  readBranchInfo,
  readVersion,
  resolveStateDir,
  type StateLayout,
  stateDirsOf,
} from './state.ts';
import { killProcessesUsing } from './users.ts';

export interface WorkspaceOptions {
  /** `auto` (default) picks the fastest backend available here and reports a fallback. */
  backend?: BackendChoice;
  /** Where branch state lives (default: next to the workspace, on its filesystem). Also BRANCHING_STATE_DIR. */
  stateDir?: string;
  /** `false` (or BRANCHING_NO_FALLBACK=1) makes a fallback to the clone backend an error. */
  fallback?: boolean;
  /** Receives notices (fallbacks, leftovers of crashed processes). Default: once per message on stderr, unless BRANCHING_QUIET=1. */
  onNotice?: (message: string) => void;
  /**
   * Directory names, at any depth, that the clone backend shares with the workspace instead of
   * copying into every branch (a symlink to the workspace's own directory), e.g. `['node_modules']`:
   * branches are then cheap on projects with large dependency trees, and writes into such a
   * directory reach the real one. The overlay backend branches them like everything else. Default [].
   */
  shared?: readonly string[];
}

export interface GcReport {
  /** Branch state directories of dead processes that were removed. */
  reclaimedBranches: number;
  /** Interrupted commits that were finished. */
  replayedCommits: number;
  /** Interrupted commits that had not reached their commit point, and were dropped. */
  discardedCommits: number;
  /** Processes still running in a dead owner's branch (outside any sandbox), SIGKILLed before reclaiming it. */
  killedProcesses: number;
  /** Durable commits that still cannot be applied (each error says why and what to do); dropped with `repair`. */
  stuckCommits: CommitError[];
}

const WORKSPACE_OPTIONS = new Set(['backend', 'fallback', 'onNotice', 'shared', 'stateDir']);

function checkSharedNames(shared: unknown): void {
  if (shared === undefined) return;
  const names = Array.isArray(shared) ? shared : null;
  const bad = names?.find((n) => typeof n !== 'string' || n === '' || n === '.' || n === '..' || /[/\\\0]/.test(n));
  if (!names || bad !== undefined) {
    throw new ArgumentError(
      `shared must be an array of directory names (no path separators); got ${JSON.stringify(bad ?? shared)}`,
      { argument: 'shared' },
    );
  }
}

/** Types of the options the constructor does not check elsewhere; an unknown key is a typo, and refused. */
function checkWorkspaceOptions(options: WorkspaceOptions): void {
  for (const key of Object.keys(options)) {
    if (!WORKSPACE_OPTIONS.has(key)) {
      throw new ArgumentError(`${key} is not a Workspace option (known: ${[...WORKSPACE_OPTIONS].join(', ')})`, {
        argument: key,
      });
    }
  }
  if (options.fallback !== undefined && typeof options.fallback !== 'boolean') {
    throw new ArgumentError(`fallback must be true or false; got ${JSON.stringify(options.fallback)}`, {
      argument: 'fallback',
    });
  }
  checkSharedNames(options.shared);
  if (options.onNotice !== undefined && typeof options.onNotice !== 'function') {
    throw new ArgumentError('onNotice must be a function', { argument: 'onNotice' });
  }
}

export interface GcOptions {
  /** Drop durable commits that cannot be applied instead of keeping them for a later attempt. */
  repair?: boolean;
}

function validateWorkspacePath(path: unknown): string {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new ArgumentError(`workspace path must be a non-empty string without NUL; got ${JSON.stringify(path)}`, {
      argument: 'path',
    });
  }
  const absolute = resolve(path);
  let st: import('node:fs').Stats;
  try {
    st = statSync(absolute);
  } catch (err) {
    throw new ArgumentError(`workspace ${absolute} does not exist`, {
      argument: 'path',
      path: absolute,
      code: 'ERR_BRANCHING_WORKSPACE_MISSING',
      cause: err,
    });
  }
  if (!st.isDirectory()) {
    throw new ArgumentError(`workspace ${absolute} is not a directory`, {
      argument: 'path',
      path: absolute,
      code: 'ERR_BRANCHING_NOT_A_DIRECTORY',
    });
  }
  return realpathSync(absolute);
}

/**
 * A project directory that can be branched. Opening it recovers any commit a
 * crashed process left half-done; branches are created with `branch()` or
 * `withBranch()` and nest.
 */
export class Workspace implements BranchOwner {
  readonly path: string;
  readonly id = 'main';
  readonly branchPath = '/main';
  /** Notices issued for this workspace (fallbacks, crash leftovers). */
  readonly notices: string[] = [];
  readonly stateDir: string;
  readonly backend: Backend;
  /** Directory names the clone backend shares instead of copying (WorkspaceOptions.shared). */
  readonly shared: readonly string[];
  private readonly layout: StateLayout;
  private readonly onNotice: (message: string) => void;
  /** @internal */
  readonly children = new ChildSet();
  private lease: Lease | null = null;
  private ready: Promise<void> | null = null;
  private readonly reportedStuck = new Set<string>();

  constructor(path: string, options: WorkspaceOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new ArgumentError('options must be an object', { argument: 'options' });
    }
    this.path = validateWorkspacePath(path);
    checkWorkspaceOptions(options);
    this.onNotice = options.onNotice ?? showNoticeOnce;
    const choice = parseBackendChoice(
      options.backend ?? process.env.BRANCHING_BACKEND,
      options.backend !== undefined ? 'backend' : 'BRANCHING_BACKEND',
    );
    const allowFallback = options.fallback ?? process.env.BRANCHING_NO_FALLBACK !== '1';
    const selection = selectBackend(this.path, choice, { allowFallback });
    this.backend = selection.backend;
    this.stateDir = resolveStateDir(this.path, options.stateDir);
    this.shared = Object.freeze([...(options.shared ?? [])]);
    this.layout = layoutOf(this.stateDir);
    if (selection.fallbackNotice) this.notice(selection.fallbackNotice);
    this.recoverNow();
  }

  /**
   * Finishes a commit a crashed process left half-applied, before the
   * constructor returns: no caller may read a torn tree, even one that never
   * awaits anything of the workspace. Costs one readdir when there is none.
   */
  private recoverNow(): void {
    if (!hasTransactions(this.layout.txn)) return;
    const lock = acquireLockSync(this.layout.lock);
    try {
      this.reportRecovery(recoverTransactionsSync(this.layout.txn, this.path));
    } finally {
      lock.release();
    }
  }

  private reportRecovery(recovered: RecoveryReport): void {
    if (recovered.replayed > 0) {
      this.notice(
        `branching: finished ${recovered.replayed} commit(s) into ${this.path} that a crashed process left half-done`,
      );
    }
    // The workspace opens all the same: a commit that cannot be applied is reported, with what to do.
    for (const { dir, error } of recovered.stuck) {
      if (this.reportedStuck.has(dir)) continue;
      this.reportedStuck.add(dir);
      this.notice(`branching: ${error.message}`);
    }
  }

  /** Opens a workspace and finishes its recovery before returning. */
  static async open(path: string, options?: WorkspaceOptions): Promise<Workspace> {
    const ws = new Workspace(path, options);
    await ws.ensureReady();
    return ws;
  }

  /** The backend in use: `overlay`, `clone` or `branchfs`. */
  get fstype(): BackendKind {
    return this.backend.kind;
  }

  get state(): 'open' {
    return 'open';
  }

  /** Creates a branch of the workspace. */
  async branch(name: string, options?: BranchOptions): Promise<Branch> {
    const normalized = normalizeBranchOptions(options);
    await this.ensureReady();
    return Branch.create(this, this, name, normalized);
  }

  /** Runs `fn` in a new branch: commits when it returns, aborts (and rethrows) when it throws. */
  async withBranch<T>(name: string, fn: (branch: Branch) => Promise<T> | T, options?: BranchOptions): Promise<T> {
    return Branch.runIn(await this.branch(name, options), fn);
  }

  /**
   * Finishes or drops interrupted commits and reclaims the state of branches
   * whose process died, in every state dir this workspace used (where state
   * goes depends on what was writable at the time).
   */
  async gc(options: GcOptions = {}): Promise<GcReport> {
    if (options === null || typeof options !== 'object') {
      throw new ArgumentError('gc options must be an object', { argument: 'options' });
    }
    if (options.repair !== undefined && typeof options.repair !== 'boolean') {
      throw new ArgumentError(`repair must be true or false; got ${JSON.stringify(options.repair)}`, {
        argument: 'repair',
      });
    }
    const report = await this.gcHere(options.repair === true);
    for (const dir of stateDirsOf(this.path)) {
      if (dir === this.stateDir) continue;
      const other = new Workspace(this.path, {
        backend: this.backend.kind,
        stateDir: dirname(dir),
        onNotice: () => {},
      });
      try {
        const more = await other.gcHere(options.repair === true);
        report.reclaimedBranches += more.reclaimedBranches;
        report.killedProcesses += more.killedProcesses;
        report.replayedCommits += more.replayedCommits;
        report.discardedCommits += more.discardedCommits;
        report.stuckCommits.push(...more.stuckCommits);
      } finally {
        await other.close();
      }
    }
    return report;
  }

  private async gcHere(repair: boolean): Promise<GcReport> {
    await this.ensureReady();
    const lock = await this.lock('exclusive');
    try {
      const recovered = await recoverTransactions(this.layout.txn, this.path, { drop: repair });
      const { reclaimed, killed } = await this.reclaimDeadBranches();
      return {
        reclaimedBranches: reclaimed,
        killedProcesses: killed,
        replayedCommits: recovered.replayed,
        discardedCommits: recovered.discarded,
        stuckCommits: recovered.stuck.map((s) => s.error),
      };
    } finally {
      await lock.release();
    }
  }

  /** Aborts every branch this object still has open and releases its lease. */
  async close(): Promise<void> {
    for (const child of this.children.open()) await child.abort();
    await this.lease?.release();
    this.lease = null;
    this.ready = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- BranchOwner: what branches need from the workspace ----

  /** @internal */
  get layoutForBranches(): StateLayout {
    return this.layout;
  }

  /** @internal */
  get leaseForBranches(): Lease {
    if (!this.lease) throw new Error('workspace not ready');
    return this.lease;
  }

  /** @internal */
  parentView(): ParentView<BranchHandle> {
    return { id: 'main', path: this.path };
  }

  /** @internal */
  async currentVersion(): Promise<number> {
    return readVersion(this.layout.mainVersion);
  }

  /** @internal */
  versionFile(): string | undefined {
    return this.layout.mainVersion;
  }

  /** @internal */
  assertUsable(): void {}

  /** @internal */
  async assertTargetExists(): Promise<void> {
    const st = await fs.stat(this.path).catch(() => null);
    if (!st?.isDirectory()) {
      throw new CommitError(`the workspace ${this.path} has vanished`, {
        path: this.path,
        code: 'ERR_BRANCHING_WORKSPACE_GONE',
      });
    }
  }

  /** @internal */
  lock(mode: 'shared' | 'exclusive'): Promise<HeldLock> {
    return acquireLock(this.layout.lock, mode);
  }

  /** @internal */
  newBranchDir(): string {
    return join(this.layout.branches, randomBytes(6).toString('hex'));
  }

  notice(message: string): void {
    this.notices.push(message);
    this.onNotice(message);
  }

  private ensureReady(): Promise<void> {
    this.ready ??= this.prepare().catch((err) => {
      this.ready = null;
      throw err;
    });
    return this.ready;
  }

  private async prepare(): Promise<void> {
    await ensureLayout(this.layout, this.path);
    this.lease = await Lease.take(this.layout.leases);
    const lock = await this.lock('exclusive');
    try {
      this.reportRecovery(await recoverTransactions(this.layout.txn, this.path));
    } finally {
      await lock.release();
    }
    const dead = await this.deadBranchDirs();
    if (dead.length > 0) {
      this.notice(
        `branching: ${dead.length} branch(es) of ${this.path} were left by processes that died; \`branching gc ${this.path}\` reclaims them`,
      );
    }
  }

  private async deadBranchDirs(): Promise<string[]> {
    const names = await fs.readdir(this.layout.branches).catch(() => [] as string[]);
    const dead: string[] = [];
    for (const name of names) {
      const dir = join(this.layout.branches, name);
      const info = await readBranchInfo(dir);
      // A directory without info.json is a branch that died while being created, or is being created now.
      if (info ? !(await Lease.isAlive(info.lease)) : await isOlderThan(dir, 60_000)) dead.push(dir);
    }
    return dead;
  }

  private async reclaimDeadBranches(): Promise<{ reclaimed: number; killed: number }> {
    const dead = await this.deadBranchDirs();
    // Never pull a tree from under a process: what the dead owner left running in it goes first.
    const { killed, refused } = await killProcessesUsing(dead);
    if (refused.length > 0) {
      throw new BranchError(
        `cannot reclaim the dead branches of ${this.path}: processes ${refused.join(', ')} still use them and cannot be signalled by this user`,
        { code: 'ERR_BRANCH_IN_USE' },
      );
    }
    for (const dir of dead) {
      await reclaimerFor((await readBranchInfo(dir))?.backend, this.backend)(dir);
      await removeTree(dir);
    }
    await this.reclaimDeadNamesAndLeases();
    return { reclaimed: dead.length, killed: killed.length };
  }

  private async reclaimDeadNamesAndLeases(): Promise<void> {
    const parents = await fs.readdir(this.layout.names).catch(() => [] as string[]);
    for (const parent of parents) {
      const dir = join(this.layout.names, parent);
      for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
        const file = join(dir, name);
        const claim = await fs.readFile(file, 'utf8').then(
          (t) => JSON.parse(t) as { lease: string },
          () => null,
        );
        if (!claim || !(await Lease.isAlive(claim.lease))) await fs.rm(file, { force: true });
      }
      await fs.rmdir(dir).catch(() => {});
    }
    for (const name of await fs.readdir(this.layout.leases).catch(() => [] as string[])) {
      const file = join(this.layout.leases, name);
      if (file !== this.lease?.file && !(await Lease.isAlive(file))) await fs.rm(file, { force: true });
    }
  }
}

async function isOlderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await fs.stat(path)).mtimeMs > ms;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
