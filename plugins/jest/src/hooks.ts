// What the environment adds to whichever environment class the project uses: a branch per test
// (test_start, before beforeEach; ended at test_done, after afterEach) on top of the file's
// branch, which is the sandbox worker's (see worker.ts) or, without the sandbox, a clone.
// beforeAll/afterAll writes, at any depth, happen between tests and so belong to the file's branch.
import { isAbsolute, relative, sep } from 'node:path';
import { ArgumentError, MountError } from 'branching';
import { CloneBranches } from './clone.ts';
import { notice } from './notice.ts';
import { type BranchingOptions, noFallbackSource, parseOptions } from './options.ts';
import { explainRollback } from './rollback-hint.ts';
import { type FinishedLayer, type LayerOutcome, type RootLayers, type WorkerState, workerState } from './sandbox.ts';

/** The parts of a Jest environment the hooks touch. */
export interface HostEnvironment {
  global: { process?: { chdir?: (dir: string) => void; env?: Record<string, string | undefined> } };
}

interface CircusTest {
  name: string;
  concurrent?: boolean;
  errors: unknown[];
}

export interface CircusEvent {
  name: string;
  test?: CircusTest;
  hook?: { type: string };
}

let branchCounter = 0;

/** A branch name from a label: no '/', no '..', short, unique in this process. */
export function branchName(label: string): string {
  const slug = label
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/\.\.+/g, '_')
    .slice(0, 60);
  return `${process.pid}-${++branchCounter}-${slug || 'x'}`;
}

function fallbackNotice(root: string, reason: string): string {
  return (
    `jest-environment-branching: fallback mode for ${root} (${reason}). Each test file runs in a ` +
    'copy of the project with its cwd (one path for the whole file) and TMPDIR pointed there, and ' +
    'each test gets that copy back as it found it, so writes to relative paths and to os.tmpdir() ' +
    'are isolated and rolled back. NOT isolated: ' +
    'writes to absolute paths inside the project, including paths built from __dirname (the test ' +
    'file is loaded from the real tree), and writes into node_modules, which the copies share with ' +
    'the project. NOT the same as without the plugin: files that code outside a test keeps open ' +
    "(a log a beforeAll opened): what goes through the descriptor lands in the file's copy, while " +
    "each test reads its own copy's version. " +
    'For full isolation use `preset: "jest-environment-branching"` ' +
    '(its runner starts Jest workers in a Linux sandbox).'
  );
}

function sandboxUnavailableReason(): string {
  if (process.env.BRANCHING_JEST_SANDBOX) return 'the sandbox worker has no mount helper';
  if (process.env.BRANCHING_JEST_FALLBACK_REASON) return process.env.BRANCHING_JEST_FALLBACK_REASON;
  return 'Jest is not using the runner jest-environment-branching/runner, so this process has no sandbox';
}

/** The sandbox worker's branch for this file, checked against the options the file ended up with. */
function sandboxLayers(state: WorkerState, options: BranchingOptions, testPath: string): RootLayers {
  const layers = state.file?.path === testPath ? state.file.layers : null;
  if (!layers || layers.root !== options.root) {
    throw new MountError(
      `jest-environment-branching: the root ${options.root} was not prepared by the runner (it prepared ${Object.keys(state.plan?.runDirs ?? {}).join(', ')}); set testEnvironmentOptions.branching.root in the Jest config rather than in a docblock`,
      { path: options.root },
    );
  }
  if (!options.network && state.plan?.network !== false) {
    throw new ArgumentError(
      'jest-environment-branching: network: false was asked for in a docblock, but this worker has a network; set testEnvironmentOptions.branching.network = false in the Jest config so that the runner starts workers without one',
      { argument: 'testEnvironmentOptions.branching.network' },
    );
  }
  return layers;
}

function cloneBranches(options: BranchingOptions): CloneBranches {
  const reason = sandboxUnavailableReason();
  if (!options.fallback) {
    throw new MountError(`jest-environment-branching: refusing to run unsandboxed (${noFallbackSource()}): ${reason}`);
  }
  if (!options.network) {
    throw new ArgumentError(
      `jest-environment-branching: network: false needs the sandbox runner (runner: "jest-environment-branching/runner"), which is unavailable here: ${reason}`,
      { argument: 'testEnvironmentOptions.branching.network' },
    );
  }
  notice(fallbackNotice(options.root, reason));
  return new CloneBranches(options);
}

export class BranchingHooks {
  private readonly env: HostEnvironment;
  private readonly testPath: string;
  readonly options: BranchingOptions;
  private readonly layers: RootLayers | null;
  private readonly clone: CloneBranches | null;
  private readonly commitView: { root: string; stateDir: string } | null;
  private failures = 0;
  private testOpen: string | null = null;
  private fileOpen = false;
  private readonly finished: FinishedLayer[] = [];
  private readonly kept: string[] = [];
  private saved: { cwd: string; tmpdir: string | undefined } | null = null;
  /** Where the project is visible now: the root itself (sandbox), or the current clone. */
  private view = '';

  constructor(env: HostEnvironment, projectConfig: any, testPath: string) {
    this.env = env;
    this.testPath = testPath;
    this.options = parseOptions(projectConfig.testEnvironmentOptions?.branching, projectConfig.rootDir);
    const state = workerState();
    this.layers = state.plan ? sandboxLayers(state, this.options, testPath) : null;
    this.clone = this.layers ? null : cloneBranches(this.options);
    this.commitView = (this.options.commit && state.plan?.realViews[this.options.root]) || null;
    if (this.layers && this.options.commit && !this.commitView) {
      throw new MountError(
        `jest-environment-branching: commit: true was asked for in a docblock, but the runner did not give this worker a view of the real tree; set testEnvironmentOptions.branching.commit in the Jest config`,
      );
    }
  }

  async setup(): Promise<void> {
    this.saved = { cwd: process.cwd(), tmpdir: process.env.TMPDIR };
    this.fileOpen = true;
    if (this.clone) {
      const label = relative(this.options.root, this.testPath) || this.testPath;
      const view = await this.clone.enterFile(branchName(label));
      this.setEnv('TMPDIR', this.clone.tmpdir);
      this.enter(view);
    } else this.enter(this.options.root);
  }

  async handleTestEvent(event: CircusEvent, state: { unhandledErrors?: unknown[] }): Promise<void> {
    const test = event.test;
    // test_start (Jest 28 has no test_started) precedes the skip check: a skipped or todo test's
    // layer is dropped at test_skip / test_todo.
    if (event.name === 'test_start' && test && this.options.perTest && test.concurrent) {
      notice(`jest-environment-branching: the test.concurrent tests of ${this.testPath} share its file's branch`, {
        everyWorker: true,
      });
    } else if (event.name === 'test_start' && test && this.options.perTest) {
      if (this.testOpen !== null) await this.leaveTest(false);
      await this.enterTest(test.name);
    } else if (event.name === 'hook_start' && (event.hook?.type === 'beforeAll' || event.hook?.type === 'afterAll')) {
      // What beforeAll/afterAll write belongs to the file's layer, never to a test's spare.
      this.layers?.settle();
    } else if ((event.name === 'test_skip' || event.name === 'test_todo') && this.testOpen !== null) {
      await this.leaveTest(null);
    } else if (event.name === 'test_done' && test) {
      const passed = test.errors.length === 0;
      if (!passed) this.failures++;
      if (this.testOpen !== null) {
        if (!passed) this.explain(test.errors);
        await this.leaveTest(passed);
      }
    } else if (event.name === 'run_finish') {
      this.failures += state.unhandledErrors?.length ?? 0;
    } else if (event.name === 'teardown' && this.layers) {
      // Jest writes snapshot files (and inline-snapshot rewrites) right after this event: with the
      // file's branch gone they land in the real tree, as without the plugin.
      await this.leaveFile();
    }
  }

  private async enterTest(name: string): Promise<void> {
    if (this.layers) {
      this.layers.push(branchName(name));
      this.enter(this.options.root);
    } else this.enter(await this.clone!.enterTest(branchName(name)));
    this.testOpen = name;
  }

  /** `passed` null: the test did not run (skipped, todo), and its layer is simply dropped. */
  private async leaveTest(passed: boolean | null): Promise<void> {
    const name = this.testOpen!;
    this.testOpen = null;
    if (!this.layers) {
      const written = this.clone!.testWrites();
      if (passed !== null)
        this.finished.push({ test: name, changes: written.map((path) => ({ path, kind: 'modified', type: 'file' })) });
      this.enter(await this.clone!.leaveTest(passed, process.cwd()));
      return;
    }
    if (passed !== null) this.finished.push({ test: name, changes: await this.layers.changes() });
    this.record(await this.layers.finish(name, { ...this.ending(passed), spare: true }));
    this.enter(this.options.root);
  }

  private ending(passed: boolean | null): { commit: { root: string; stateDir: string } | null; keep: boolean } {
    return {
      commit: passed === true && this.options.commit ? this.commitView : null,
      keep: passed === false && this.options.keep === 'on-failure',
    };
  }

  private record(outcome: LayerOutcome): void {
    if (outcome.kind === 'kept') this.kept.push(outcome.path);
  }

  private explain(errors: unknown[]): void {
    // Paths are relative to where the test saw the project: the root (sandbox) or its clone.
    explainRollback(errors, this.finished, { root: this.view, cwd: process.cwd() });
  }

  /** Ends the file's branch (sandbox): committed, kept or dropped, as its tests went. */
  private async leaveFile(): Promise<void> {
    if (!this.fileOpen || !this.layers) return;
    this.fileOpen = false;
    if (this.testOpen !== null) await this.leaveTest(false);
    this.record(await this.layers.finish(`file ${this.testPath}`, this.ending(this.failures === 0)));
    this.enter(this.options.root);
    await this.layers.settled();
  }

  async teardown(): Promise<void> {
    try {
      if (this.layers) await this.leaveFile();
      else if (this.fileOpen) {
        if (this.testOpen !== null) await this.leaveTest(false);
        this.fileOpen = false;
        this.kept.push(...(await this.clone!.leaveFile(this.failures === 0, process.cwd())));
      }
      if (this.kept.length > 0) {
        notice(`jest-environment-branching: kept for inspection (keep: 'on-failure'): ${this.kept.join(', ')}`, {
          everyWorker: true,
        });
      }
    } finally {
      this.restore();
    }
  }

  /** Points the cwd of this process and of the test's `process` at the branch. */
  private enter(view: string): void {
    this.view = view;
    const cwd = this.cwdIn(view);
    // The same path may now name another mount: chdir re-resolves it. The test's own `process`
    // object caches its cwd (graceful-fs keeps process.cwd), hence the second call.
    process.chdir(cwd);
    this.env.global.process?.chdir?.(cwd);
  }

  private cwdIn(view: string): string {
    const base = this.saved?.cwd ?? process.cwd();
    const rel = relative(this.options.root, base);
    if (rel === '') return view;
    if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      if (this.clone) {
        notice(
          `jest-environment-branching: the cwd ${base} is outside the branched root ${this.options.root}, so in fallback mode writes to relative paths are NOT isolated either; run Jest from inside the root or set testEnvironmentOptions.branching.root`,
        );
      }
      return base;
    }
    return `${view}${sep}${rel}`;
  }

  private setEnv(name: string, value: string | undefined): void {
    const envs = [process.env, this.env.global.process?.env].filter(Boolean) as Record<string, string | undefined>[];
    for (const env of envs) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
  }

  private restore(): void {
    if (!this.saved) return;
    process.chdir(this.saved.cwd);
    this.env.global.process?.chdir?.(this.saved.cwd);
    if (this.clone) this.setEnv('TMPDIR', this.saved.tmpdir);
  }
}
