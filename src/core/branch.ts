import { mkdirSync } from 'node:fs';
import { basename } from 'node:path';
import type { Backend, BranchHandle, ParentView } from '../backends/backend.ts';
import {
  AbortError,
  ArgumentError,
  BranchError,
  BranchStaleError,
  CommitError,
  ConflictError,
  isBranchingError,
} from '../base/errors.ts';
import { removeTree } from '../base/fsutil.ts';
import type { BranchSubprocess, ExecOptions, ExecResult } from '../process/exec.ts';
import { commitChanges } from './journal.ts';
import type { HeldLock, Lease } from './lock.ts';
import { claimName, releaseName, type StateLayout, writeBranchInfo } from './state.ts';
import { tracer } from './trace.ts';

export type BranchState = 'open' | 'committed' | 'aborted';

export interface BranchOptions {
  /** `'commit'` (default): `withBranch` commits when its callback returns. `null`: leave the branch open. */
  onSuccess?: 'commit' | null;
  /** `'abort'` (default): `withBranch` aborts when its callback throws, then rethrows. `null`: leave it open. */
  onError?: 'abort' | null;
}

interface NormalizedOptions {
  onSuccess: 'commit' | null;
  onError: 'abort' | null;
}

export function normalizeBranchOptions(options: BranchOptions | undefined): NormalizedOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new ArgumentError('branch options must be an object', { argument: 'options' });
  }
  const onSuccess = options?.onSuccess === undefined ? 'commit' : options.onSuccess;
  const onError = options?.onError === undefined ? 'abort' : options.onError;
  if (onSuccess !== 'commit' && onSuccess !== null) {
    throw new ArgumentError(`onSuccess must be 'commit' or null; got ${JSON.stringify(onSuccess)}`, {
      argument: 'onSuccess',
    });
  }
  if (onError !== 'abort' && onError !== null) {
    throw new ArgumentError(`onError must be 'abort' or null; got ${JSON.stringify(onError)}`, { argument: 'onError' });
  }
  return { onSuccess, onError };
}

/** Branch names become path components (`/main/a/b`) and state file names. */
export function validateBranchName(name: unknown): string {
  const reject = (why: string) => {
    throw new ArgumentError(`invalid branch name ${JSON.stringify(name)}: ${why}`, {
      argument: 'name',
      code: 'ERR_BRANCHING_INVALID_NAME',
    });
  };
  if (typeof name !== 'string') return reject('it must be a string');
  if (name === '') return reject('it is empty');
  if (name.includes('/')) return reject("it contains '/'");
  if (name.includes('\0')) return reject('it contains NUL');
  if (name.includes('..') || name === '.') return reject("it contains '..' or is '.'");
  if (Buffer.byteLength(name) > 255) return reject('it is longer than 255 bytes');
  return name;
}

/** The children a parent (Workspace or Branch) created and has not seen finish. */
export class ChildSet {
  private readonly members = new Set<Branch>();
  add(child: Branch): void {
    this.members.add(child);
  }
  delete(child: Branch): void {
    this.members.delete(child);
  }
  /** Open children, oldest first. */
  open(): Branch[] {
    return [...this.members].filter((c) => c.state === 'open');
  }
}

/** What a branch needs from its parent (the Workspace or another Branch). */
export interface BranchOwner {
  readonly id: string;
  readonly branchPath: string;
  readonly path: string;
  readonly state: BranchState;
  readonly backend: Backend;
  /** Directory names the clone backend shares with the workspace (WorkspaceOptions.shared). */
  readonly shared: readonly string[];
  readonly layoutForBranches: StateLayout;
  readonly leaseForBranches: Lease;
  parentView(): ParentView<BranchHandle>;
  currentVersion(): Promise<number>;
  versionFile(): string | undefined;
  /** @internal The branches it created and has not seen finish. */
  readonly children: ChildSet;
  assertUsable(): void;
  assertTargetExists(): Promise<void>;
  lock(mode: 'shared' | 'exclusive'): Promise<HeldLock>;
  newBranchDir(): string;
  notice(message: string): void;
}

/** Claims `name` among the owner's open children; ArgumentError when a sibling still holds it. */
async function claimSiblingName(owner: BranchOwner, name: string, id: string, branchPath: string) {
  const claim = await claimName(owner.layoutForBranches, owner.id, name, id, owner.leaseForBranches);
  if (!claim) {
    throw new ArgumentError(`a sibling branch named ${JSON.stringify(name)} is still open under ${owner.branchPath}`, {
      argument: 'name',
      branchPath,
      code: 'ERR_BRANCHING_NAME_IN_USE',
    });
  }
  return claim;
}

/** The branch's record in its dir: what gc and recovery need to know whose it is. */
function writeNewBranchInfo(owner: BranchOwner, dir: string, b: { id: string; name: string; branchPath: string }) {
  return writeBranchInfo(dir, {
    ...b,
    parentId: owner.id,
    backend: owner.backend.kind,
    lease: owner.leaseForBranches.file,
    pid: process.pid,
    createdAt: new Date().toISOString(),
  });
}

/** Our typed errors pass through; anything else becomes a BranchError naming the branch. */
function creationError(err: unknown, branchPath: string): Error {
  if (isBranchingError(err)) return err as Error;
  return new BranchError(`cannot create branch ${branchPath}: ${(err as Error).message}`, {
    branchPath,
    path: (err as NodeJS.ErrnoException).path,
    cause: err,
  });
}

/**
 * An isolated, copy-on-write view of its parent. A branch commits into its
 * parent only. Siblings fork from one version of the parent; the first to
 * commit wins, and the others become stale: their commit raises
 * ConflictError, branching from them raises BranchStaleError, and abort
 * always works.
 *
 * A parent that aborts aborts its open children first. A parent cannot
 * commit while it has open children (CommitError ERR_BRANCH_OPEN_CHILDREN):
 * their work would silently vanish, so they must be finished first.
 */
export class Branch implements BranchOwner {
  private _state: BranchState = 'open';
  private version = 0;
  /** @internal */
  readonly children = new ChildSet();
  /** Processes running in this branch (BranchContexts): a commit while one runs would hand it the committed files. */
  private readonly users = new Map<number, string>();
  private nextUse = 0;

  private constructor(
    readonly name: string,
    readonly id: string,
    readonly branchPath: string,
    private readonly owner: BranchOwner,
    private readonly dir: string,
    private readonly handle: BranchHandle,
    private readonly baseVersion: number,
    private readonly nameClaim: string,
    private readonly options: NormalizedOptions,
  ) {}

  /** @internal */
  static async create(
    root: BranchOwner,
    owner: BranchOwner,
    rawName: string,
    options: NormalizedOptions,
  ): Promise<Branch> {
    const name = validateBranchName(rawName);
    owner.assertUsable();
    const dir = owner.newBranchDir();
    const id = basename(dir);
    const branchPath = `${owner.branchPath}/${name}`;
    const trace = tracer(`create ${owner.branchPath}/${name}`);
    const claim = await claimSiblingName(owner, name, id, branchPath);
    trace('claim name');
    const backend = owner.backend;
    let handle: BranchHandle | null = null;
    let lock: HeldLock | null = null;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      await writeNewBranchInfo(owner, dir, { id, name, branchPath });
      // A commit must not rewrite the parent while we copy or layer it.
      trace('info');
      lock = await root.lock('shared');
      trace('lock');
      const baseVersion = await owner.currentVersion();
      handle = await backend.create(owner.parentView(), { dir, workspace: root.path, shared: root.shared });
      trace('backend create');
      await lock.release();
      lock = null;
      const branch = new Branch(name, id, branchPath, owner, dir, handle, baseVersion, claim, options);
      owner.children.add(branch);
      return branch;
    } catch (err) {
      await lock?.release();
      if (handle) await backend.destroy(handle).catch(() => {});
      await removeTree(dir).catch(() => {});
      await releaseName(claim, id);
      throw creationError(err, branchPath);
    }
  }

  /** @internal Runs `fn` like a context manager: commit on success, abort on error (per the options). */
  static async runIn<T>(branch: Branch, fn: (branch: Branch) => Promise<T> | T): Promise<T> {
    let result: T;
    try {
      result = await fn(branch);
      if (branch.options.onSuccess === 'commit') await branch.commit();
    } catch (err) {
      if (branch.options.onError === 'abort') await branch.abort();
      throw err;
    }
    return result;
  }

  get state(): BranchState {
    return this._state;
  }

  /** The directory holding this branch's files: a real directory, usable as any tool's cwd. */
  get path(): string {
    return this.handle.path;
  }

  get shared(): readonly string[] {
    return this.root().shared;
  }

  get backend(): Backend {
    return this.owner.backend;
  }

  /** The project's own directory (the workspace root): where a sandbox mounts this branch. */
  get projectPath(): string {
    return this.root().path;
  }

  /** Starts `cmd args` in this branch, sandboxed where possible (see BranchContext); awaitable. Installed by the process layer. */
  declare spawn: (cmd: string, args?: readonly string[], options?: ExecOptions) => BranchSubprocess;
  /** Runs `cmd args` in this branch and resolves with `{ stdout, stderr, exitCode, signal, ... }`. Installed by the process layer. */
  declare exec: (cmd: string, args?: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

  /** Has a sibling committed into the parent since this branch was created? */
  async isStale(): Promise<boolean> {
    if (this._state !== 'open') return false;
    return (await this.owner.currentVersion()) !== this.baseVersion;
  }

  async branch(name: string, options?: BranchOptions): Promise<Branch> {
    const normalized = normalizeBranchOptions(options);
    this.assertUsable();
    if (await this.isStale()) {
      throw new BranchStaleError(`cannot branch from ${this.branchPath}: a sibling has committed into its parent`, {
        branchPath: this.branchPath,
      });
    }
    return Branch.create(this.root(), this, name, normalized);
  }

  async withBranch<T>(name: string, fn: (branch: Branch) => Promise<T> | T, options?: BranchOptions): Promise<T> {
    return Branch.runIn(await this.branch(name, options), fn);
  }

  /**
   * Applies this branch's changes to its parent, all or nothing, and
   * finishes the branch. Does nothing when the branch is already finished.
   */
  async commit(): Promise<void> {
    if (this._state !== 'open') return;
    if (this.users.size > 0) {
      throw new CommitError(
        `cannot commit ${this.branchPath} while a process still runs in it (${[...this.users.values()].join(', ')}): ` +
          'a file it holds open would keep changing after the commit, which hard-links the files; wait for it or abort it first',
        { branchPath: this.branchPath, code: 'ERR_BRANCH_IN_USE' },
      );
    }
    const open = this.children.open();
    if (open.length > 0) {
      throw new CommitError(
        `cannot commit ${this.branchPath} while its children are open: ${open.map((c) => c.name).join(', ')}`,
        { branchPath: this.branchPath, code: 'ERR_BRANCH_OPEN_CHILDREN' },
      );
    }
    if (this.owner.state !== 'open') {
      throw new CommitError(`cannot commit ${this.branchPath}: its parent is ${this.owner.state}`, {
        branchPath: this.branchPath,
        code: 'ERR_BRANCH_PARENT_FINISHED',
      });
    }
    const trace = tracer(`commit ${this.branchPath}`);
    const lock = await this.root().lock('exclusive');
    trace('lock');
    try {
      await this.owner.assertTargetExists();
      const current = await this.owner.currentVersion();
      if (current !== this.baseVersion) {
        throw new ConflictError(
          `cannot commit ${this.branchPath}: a sibling committed into ${this.owner.branchPath} first`,
          { branchPath: this.branchPath },
        );
      }
      const parent = this.owner.parentView();
      const changes = await this.backend.changes(this.handle, parent);
      trace(`changes (${changes.length})`);
      const versionFile = this.owner.versionFile();
      await commitChanges({
        target: parent.path,
        txnRoot: this.backend.stagingDir(parent, this.owner.layoutForBranches.txn),
        changes,
        version: versionFile ? { file: versionFile, value: current + 1 } : undefined,
      });
      trace('journal');
      if (!versionFile) (this.owner as Branch).version++;
    } catch (err) {
      if (isBranchingError(err)) throw err;
      throw new CommitError(`commit of ${this.branchPath} failed: ${(err as Error).message}`, {
        branchPath: this.branchPath,
        path: (err as NodeJS.ErrnoException).path,
        cause: err,
      });
    } finally {
      await lock.release();
    }
    this._state = 'committed';
    await this.release();
    trace('release');
  }

  /** Throws the branch away (its open children first). Always allowed; does nothing once finished. */
  async abort(): Promise<void> {
    if (this._state !== 'open') return;
    for (const child of this.children.open().reverse()) await child.abort();
    try {
      await this.backend.destroy(this.handle);
    } catch (err) {
      throw new AbortError(`abort of ${this.branchPath} failed: ${(err as Error).message}`, {
        branchPath: this.branchPath,
        path: (err as NodeJS.ErrnoException).path,
        cause: err,
      });
    }
    this._state = 'aborted';
    await this.release();
  }

  /** `await using b = await ws.branch('x')`: aborts on dispose unless already finished. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
  }

  private async release(): Promise<void> {
    await this.backend.destroy(this.handle).catch(() => {});
    await removeTree(this.dir).catch(() => {});
    await releaseName(this.nameClaim, this.id);
    this.owner.children.delete(this);
  }

  private root(): BranchOwner {
    let node: BranchOwner = this;
    while (node instanceof Branch) node = node.owner;
    return node;
  }

  // ---- BranchOwner, for nested branches ----

  /** @internal */
  get layoutForBranches(): StateLayout {
    return this.owner.layoutForBranches;
  }
  /** @internal */
  get leaseForBranches(): Lease {
    return this.owner.leaseForBranches;
  }
  /** @internal */
  parentView(): ParentView<BranchHandle> {
    return { id: this.id, path: this.handle.path, handle: this.handle };
  }
  /** @internal */
  async currentVersion(): Promise<number> {
    return this.version;
  }
  /** @internal */
  versionFile(): string | undefined {
    return undefined;
  }
  /** @internal */
  assertUsable(): void {
    if (this._state !== 'open') {
      throw new BranchError(`branch ${this.branchPath} is already ${this._state}`, {
        branchPath: this.branchPath,
        code: 'ERR_BRANCH_FINISHED',
      });
    }
  }
  /** @internal */
  async assertTargetExists(): Promise<void> {
    this.assertUsable();
  }
  /** @internal */
  lock(mode: 'shared' | 'exclusive'): Promise<HeldLock> {
    return this.root().lock(mode);
  }
  /** @internal */
  newBranchDir(): string {
    return this.owner.newBranchDir();
  }
  /** @internal */
  /**
   * Marks the branch as in use by a running process (`what` names it in the
   * error) until the returned function is called: commit() refuses meanwhile.
   */
  retain(what: string): () => void {
    const key = this.nextUse++;
    this.users.set(key, what);
    return () => {
      this.users.delete(key);
    };
  }

  notice(message: string): void {
    this.owner.notice(message);
  }
}
