// Sandbox mode, inside a worker the pool started through the launcher: the project root is an
// overlay at its own path (the pool's layer, made before the worker's first instruction). Each
// test file pushes a layer over it, and each test one more, through core LayerStacks; a second
// stack over the worker's fixed TMPDIR moves in lockstep, so TMPDIR's path never changes while its
// contents roll back with the project.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { layers } from './core.ts';
import type { ResolvedOptions } from './options.ts';
import type { BranchInfo, HookContext, SandboxInfo, Session, TaskLike } from './state.ts';
import { workerState } from './state.ts';

type LayerStack = InstanceType<typeof layers.LayerStack>;

interface ActiveTest {
  task: HookContext['task'];
  name: string;
  commit: boolean;
}

/** Whether the next task of the test's suite to run is a test (no suite begins or ends in between, so no beforeAll/afterAll runs). */
function nextRunsTest(task: HookContext['task']): boolean {
  const self = task as unknown as TaskLike;
  // A test at the top of a file has the file as its parent (Vitest leaves `suite` unset there).
  const tasks = (task.suite?.tasks.includes(self) ? task.suite : task.file)?.tasks ?? [];
  const at = tasks.indexOf(self);
  if (at < 0) return false;
  const next = tasks.slice(at + 1).find((t) => t.mode !== 'skip' && t.mode !== 'todo');
  return next?.type === 'test';
}

export class SandboxSession implements Session {
  readonly branch: BranchInfo;
  private readonly project: LayerStack;
  private readonly tmp: LayerStack;
  private active: ActiveTest | null = null;
  private fileCommit = false;
  private file = '';
  /** Paths the finished tests of this file wrote (relative to the root), and which test wrote them. */
  private readonly rolledBack = new Map<string, string>();
  private sharedNoticeShown = false;
  private options: ResolvedOptions;

  constructor(private readonly info: SandboxInfo) {
    this.options = info.options;
    this.project = new layers.LayerStack({ target: info.root, scratch: info.scratch });
    this.tmp = new layers.LayerStack({ target: info.tmp, scratch: info.scratch });
    const session = this;
    this.branch = {
      mode: 'sandbox',
      path: info.root,
      root: info.root,
      get test() {
        return session.active?.name ?? null;
      },
      commit() {
        if (session.active) session.active.commit = true;
        else session.fileCommit = true;
      },
    };
  }

  /** A new test file: its own layer over the pool's (a file whose hooks never ran may have left one). */
  beginFile(file: string, options: ResolvedOptions): void {
    this.options = options;
    while (this.project.depth > 0) this.project.pop();
    while (this.tmp.depth > 0) this.tmp.pop();
    this.active = null;
    this.rolledBack.clear();
    this.fileCommit = this.options.commit;
    this.file = file;
    this.project.push('file');
    this.tmp.push('file');
  }

  beforeTest(ctx: HookContext): void {
    if (!this.options.perTest) return;
    if (this.active) {
      // test.concurrent: layers are mounts over one path and cannot interleave, so a test that
      // starts while another runs shares that one's layer (and its rollback).
      this.sharedNotice(ctx.task.name);
      return;
    }
    this.project.push(`test ${ctx.task.name}`);
    this.tmp.push(`test ${ctx.task.name}`);
    this.active = { task: ctx.task, name: ctx.task.name, commit: this.options.commit };
  }

  async afterTest(ctx: HookContext): Promise<void> {
    const done = this.active;
    if (!done || done.task !== ctx.task) return;
    this.active = null;
    const failed = ctx.task.result?.state === 'fail';
    const changes = await this.project.changes();
    if (failed) this.explainFailure(ctx);
    for (const change of changes) if (change.kind !== 'deleted') this.rolledBack.set(change.path, done.name);
    const keep = failed && this.options.keep === 'on-failure';
    if (!keep && !(!failed && done.commit) && nextRunsTest(ctx.task)) {
      // No beforeAll/afterAll runs before the next test: a layer that wrote nothing serves it too.
      this.tmp.popToSpare();
      this.project.popToSpare();
      return;
    }
    this.tmp.pop();
    if (keep) {
      const kept = await this.project.keep(this.keptDir(`${basename(this.file)}-${done.name}`));
      const deleted = kept.deleted.length > 0 ? `, the paths it deleted are listed in ${kept.deletedList}` : '';
      console.warn(
        `branching: kept the branch of failing test "${done.name}": the files it wrote are in ${kept.changes}${deleted}`,
      );
    } else if (!failed && done.commit) {
      await this.commitTop();
    } else {
      this.project.pop();
    }
  }

  async endFile(): Promise<void> {
    // A test layer still up (a concurrent test's, or an afterEach that never ran) goes first.
    while (this.project.depth > 1) this.project.pop();
    while (this.tmp.depth > 0) this.tmp.pop();
    await this.tmp.settled();
    if (this.project.depth === 0) return;
    const failed = workerState().failed;
    if (failed && this.options.keep === 'on-failure' && !this.options.perTest) {
      const kept = await this.project.keep(this.keptDir(basename(this.file)));
      console.warn(`branching: kept the branch of ${this.file}: the files its tests wrote are in ${kept.changes}`);
    } else if (!failed && this.fileCommit) {
      await this.commitTop();
    } else {
      this.project.pop();
    }
    await this.project.settled();
  }

  private async commitTop(): Promise<void> {
    if (this.info.commitStateDir === null) {
      this.project.pop();
      throw new layers.ArgumentError(`branching: cannot commit: ${this.info.commitProblem}`, { argument: 'commit' });
    }
    await this.project.commitTo(this.info.realRoot, { stateDir: this.info.commitStateDir });
  }

  private keptDir(label: string): string {
    const safe = label.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 80);
    mkdirSync(this.info.keptDir, { recursive: true });
    return mkdtempSync(join(this.info.keptDir, `${safe}-`));
  }

  /** A test that fails on a file an earlier test of this file wrote: say that the rollback did it. */
  private explainFailure(ctx: HookContext): void {
    for (const error of ctx.task.result?.errors ?? []) {
      const rel = this.missingPath(error);
      const writer = rel === null ? undefined : this.writerOf(rel);
      if (rel === null || writer === undefined) continue;
      const why =
        `branching: \`${rel}\` was written by test '${writer}' of this file and rolled back after it; ` +
        'tests that share files need `perTest: false` (per file: docblock)';
      error.message = `${error.message ?? ''}\n${why}`;
      if (typeof error.stack === 'string') error.stack = `${error.stack}\n${why}`;
    }
  }

  private missingPath(error: { message?: string; code?: unknown; path?: unknown }): string | null {
    const message = error.message ?? '';
    if (error.code !== 'ENOENT' && !message.includes('ENOENT')) return null;
    const path = typeof error.path === 'string' ? error.path : /'([^']+)'/.exec(message)?.[1];
    if (!path) return null;
    const rel = relative(this.info.root, resolve(process.cwd(), path));
    return rel === '' || rel.startsWith('..') ? null : rel;
  }

  private writerOf(rel: string): string | undefined {
    for (let p = rel; p !== '.' && p !== ''; p = join(p, '..')) {
      const writer = this.rolledBack.get(p);
      if (writer !== undefined) return writer;
    }
    return undefined;
  }

  private sharedNotice(name: string): void {
    if (this.sharedNoticeShown) return;
    this.sharedNoticeShown = true;
    console.warn(
      `branching: "${name}" runs concurrently with another test of this file, so it shares that test's branch (per-test branches need tests that run one at a time)`,
    );
  }
}
