// The fallback: a per-file branch made by the portable clone backend (a copy of the project under
// the state directory). The file's tests run with their cwd inside that copy, one path for the whole
// file (tests capture process.cwd() when they are collected), so relative writes are isolated; the
// test file itself is still loaded from the real tree, so writes to absolute paths (including
// __dirname) are not. Each test starts with a checkpoint: a clone branch of the file's copy. When the
// test ends, the two trees' contents are exchanged with renames (the cwd's directories keep their
// inodes), so the file's copy is as the test found it and the checkpoint holds what the test left,
// to be dropped or kept. TMPDIR is one directory for the process's whole life (libraries cache
// os.tmpdir()); its content is saved when a test starts and put back when it ends.
import { randomBytes } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { type Branch, exchangeTrees, Workspace } from 'branching';
import { notice } from './notice.ts';
import type { BranchingOptions } from './options.ts';

let processTmp: string | null = null;

/** This process's TMPDIR for clone branches: made once, under the core's state dir (never in the project). */
function stableTmpdir(stateDir: string): string {
  if (processTmp === null) {
    const dir = join(stateDir, 'jest-tmp', `${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    processTmp = dir;
    // It outlives every file of this process, so it goes when the process does.
    process.once('exit', () => {
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(stateDir, 'jest-tmp', `started-${process.pid}`), { force: true });
    });
  }
  return processTmp;
}

/**
 * Files and symlinks under `dir` modified at or after `since` (ms): what a test wrote in its clone,
 * for explaining a later failure. node_modules is skipped (a link farm, never a test's output).
 */
export function writtenSince(dir: string, since: number, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(rel === '' ? dir : join(dir, rel), { withFileTypes: true })) {
    const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...writtenSince(dir, since, path));
    } else if (lstatSync(join(dir, path)).mtimeMs >= since) out.push(path);
  }
  return out;
}

/** `cwd` and the directories above it, relative to `root` (empty when the cwd is outside). */
function ancestorsWithin(root: string, cwd: string): Set<string> {
  const rel = relative(root, cwd);
  const out = new Set<string>();
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return out;
  const parts = rel.split(sep);
  for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join('/'));
  return out;
}

function emptyDir(dir: string): void {
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
}

export class CloneBranches {
  private readonly options: BranchingOptions;
  private workspace: Workspace | null = null;
  private file: Branch | null = null;
  private test: Branch | null = null;
  private testStarted = 0;
  /** TMPDIR's content as the file's branch left it, while a test runs. */
  private savedTmp: string | null = null;
  tmpdir = '';
  readonly kept: string[] = [];

  constructor(options: BranchingOptions) {
    this.options = options;
  }

  /** Where the project is visible to the file (its cwd base). */
  async enterFile(name: string): Promise<string> {
    // node_modules is shared, not copied per file and test: hundreds of MB that tests only read.
    this.workspace = new Workspace(this.options.root, {
      backend: 'clone',
      shared: ['node_modules'],
      onNotice: (m) => notice(m),
    });
    this.tmpdir = stableTmpdir(this.workspace.stateDir);
    emptyDir(this.tmpdir);
    this.file = await this.workspace.branch(name, { onSuccess: null, onError: null });
    return this.file.path;
  }

  async enterTest(name: string): Promise<string> {
    // A marker's mtime, not Date.now(): file times come from the kernel's coarser clock, which can
    // lag. The copy's files keep their sources' mtimes, so anything as new was written by the test.
    const marker = join(this.workspace!.stateDir, 'jest-tmp', `started-${process.pid}`);
    writeFileSync(marker, '');
    this.testStarted = statSync(marker).mtimeMs;
    this.test = await this.file!.branch(name, { onSuccess: null, onError: null });
    this.savedTmp = join(this.workspace!.stateDir, 'jest-tmp', `saved-${randomBytes(4).toString('hex')}`);
    cpSync(this.tmpdir, this.savedTmp, { recursive: true, verbatimSymlinks: true });
    return this.file!.path;
  }

  /** What the running test wrote so far, relative to the file's copy. */
  testWrites(): string[] {
    return this.test ? writtenSince(this.file!.path, this.testStarted) : [];
  }

  /**
   * `passed` null: the test did not run (skipped, todo). With commit, a passing test's writes stay
   * in the file's copy; otherwise the copy gets the checkpoint's contents back, and what the test
   * left is dropped, or kept for inspection. `cwd` is the process's cwd, inside the file's copy.
   */
  async leaveTest(passed: boolean | null, cwd: string): Promise<string> {
    const checkpoint = this.test!;
    this.test = null;
    if (!(this.options.commit && passed === true)) {
      exchangeTrees(this.file!.path, checkpoint.path, ancestorsWithin(this.file!.path, cwd));
    }
    if (this.options.keep === 'on-failure' && passed === false) this.kept.push(checkpoint.path);
    else await checkpoint.abort();
    this.restoreTmp();
    return this.file!.path;
  }

  private restoreTmp(): void {
    if (!this.savedTmp) return;
    emptyDir(this.tmpdir);
    for (const name of readdirSync(this.savedTmp)) renameSync(join(this.savedTmp, name), join(this.tmpdir, name));
    rmSync(this.savedTmp, { recursive: true, force: true });
    this.savedTmp = null;
  }

  async leaveFile(passed: boolean, cwd: string): Promise<string[]> {
    if (this.test) await this.leaveTest(false, cwd);
    const file = this.file!;
    this.file = null;
    emptyDir(this.tmpdir);
    try {
      if (this.options.commit && passed) await file.commit();
      else if (this.options.keep === 'on-failure' && !passed) {
        this.kept.push(file.path);
        return this.kept; // the branches stay open until this worker exits; `branching gc` reclaims them
      } else await file.abort();
      await this.workspace!.close();
    } catch (err) {
      await file.abort().catch(() => {});
      throw err;
    }
    return this.kept;
  }
}
