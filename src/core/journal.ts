import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  constants as fsc,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Change, depthOf, orderChanges } from '../base/changes.ts';
import { CommitError, hasErrno } from '../base/errors.ts';
import {
  copyTree,
  fsyncPath,
  fsyncPathSync,
  Limiter,
  linkOrCopyFile,
  removeTree,
  removeTreeSync,
  writeFileDurableSync,
  writeFileSynced,
} from '../base/fsutil.ts';
import { tracer } from './trace.ts';

/**
 * Crash-safe commits: a change set is first staged (every new file, symlink
 * and opaque tree is linked or copied into the transaction directory, on the
 * target's filesystem, and fsynced), then described in a journal that is
 * fsynced and renamed into place: that rename is the commit point. Applying
 * is a series of renames, each idempotent given the journal, so that a
 * process killed at any instant leaves either the old tree (no journal yet:
 * recovery deletes the staging) or a journal that recovery replays to the
 * end. Nothing is ever written through a symlink of the target tree.
 */

type JournalOp =
  | { op: 'delete'; path: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'place'; path: string; staged: string };

interface Journal {
  format: 1;
  target: string;
  ops: JournalOp[];
  /**
   * Existing directories of the target that the ops write into but this
   * user may not write (a 0555 dir), with their mode before the commit:
   * replay opens them first and gives each its final mode last, so that the
   * outcome never depends on the order of mode changes.
   */
  unlock?: Array<{ path: string; mode: number }>;
  /**
   * Written with the commit, so that a replay also moves the version on.
   * `staged` names the new version file, staged (and fsynced) with the rest,
   * so that it is placed by a rename like any other file.
   */
  version?: { file: string; value: number; staged?: string };
}

const JOURNAL = 'journal.json';
const TXN_PREFIX = '.branching-txn-';

/**
 * Test-only fault injection: SIGKILL ourselves before mutation step N of the
 * process (BRANCHING_TEST_CRASH_AT_STEP), or fail with EIO at step N of
 * every commit and replay (BRANCHING_TEST_FAIL_AT_STEP, read at each one).
 */
let crashAt = Number(process.env.BRANCHING_TEST_CRASH_AT_STEP ?? -1);
let stepCount = 0;
let failAt = -1;
let failCount = 0;
function step(): void {
  if (crashAt >= 0 && stepCount++ === crashAt) {
    crashAt = -1;
    process.kill(process.pid, 'SIGKILL');
  }
  if (failAt >= 0 && failCount++ === failAt) {
    throw Object.assign(new Error(`EIO: injected fault at step ${failAt}`), { code: 'EIO', path: 'injected' });
  }
}
function armFaults(): void {
  failAt = Number(process.env.BRANCHING_TEST_FAIL_AT_STEP ?? -1);
  failCount = 0;
}

export interface CommitRequest {
  /** Directory the changes are applied to. */
  target: string;
  /** Directory for transactions, on the target's filesystem. */
  txnRoot: string;
  changes: Change[];
  version?: { file: string; value: number };
}

export async function commitChanges(request: CommitRequest): Promise<void> {
  armFaults();
  await assertWritableTarget(request.target);
  await finishEarlierCommits(request.txnRoot, request.target);
  // Dot-named: when committing into a parent branch, this dir sits (briefly) inside the parent's tree.
  const dir = join(request.txnRoot, `${TXN_PREFIX}${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
  const trace = tracer('journal');
  const stagedDir = join(dir, 'staged');
  await fs.mkdir(stagedDir, { recursive: true });
  try {
    const versionName = 'version';
    const [ops] = await Promise.all([
      stage(request.changes, stagedDir),
      request.version ? writeFileSynced(join(stagedDir, versionName), String(request.version.value)) : null,
    ]);
    trace('stage');
    step();
    const journal: Journal = {
      format: 1,
      target: request.target,
      ops,
      unlock: await lockedParents(request.target, ops),
      version: request.version && { ...request.version, staged: versionName },
    };
    // The staged directory's entries and the journal's bytes become durable together;
    // then the journal's rename (made durable by the directory fsync) is the commit point.
    const tmp = join(dir, `${JOURNAL}.tmp`);
    await Promise.all([fsyncPath(stagedDir), writeFileSynced(tmp, JSON.stringify(journal))]);
    step();
    await fs.rename(tmp, join(dir, JOURNAL));
    await fsyncPath(dir);
    trace('journal written');
  } catch (err) {
    await removeTree(dir);
    throw err instanceof CommitError
      ? err
      : new CommitError(`commit into ${request.target} failed while staging: ${(err as Error).message}`, {
          path: (err as NodeJS.ErrnoException).path ?? request.target,
          cause: err,
        });
  }
  // Past the commit point: the change will land, now or at recovery.
  try {
    await replay(dir);
  } catch (err) {
    throw pendingError(request.target, err);
  }
  trace('replay');
}

/** The journal is durable, so the commit stands: what failed is applying it, which recovery finishes. */
function pendingError(target: string, err: unknown): CommitError {
  const e = err as NodeJS.ErrnoException;
  return new CommitError(
    `committed into ${target}, but applying the change failed (${e.code ?? 'error'}: ${e.message}); ` +
      'it is durable and finishes at the next Workspace.open() or `branching gc` once the cause is fixed',
    { path: e.path ?? target, code: 'ERR_BRANCH_COMMIT_PENDING', cause: err },
  );
}

/** A read-only target fails up front with what it is, not with a link error halfway through staging. */
async function assertWritableTarget(target: string): Promise<void> {
  try {
    await fs.access(target, fsc.W_OK);
  } catch (err) {
    if (!hasErrno(err, 'EROFS', 'EACCES', 'EPERM')) return; // missing etc.: reported by what follows
    const why = hasErrno(err, 'EROFS') ? 'it is on a read-only file system' : 'this user may not write it';
    throw new CommitError(`cannot commit into ${target}: ${why}`, {
      path: target,
      code: hasErrno(err, 'EROFS') ? 'ERR_BRANCH_COMMIT_READ_ONLY' : 'ERR_BRANCH_COMMIT',
      cause: err,
    });
  }
}

/**
 * Directories (relative to the target, '' for the target itself) that ops
 * write into and that this user may not write or search now, with their
 * current mode. Root may write anywhere, so this is empty for root.
 */
async function lockedParents(target: string, ops: JournalOp[]): Promise<Array<{ path: string; mode: number }>> {
  const parents = new Set<string>();
  for (const op of ops) {
    for (let rel = parentOf(op.path); rel !== null; rel = parentOf(rel)) parents.add(rel);
  }
  const locked: Array<{ path: string; mode: number }> = [];
  for (const rel of parents) {
    const path = join(target, rel);
    const st = await fs.lstat(path).catch(() => null);
    if (!st?.isDirectory()) continue;
    const ok = await fs.access(path, fsc.W_OK | fsc.X_OK).then(
      () => true,
      () => false,
    );
    if (ok) continue;
    if (st.uid !== process.getuid?.()) {
      throw new CommitError(`cannot commit into ${target}: ${path} is not writable by this user, who does not own it`, {
        path,
        code: 'ERR_BRANCH_COMMIT_PERMISSION',
      });
    }
    locked.push({ path: rel, mode: st.mode & 0o7777 });
  }
  return locked;
}

function parentOf(rel: string): string | null {
  if (rel === '') return null;
  const at = rel.lastIndexOf('/');
  return at < 0 ? '' : rel.slice(0, at);
}

/**
 * Stages every new file, symlink and tree. The journal's op order is fixed
 * here; the staging itself (link or copy, then fsync) runs in parallel,
 * because serial fsyncs dominate the cost of small commits.
 */
async function stage(changes: Change[], stagedDir: string): Promise<JournalOp[]> {
  const ops: JournalOp[] = [];
  const jobs: Array<() => Promise<void>> = [];
  let n = 0;
  for (const change of orderChanges(changes)) {
    if (change.op === 'delete' || change.op === 'mkdir') {
      ops.push(change);
      continue;
    }
    const staged = String(n++);
    const dest = join(stagedDir, staged);
    ops.push({ op: 'place', path: change.path, staged });
    if (change.op === 'file') jobs.push(() => linkOrCopy(change.source, dest));
    else if (change.op === 'symlink') jobs.push(() => fs.symlink(change.target, dest));
    else {
      jobs.push(async () => {
        await copyTree(change.source, dest, { hardLink: true });
        await syncTree(dest);
      });
    }
  }
  const limiter = new Limiter(16);
  await Promise.all(
    jobs.map((job) =>
      limiter.run(() => {
        step();
        return job();
      }),
    ),
  );
  return ops;
}

/** A hard link keeps the source intact until the branch is gone; durable before the commit point. */
async function linkOrCopy(source: string, dest: string): Promise<void> {
  await linkOrCopyFile(source, dest);
  await fsyncPath(dest);
}

async function syncTree(path: string): Promise<void> {
  const st = await fs.lstat(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const name of await fs.readdir(path)) await syncTree(join(path, name));
  await fsyncPath(path);
}

/** Applies a journalled transaction to the end and removes it. Idempotent: safe to run again after a crash. */
export async function replay(dir: string): Promise<void> {
  replaySync(dir);
}

/**
 * The replay itself, synchronous: a run of renames and chmods, so that the
 * Workspace constructor can finish an interrupted commit before anything
 * reads the tree (and a commit's apply is never interleaved with other work).
 */
export function replaySync(dir: string): void {
  const journal = JSON.parse(readFileSync(join(dir, JOURNAL), 'utf8')) as Journal;
  const staged = join(dir, 'staged');
  const trash = join(dir, 'trash');
  mkdirSync(trash, { recursive: true });
  const safe = new SafeDirs(journal.target);
  const touched = new Set<string>();
  for (const { path } of journal.unlock ?? []) {
    step();
    chmodIfDir(join(journal.target, path), (mode) => mode | 0o700);
  }
  for (const [index, op] of journal.ops.entries()) {
    const target = join(journal.target, op.path);
    safe.assertParentIsReal(op.path);
    step();
    applyOp(op, target, staged, join(trash, String(index)), safe);
    touched.add(dirname(target));
  }
  // Directory modes last, deepest first: a read-only directory must not block its own children.
  for (const { path, mode } of finalModes(journal)) {
    step();
    chmodIfDir(join(journal.target, path), () => mode);
  }
  placeVersion(journal, staged, touched);
  for (const d of touched) {
    try {
      fsyncPathSync(d);
    } catch {
      // a directory the ops removed again
    }
  }
  step();
  // Removing the journal first makes the transaction finished even if the rest of the cleanup is cut short.
  rmSync(join(dir, JOURNAL), { force: true });
  removeTreeSync(dir);
}

function applyOp(op: JournalOp, target: string, staged: string, aside: string, safe: SafeDirs): void {
  if (op.op === 'delete') {
    moveAside(target, aside);
  } else if (op.op === 'mkdir') {
    const st = lstatSync(target, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) moveAside(target, aside);
    if (!st?.isDirectory()) mkdirSync(target, { mode: 0o700 });
    safe.markReal(op.path);
  } else {
    const from = join(staged, op.staged);
    const source = lstatSync(from, { throwIfNoEntry: false });
    if (!source) return; // placed before a crash
    const st = lstatSync(target, { throwIfNoEntry: false });
    // rename(2) replaces a non-directory atomically, but not a directory, nor anything by a directory.
    if (st && (st.isDirectory() || source.isDirectory())) moveAside(target, aside);
    renameSync(from, target);
  }
}

function placeVersion(journal: Journal, staged: string, touched: Set<string>): void {
  if (journal.version?.staged) {
    step();
    const stagedVersion = join(staged, journal.version.staged);
    if (lstatSync(stagedVersion, { throwIfNoEntry: false })) renameSync(stagedVersion, journal.version.file);
    touched.add(dirname(journal.version.file));
  } else if (journal.version) {
    step();
    writeFileDurableSync(journal.version.file, String(journal.version.value));
  }
}

/** The mode each directory ends with: a mkdir op's, else (an unlocked one) the mode it had; deepest first. */
function finalModes(journal: Journal): Array<{ path: string; mode: number }> {
  const modes = new Map<string, number>();
  for (const { path, mode } of journal.unlock ?? []) modes.set(path, mode);
  for (const op of journal.ops) if (op.op === 'mkdir') modes.set(op.path, op.mode);
  return [...modes].map(([path, mode]) => ({ path, mode })).sort((a, b) => depthOf(b.path) - depthOf(a.path));
}

/** chmod of a directory that may have been replaced or removed by the ops since (then nothing to do). */
function chmodIfDir(path: string, mode: (current: number) => number): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st?.isDirectory()) chmodSync(path, mode(st.mode & 0o7777));
}

function moveAside(path: string, aside: string): void {
  try {
    renameSync(path, aside);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return;
    // An unprivileged overlay (a parent branch's merged mount) cannot rename a
    // directory that comes from a lower layer. Removing it instead is just as
    // idempotent, and journals aimed at branches are never replayed anyway.
    if (!hasErrno(err, 'EXDEV')) throw err;
    removeTreeSync(path);
  }
}

/**
 * Guards against writing through symlinks: before an operation on a/b/c, a
 * and a/b must be real directories of the target (not symlinks), either
 * checked with lstat or created by this transaction.
 */
class SafeDirs {
  private readonly real = new Set<string>(['']);
  constructor(private readonly root: string) {}

  markReal(rel: string): void {
    this.real.add(rel);
  }

  assertParentIsReal(rel: string): void {
    const parts = rel.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix === '' ? parts[i] : `${prefix}/${parts[i]}`;
      if (this.real.has(prefix)) continue;
      const st = lstatSync(join(this.root, prefix), { throwIfNoEntry: false });
      if (!st?.isDirectory()) {
        throw new CommitError(
          `refusing to apply ${rel}: ${join(this.root, prefix)} is ${st ? 'not a directory (a symlink or file)' : 'missing'} in the target`,
          { path: join(this.root, prefix), code: 'ERR_BRANCH_COMMIT_UNSAFE_PATH' },
        );
      }
      this.real.add(prefix);
    }
  }
}

export interface StuckCommit {
  /** The transaction directory. */
  dir: string;
  /** Why replaying it failed: a CommitError with code ERR_BRANCH_JOURNAL_STUCK. */
  error: CommitError;
}

export interface RecoveryReport {
  replayed: number;
  discarded: number;
  /** Committed changes that could not be applied (yet): the workspace still opens. */
  stuck: StuckCommit[];
}

function stuckError(dir: string, workspace: string, err: unknown): CommitError {
  const e = err as NodeJS.ErrnoException;
  return new CommitError(
    `a commit into ${workspace} is durable but could not be applied (${e.code ?? 'error'}: ${e.message}); ` +
      `fix the cause and run \`branching gc ${workspace}\` to finish it, or \`branching gc --repair ${workspace}\` to drop it ` +
      `(what was applied so far stays; the journal is ${dir})`,
    { path: e.path ?? workspace, code: 'ERR_BRANCH_JOURNAL_STUCK', cause: err },
  );
}

/**
 * Recovers interrupted commits: replays journalled ones into `workspace`,
 * discards the rest, and reports (never throws for) a journal that cannot be
 * replayed. With `drop`, such a journal is removed instead. Call under the lock.
 */
export async function recoverTransactions(
  txnRoot: string,
  workspace: string,
  options: { drop?: boolean } = {},
): Promise<RecoveryReport> {
  return recoverTransactionsSync(txnRoot, workspace, options);
}

/** Whether `txnRoot` holds any transaction at all: recovery is skipped, at no cost, when it does not. */
export function hasTransactions(txnRoot: string): boolean {
  try {
    return readdirSync(txnRoot).some((n) => n.startsWith(TXN_PREFIX));
  } catch {
    return false;
  }
}

export function recoverTransactionsSync(
  txnRoot: string,
  workspace: string,
  { drop = false }: { drop?: boolean } = {},
): RecoveryReport {
  armFaults();
  const report: RecoveryReport = { replayed: 0, discarded: 0, stuck: [] };
  let names: string[];
  try {
    names = readdirSync(txnRoot).filter((n) => n.startsWith(TXN_PREFIX));
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return report;
    throw err;
  }
  for (const name of names.sort()) {
    const dir = join(txnRoot, name);
    let journal: Journal | null = null;
    try {
      journal = JSON.parse(readFileSync(join(dir, JOURNAL), 'utf8')) as Journal;
    } catch {
      // not yet committed: no journal
    }
    if (!journal || journal.target !== workspace) {
      // Not yet committed, or aimed at a branch that died with its process.
      removeTreeSync(dir);
      report.discarded++;
      continue;
    }
    try {
      replaySync(dir);
      report.replayed++;
    } catch (err) {
      if (!drop) report.stuck.push({ dir, error: stuckError(dir, workspace, err) });
      else {
        removeTreeSync(dir);
        report.discarded++;
      }
    }
  }
  return report;
}

/** A new commit lands after the ones before it, or not at all. */
async function finishEarlierCommits(txnRoot: string, target: string): Promise<void> {
  const { stuck } = await recoverTransactions(txnRoot, target);
  if (stuck.length > 0) throw stuck[0].error;
}
