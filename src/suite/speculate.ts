import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ArgumentError, isBranchingError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { Workspace } from '../core/workspace.ts';
import { CancelScope, Limiter } from '../patterns/engine.ts';
import { BaselineCache, type BaselineRecord, baselineFromReport, uncommittedChanges } from './baseline.ts';
import { diffStat } from './diffstat.ts';
import { type Isolation, SandboxExecutor, type SuiteExecutor, type SuiteExit } from './executor.ts';
import {
  applyCandidate,
  type CandidateKind,
  checkCandidates,
  type PatchCandidate,
  type PreparedCandidate,
  prepareCandidates,
} from './patch.ts';
import {
  type ResolvedTest,
  type RunSuiteOptions,
  resolveTest,
  runSuite,
  type SuiteRun,
  type TestOutcome,
  type TestSpec,
} from './suite-run.ts';
import { countTests } from './test-report.ts';
import { failingAtBaseline, judge, judgeSubset, matchesTest } from './verdict.ts';

export type CandidateState =
  | 'queued'
  | 'applying'
  | 'running'
  | 'judging'
  /** Passed, and committed (or chosen, under dryRun). */
  | 'winner'
  /** Passed, but another candidate won. */
  | 'passed'
  | 'failed'
  /** Did not apply, or the suite crashed or wrote no usable report. */
  | 'error'
  | 'timeout'
  /** Stopped because another candidate won first (firstWins) or the caller aborted. */
  | 'killed'
  /** Never started: a winner was found first. */
  | 'cancelled';

export interface ErrorInfo {
  name: string;
  code: string;
  message: string;
}

export interface CandidateResult {
  index: number;
  name: string;
  kind: CandidateKind;
  state: CandidateState;
  /**
   * The last stage whose results are in `counts`: `related` (only the test files related to the
   * change: a candidate rejected early, or killed before its full suite finished), `full`, or null
   * (no suite finished).
   */
  stage: 'related' | 'full' | null;
  counts: { passed: number; failed: number; skipped: number } | null;
  /** Passed at baseline, not any more. */
  regressions: string[];
  /** mustPass entries that do not pass. */
  stillFailing: string[];
  /** Failed at baseline, pass now. */
  fixed: string[];
  /** Failing tests with their first message (at most 10). */
  failures: Array<{ id: string; message: string }>;
  changedFiles: string[];
  changedLines: number | null;
  /** Wall time of this candidate's suite run. */
  durationMs: number | null;
  score: number | null;
  error: ErrorInfo | null;
  /** Whether its suites ran in the sandbox, and why (not). */
  isolation: Isolation;
  /** Process group of its suite run (gone once the run is over). */
  pgid: number | null;
  /** The branch directory, when kept (`keep: true`). */
  branchDir: string | null;
}

export interface BaselineResult {
  state: 'queued' | 'running' | 'done';
  /** `run`: run now; `cache`: an earlier run on the identical workspace content; `report`: baselineFrom. */
  source: 'run' | 'cache' | 'report';
  counts: { passed: number; failed: number; skipped: number } | null;
  /** Test ids that fail on the untouched tree. */
  failing: string[];
  durationMs: number | null;
  pgid: number | null;
}

export type ProgressEvent =
  | { type: 'baseline'; baseline: BaselineResult }
  | { type: 'candidate'; candidate: CandidateResult }
  /** Said once: what the run does differently than one might assume (a dirty tree, an uncached baseline). */
  | { type: 'notice'; message: string };

export interface SuiteSpeculateOptions {
  /** A Workspace, or the project's path (then opened, and closed at the end). */
  workspace: Workspace | string;
  candidates: PatchCandidate[];
  test: TestSpec;
  /** Commit the first candidate that passes and kill the rest (default true). */
  firstWins?: boolean;
  /** Suite runs at once, the baseline included (default: the number of CPUs). */
  maxParallel?: number;
  /** Per suite run, in ms: a run still going then is killed with its whole process tree. */
  timeout?: number;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Tests that must pass (ids or trailing names); default: those failing at baseline. */
  mustPass?: string[];
  /** Pick the winner but do not commit it. */
  dryRun?: boolean;
  /** Leave losing branches (and the winner's, under dryRun) in place for inspection; `branching gc` reclaims them. */
  keep?: boolean;
  /** How suites are executed (default: the sandbox, else a process group per run). */
  executor?: SuiteExecutor;
  /** Run the test command in this subdirectory of the workspace ('/'-separated), e.g. a monorepo's package. */
  cwd?: string;
  /** Judge against this Jest-shaped report of the untouched workspace instead of running a baseline. */
  baselineFrom?: string;
  /** Reuse the baseline of an earlier run on the identical workspace content (default true; git work trees only). */
  cacheBaseline?: boolean;
  /** Run the tests related to the change before the full suite, rejecting early (default true). */
  staged?: boolean;
}

export interface BestOfOptions extends Omit<SuiteSpeculateOptions, 'firstWins'> {
  /** Higher is better; default: the number of passing tests. Ties: fewer changed lines, then the faster run. */
  score?: (candidate: CandidateResult) => number;
}

export interface SpeculateOutcome {
  mode: 'first-wins' | 'best-of';
  workspace: string;
  /** The subdirectory the test command ran in ('' for the workspace). */
  cwd: string;
  framework: ResolvedTest['kind'];
  winner: CandidateResult | null;
  /** A winner was committed into the workspace (false under dryRun). */
  committed: boolean;
  dryRun: boolean;
  /** `git status` entries under the workspace that every candidate was applied on top of (null: not a git work tree). */
  uncommittedChanges: number | null;
  mustPass: string[];
  baseline: BaselineResult;
  candidates: CandidateResult[];
  timings: {
    totalMs: number;
    /** From the start until the first candidate was known to pass. */
    firstPassMs: number | null;
    /** From the start until the winner's commit finished. */
    commitMs: number | null;
    /** From the moment a first-wins winner was known until the last killed suite's processes were gone. */
    losersGoneMs: number | null;
  };
}

/** Runs every candidate in its own branch against the suite; commits the first that passes (firstWins) or the best. */
export async function speculate(options: SuiteSpeculateOptions): Promise<SpeculateOutcome> {
  const firstWins = options.firstWins ?? true;
  return new Speculation(options, firstWins ? 'first-wins' : 'best-of', undefined).run();
}

/** Runs every survivor of the first stage to the end, then commits the passing one with the best score. */
export async function bestOf(options: BestOfOptions): Promise<SpeculateOutcome> {
  if (options.score !== undefined && typeof options.score !== 'function') {
    throw new ArgumentError('score must be a function (candidate) => number', { argument: 'score' });
  }
  return new Speculation(options, 'best-of', options.score).run();
}

function checkOptions(options: SuiteSpeculateOptions): void {
  if (options === null || typeof options !== 'object')
    throw new ArgumentError('options must be an object', { argument: 'options' });
  const { maxParallel, timeout, mustPass, baselineFrom } = options;
  if (maxParallel !== undefined && !(Number.isInteger(maxParallel) && maxParallel >= 1)) {
    throw new ArgumentError(`maxParallel must be a positive integer; got ${maxParallel}`, { argument: 'maxParallel' });
  }
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && Number.isFinite(timeout))) {
    throw new ArgumentError(`timeout must be a positive number of ms; got ${timeout}`, { argument: 'timeout' });
  }
  if (
    mustPass !== undefined &&
    !(Array.isArray(mustPass) && mustPass.every((m) => typeof m === 'string' && m !== ''))
  ) {
    throw new ArgumentError('mustPass must be an array of test ids or names', { argument: 'mustPass' });
  }
  if (baselineFrom !== undefined && (typeof baselineFrom !== 'string' || baselineFrom === '')) {
    throw new ArgumentError('baselineFrom must be the path of a Jest-shaped JSON report', { argument: 'baselineFrom' });
  }
}

/** The name, code and message of any thrown value, as reports carry them. */
export function errorInfo(err: unknown): ErrorInfo {
  const e = err as { name?: string; code?: string; message?: string };
  return {
    name: e?.name ?? 'Error',
    code: typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN',
    message: e?.message ?? String(err),
  };
}

function defaultScore(c: CandidateResult): number {
  return c.counts?.passed ?? 0;
}

const UNDESCRIBED: Isolation = { sandboxed: false, reason: 'a custom executor that does not describe its isolation' };

/**
 * One speculate/bestOf run. It races candidates with the pattern engine's primitives (a CancelScope
 * that kills every suite in flight, a Limiter for the suite slots) but not with its candidate
 * lifecycle (`runCandidate`: one call in one branch, then a verdict): a patch candidate is judged in
 * two stages against a baseline that runs beside it, gives its slot back while it waits for that
 * baseline, and takes one again for the full suite; a verdict can only be reached by comparing
 * with the baseline, and bestOf breaks ties on changed lines and run time.
 */
class Speculation {
  private readonly start = performance.now();
  private readonly executor: SuiteExecutor;
  private readonly candidates: PreparedCandidate[];
  private readonly results: CandidateResult[];
  private readonly baseline: BaselineResult = {
    state: 'queued',
    source: 'run',
    counts: null,
    failing: [],
    durationMs: null,
    pgid: null,
  };
  private readonly openBranches = new Map<number, Branch>();
  private scope!: CancelScope;
  private slots!: Limiter;
  private test!: ResolvedTest;
  private ws!: Workspace;
  private cache: BaselineCache | null = null;
  private baselineRecord: BaselineRecord | null = null;
  private baselineReady!: Promise<BaselineRecord>;
  private uncommitted: number | null = null;
  private mustPass: string[] = [];
  private leader: CandidateResult | null = null;
  private committed = false;
  private firstPassMs: number | null = null;
  private commitMs: number | null = null;
  private stoppedAt: number | null = null;
  private losersGoneMs: number | null = null;
  private fatal: unknown = null;

  constructor(
    private readonly options: SuiteSpeculateOptions,
    private readonly mode: 'first-wins' | 'best-of',
    private readonly score: ((c: CandidateResult) => number) | undefined,
  ) {
    checkOptions(options);
    this.candidates = prepareCandidates(options.candidates);
    this.executor = options.executor ?? new SandboxExecutor();
    const isolation = this.executor.isolation?.() ?? UNDESCRIBED;
    this.results = this.candidates.map((c) => ({
      index: c.index,
      name: c.name,
      kind: c.kind,
      state: 'queued',
      stage: null,
      counts: null,
      regressions: [],
      stillFailing: [],
      fixed: [],
      failures: [],
      changedFiles: [],
      changedLines: null,
      durationMs: null,
      score: null,
      error: null,
      isolation,
      pgid: null,
      branchDir: null,
    }));
  }

  async run(): Promise<SpeculateOutcome> {
    const ownsWorkspace = typeof this.options.workspace === 'string';
    this.ws = await this.openWorkspace();
    try {
      const runnable = await this.prepare();
      if (this.options.signal?.aborted) throw this.options.signal.reason;
      this.scope = new CancelScope(this.options.signal);
      this.slots = new Limiter(this.options.maxParallel ?? availableParallelism());
      this.emitBaseline();
      for (const r of this.results) this.emit(r);
      this.baselineReady = this.obtainBaseline();
      this.baselineReady.catch(() => {}); // awaited by candidates; the error itself is reported by fatal
      await Promise.all([this.baselineReady.catch(() => {}), ...runnable.map((c) => this.runCandidate(c))]);
      if (this.scope.kind === 'signal') throw this.scope.reason;
      if (this.fatal) throw this.fatal;
      if (this.mode === 'best-of' && this.leader) await this.crown(this.leader);
      return this.outcome();
    } finally {
      this.scope?.dispose();
      await this.releaseBranches();
      if (ownsWorkspace && !this.options.keep) await this.ws.close();
    }
  }

  private async openWorkspace(): Promise<Workspace> {
    const { workspace } = this.options;
    if (typeof workspace === 'string') return Workspace.open(workspace);
    if (workspace instanceof Workspace) return workspace;
    throw new ArgumentError('workspace must be a Workspace or a path', { argument: 'workspace' });
  }

  /**
   * Everything that can be refused is refused before any branch exists or anything runs: the test
   * command, candidates that do not apply (all of them: an ArgumentError naming each reason), a
   * baseline report that cannot be read. Returns the candidates worth running.
   */
  private async prepare(): Promise<PreparedCandidate[]> {
    this.test = resolveTest(this.options.test, this.ws.path, this.options.cwd ?? '');
    const failures = await checkCandidates(this.candidates, this.ws.path);
    if (failures.size === this.candidates.length) {
      const reasons = [...failures.values()].map((e) => `  ${e.message}`).join('\n');
      throw new ArgumentError(`no candidate applies to ${this.ws.path}:\n${reasons}`, {
        argument: 'candidates',
        code: 'ERR_SPECULATE_NOTHING_APPLIES',
      });
    }
    for (const [index, err] of failures) Object.assign(this.results[index], { state: 'error', error: errorInfo(err) });
    this.uncommitted = await uncommittedChanges(this.ws.path);
    if (this.uncommitted) this.notice(`candidates are applied on top of ${this.uncommitted} uncommitted changes`);
    await this.loadKnownBaseline();
    return this.candidates.filter((c) => !failures.has(c.index));
  }

  private async loadKnownBaseline(): Promise<void> {
    const runDir = join(this.ws.path, this.test.cwd);
    if (this.options.baselineFrom !== undefined) {
      this.baselineRecord = await baselineFromReport(this.options.baselineFrom, runDir);
      this.baseline.source = 'report';
      return;
    }
    if (this.options.cacheBaseline === false) return;
    this.cache = await BaselineCache.open(this.ws.stateDir, this.ws.path, this.test);
    if (!this.cache) {
      this.notice('the baseline is not cached: the workspace is not a git work tree, so its content has no tree hash');
      return;
    }
    this.baselineRecord = await this.cache.read();
    if (this.baselineRecord) this.baseline.source = 'cache';
  }

  /** The baseline from a report or the cache, or else a run of its own in its own branch, beside the candidates. */
  private async obtainBaseline(): Promise<BaselineRecord> {
    try {
      const record = this.baselineRecord ?? (await this.runBaseline());
      this.baselineRecord = record;
      this.baseline.state = 'done';
      this.baseline.counts = record.counts;
      this.baseline.failing = failingAtBaseline(record.tests);
      this.baseline.durationMs = record.durationMs;
      this.mustPass = this.options.mustPass ?? this.baseline.failing;
      this.emitBaseline();
      return record;
    } catch (err) {
      // Without a baseline no candidate can be judged: stop everything and report why.
      if (!this.scope.cancelled) this.fatal = err;
      this.scope.cancel('stopped', err);
      throw err;
    }
  }

  private async runBaseline(): Promise<BaselineRecord> {
    if (!(await this.slots.acquire(this.scope.signal))) throw this.scope.reason;
    try {
      this.baseline.state = 'running';
      this.emitBaseline();
      const run = await this.inBranchOf(this.ws, `baseline-${randomBytes(3).toString('hex')}`, (b) =>
        this.suite(b, 'baseline', {
          onStart: ({ pgid }) => {
            this.baseline.pgid = pgid;
            this.emitBaseline();
          },
        }),
      );
      const record = { tests: run.tests, counts: run.counts, durationMs: run.exit.durationMs };
      await this.cache?.write(record).catch((err) => this.notice(`the baseline was not cached: ${err.message}`));
      return record;
    } finally {
      this.slots.release();
    }
  }

  private suite(branch: Branch, label: string, extra: Partial<RunSuiteOptions> = {}): Promise<SuiteRun> {
    return runSuite({
      test: this.test,
      executor: this.executor,
      branchDir: branch.path,
      workspaceDir: this.ws.path,
      timeoutMs: this.options.timeout,
      signal: this.scope.signal,
      label,
      ...extra,
    });
  }

  /** Runs `fn` in a throwaway branch of `parent`, aborted afterwards: what a suite writes never reaches a commit. */
  private async inBranchOf<T>(parent: Workspace | Branch, name: string, fn: (b: Branch) => Promise<T>): Promise<T> {
    const child = await parent.branch(name, { onSuccess: null, onError: null });
    try {
      return await fn(child);
    } finally {
      await child.abort();
    }
  }

  private async runCandidate(c: PreparedCandidate): Promise<void> {
    const r = this.results[c.index];
    let started = false;
    try {
      const { branch, first } = await this.inSlot(async () => {
        started = true;
        const branch = await this.applyInBranch(c, r);
        return { branch, first: this.staged ? await this.runStage(c, r, branch, this.relatedTo(r)) : null };
      });
      if (this.staged && !(await this.survivesFirstStage(c, r, branch, first))) return this.settle(r, 'failed');
      const full = (await this.inSlot(() => this.runStage(c, r, branch, null))) as SuiteRun;
      await this.decide(r, full);
    } catch (err) {
      if (!started && this.scope.cancelled) return this.settle(r, 'cancelled');
      await this.recordFailure(r, err);
    }
  }

  /** Frameworks only: a plain command has no handle on which tests run. */
  private get staged(): boolean {
    return this.options.staged !== false && this.test.kind !== 'command';
  }

  /** Runs `fn` in one of the maxParallel suite slots; throws the scope's reason when cancelled while waiting. */
  private async inSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (!(await this.slots.acquire(this.scope.signal))) throw this.scope.reason;
    try {
      return await fn();
    } finally {
      this.slots.release();
    }
  }

  private async applyInBranch(c: PreparedCandidate, r: CandidateResult): Promise<Branch> {
    this.update(r, 'applying');
    const branch = await this.ws.branch(`candidate-${c.index}-${randomBytes(3).toString('hex')}`, {
      onSuccess: null,
      onError: null,
    });
    this.openBranches.set(c.index, branch);
    await applyCandidate(c, branch.path);
    const stat = await diffStat(this.ws, branch);
    r.changedFiles = stat.files;
    r.changedLines = stat.lines;
    if (this.scope.cancelled) throw this.scope.reason;
    return branch;
  }

  /**
   * Stage 1 ran the test files related to what the candidate changed (and those of the mustPass
   * tests, when the baseline was already known). Judged against the baseline, without a slot while
   * waiting for it: a test that passed at baseline and fails, or a failing mustPass test, rejects the
   * candidate. The files of mustPass tests it did not cover run next, still before the full suite.
   * Passing here proves nothing; only the full suite can pass a candidate.
   */
  private async survivesFirstStage(
    c: PreparedCandidate,
    r: CandidateResult,
    branch: Branch,
    first: SuiteRun | null,
  ): Promise<boolean> {
    const baseline = await this.baselineReady;
    if (first && !this.judgeStage(r, baseline, first)) return false;
    const ran = new Set([...(first?.tests.values() ?? [])].map((t) => t.file));
    const uncovered = [...this.mustPassFiles(baseline)].filter((f) => !ran.has(f));
    if (uncovered.length === 0) return true;
    const testFiles = this.inWorkspace(uncovered);
    const second = await this.inSlot(() => this.runStage(c, r, branch, { changed: [], testFiles }));
    return second === null || this.judgeStage(r, baseline, second, first);
  }

  private judgeStage(r: CandidateResult, baseline: BaselineRecord, run: SuiteRun, earlier?: SuiteRun | null): boolean {
    this.update(r, 'judging');
    const tests = new Map([...(earlier?.tests ?? []), ...run.tests]);
    const verdict = judgeSubset(baseline.tests, tests, this.mustPass);
    r.counts = countTests(tests.values());
    r.regressions = verdict.regressions;
    r.stillFailing = verdict.stillFailing;
    r.fixed = verdict.fixed;
    return verdict.passed;
  }

  /** The files (relative to where the suite runs) holding baseline tests that a mustPass entry names. */
  private mustPassFiles(baseline: BaselineRecord): Set<string> {
    const files = new Set<string>();
    for (const t of baseline.tests.values()) {
      if (t.file && this.mustPass.some((entry) => matchesTest(t.id, entry))) files.add(t.file);
    }
    return files;
  }

  /** Test files as the suite names them (relative to cwd) made relative to the workspace. */
  private inWorkspace(files: Iterable<string>): string[] {
    return [...files].map((f) => (this.test.cwd ? `${this.test.cwd}/${f}` : f));
  }

  /** What stage 1 relates to: the changed files, and the mustPass tests' files once the baseline is known. */
  private relatedTo(r: CandidateResult): RelatedFiles {
    const known = this.baseline.state === 'done' ? this.baselineRecord : null;
    return { changed: r.changedFiles, testFiles: known ? this.inWorkspace(this.mustPassFiles(known)) : [] };
  }

  /**
   * One suite run of the candidate in a child branch: the full suite (`related` null), or only the
   * tests related to some files; a related run that found no test returns null.
   */
  private async runStage(
    c: PreparedCandidate,
    r: CandidateResult,
    branch: Branch,
    related: RelatedFiles | null,
  ): Promise<SuiteRun | null> {
    const files = related && existingFiles(related, branch);
    if (files?.length === 0) return null;
    this.update(r, 'running');
    const run = await this.inBranchOf(branch, 'test-run', (t) =>
      this.suite(t, `candidate ${c.name}`, {
        related: files?.map((f) => join(this.executor.projectPath(t.path, this.ws.path), f)),
        onStart: ({ pgid }) => {
          r.pgid = pgid;
          this.emit(r);
        },
        onExit: (exit) => this.noteLoserGone(exit),
        // Killed by a winner, a timeout or the caller: what it had finished still shows.
        onKilled: (finished) => this.noteResults(r, related ? 'related' : 'full', finished),
      }),
    );
    if (related && run.counts.passed + run.counts.failed + run.counts.skipped === 0) return null;
    r.durationMs = (r.durationMs ?? 0) + run.exit.durationMs;
    this.noteResults(r, related ? 'related' : 'full', run.tests.values(), run.counts);
    return run;
  }

  /** `counts` defaults to the tests' own; a plain command's run counts its exit status as one test. */
  private noteResults(
    r: CandidateResult,
    stage: 'related' | 'full',
    tests: Iterable<TestOutcome>,
    counts?: CandidateResult['counts'],
  ): void {
    const list = [...tests];
    r.stage = stage;
    r.counts = counts ?? countTests(list);
    r.failures = list
      .filter((t) => t.status === 'failed')
      .slice(0, 10)
      .map((t) => ({ id: t.id, message: t.message ?? '' }));
  }

  private noteLoserGone(exit: SuiteExit): void {
    if (exit.aborted && this.stoppedAt !== null) {
      this.losersGoneMs = Math.max(this.losersGoneMs ?? 0, performance.now() - this.stoppedAt);
    }
  }

  /** The full suite's verdict against the baseline; a pass commits (firstWins) or competes (bestOf). */
  private async decide(r: CandidateResult, full: SuiteRun): Promise<void> {
    this.update(r, 'judging');
    const baseline = await this.baselineReady;
    const verdict = judge(baseline.tests, full.tests, this.mustPass);
    r.regressions = verdict.regressions;
    r.stillFailing = verdict.stillFailing;
    r.fixed = verdict.fixed;
    if (!verdict.passed) return this.settle(r, 'failed');
    this.firstPassMs ??= performance.now() - this.start;
    if (this.mode === 'first-wins') await this.claimFirstWin(r);
    else await this.considerForBest(r);
  }

  private async recordFailure(r: CandidateResult, err: unknown): Promise<void> {
    if (this.scope.cancelled && !isBranchingError(err, 'PatchError')) {
      return this.settle(r, 'killed').catch(() => {});
    }
    r.error = errorInfo(err);
    await this.settle(r, isBranchingError(err, 'TimeoutError') ? 'timeout' : 'error').catch(() => {});
    if (!isBranchingError(err) && !this.fatal) {
      // Not a judgement on the candidate (e.g. the disk is full): stop and rethrow.
      this.fatal = err;
      this.scope.cancel('stopped', err);
    }
  }

  private async claimFirstWin(r: CandidateResult): Promise<void> {
    if (this.leader || this.scope.cancelled) return this.settle(r, 'passed');
    this.leader = r;
    // Kill the rest first: their CPUs are better spent on nothing than on losers.
    this.stoppedAt = performance.now();
    this.scope.cancel('lost', new Error(`candidate ${r.name} won`));
    await this.crown(r);
  }

  private async considerForBest(r: CandidateResult): Promise<void> {
    r.score = (this.score ?? defaultScore)(r);
    const previous = this.leader;
    if (previous && !outranks(r, previous)) return this.settle(r, 'passed');
    this.leader = r;
    this.update(r, 'passed');
    if (previous) await this.settle(previous, 'passed');
  }

  /** Commits the winner's branch (atomic: the core's journal) unless this is a dry run. */
  private async crown(r: CandidateResult): Promise<void> {
    const branch = this.openBranches.get(r.index);
    if (!branch) throw new Error(`internal: the winner's branch ${r.index} is gone`);
    if (!this.options.dryRun) {
      await branch.commit();
      this.openBranches.delete(r.index);
      this.committed = true;
    }
    this.commitMs = performance.now() - this.start;
    this.update(r, 'winner');
  }

  /** A final state for a candidate that did not win: its branch goes now (disk), unless kept for inspection. */
  private async settle(r: CandidateResult, state: CandidateState): Promise<void> {
    this.update(r, state);
    const branch = this.openBranches.get(r.index);
    if (!branch || this.options.keep) return;
    this.openBranches.delete(r.index);
    await branch.abort();
  }

  private async releaseBranches(): Promise<void> {
    for (const [index, branch] of this.openBranches) {
      if (this.options.keep && !this.options.signal?.aborted) {
        this.results[index].branchDir = branch.path;
        continue;
      }
      await branch.abort().catch(() => {});
    }
    this.openBranches.clear();
  }

  private update(r: CandidateResult, state: CandidateState): void {
    r.state = state;
    this.emit(r);
  }

  private emit(r: CandidateResult): void {
    this.options.onProgress?.({ type: 'candidate', candidate: structuredClone(r) });
  }

  private emitBaseline(): void {
    this.options.onProgress?.({ type: 'baseline', baseline: structuredClone(this.baseline) });
  }

  private notice(message: string): void {
    this.options.onProgress?.({ type: 'notice', message });
  }

  private outcome(): SpeculateOutcome {
    return {
      mode: this.mode,
      workspace: this.ws.path,
      cwd: this.test.cwd,
      framework: this.test.kind,
      winner: this.results.find((r) => r.state === 'winner') ?? null,
      committed: this.committed,
      dryRun: this.options.dryRun ?? false,
      uncommittedChanges: this.uncommitted,
      mustPass: this.mustPass,
      baseline: this.baseline,
      candidates: this.results,
      timings: {
        totalMs: performance.now() - this.start,
        firstPassMs: this.firstPassMs,
        commitMs: this.commitMs,
        losersGoneMs: this.losersGoneMs,
      },
    };
  }
}

/** Files a related run starts from, relative to the workspace: changed files and test files. */
interface RelatedFiles {
  changed: string[];
  testFiles: string[];
}

/** The files of `related` that exist in the candidate's branch, relative to the workspace. */
function existingFiles(related: RelatedFiles, branch: Branch): string[] {
  return [...related.changed, ...related.testFiles].filter((f) => existsSync(join(branch.path, f)));
}

/** bestOf's order: higher score, then fewer changed lines, then the faster run, then the earlier candidate. */
function outranks(a: CandidateResult, b: CandidateResult): boolean {
  if ((a.score ?? 0) !== (b.score ?? 0)) return (a.score ?? 0) > (b.score ?? 0);
  if ((a.changedLines ?? 0) !== (b.changedLines ?? 0)) return (a.changedLines ?? 0) < (b.changedLines ?? 0);
  if ((a.durationMs ?? 0) !== (b.durationMs ?? 0)) return (a.durationMs ?? 0) < (b.durationMs ?? 0);
  return a.index < b.index;
}
