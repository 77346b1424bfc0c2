import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { ArgumentError, isBranchingError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { Workspace } from '../core/workspace.ts';
import { diffStat } from './diffstat.ts';
import { SandboxExecutor, type SuiteExecutor } from './executor.ts';
import {
  applyCandidate,
  type Candidate,
  type CandidateKind,
  type PreparedCandidate,
  prepareCandidates,
} from './patch.ts';
import { type ResolvedTest, resolveTest, runSuite, type SuiteRun, type TestSpec } from './suite-run.ts';
import { failingAtBaseline, judge } from './verdict.ts';

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
  /** Process group of its suite run (gone once the run is over). */
  pgid: number | null;
  /** The branch directory, when kept (`keep: true`). */
  branchDir: string | null;
}

export interface BaselineResult {
  state: 'queued' | 'running' | 'done';
  counts: { passed: number; failed: number; skipped: number } | null;
  /** Test ids that fail on the untouched tree. */
  failing: string[];
  durationMs: number | null;
  pgid: number | null;
}

export type ProgressEvent =
  | { type: 'baseline'; baseline: BaselineResult }
  | { type: 'candidate'; candidate: CandidateResult };

export interface SpeculateOptions {
  /** A Workspace, or the project's path (then opened, and closed at the end). */
  workspace: Workspace | string;
  candidates: Candidate[];
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
  /** How suites are executed (default: a process group per run). */
  executor?: SuiteExecutor;
}

export interface BestOfOptions extends Omit<SpeculateOptions, 'firstWins'> {
  /** Higher is better; default: the number of passing tests. Ties: fewer changed lines, then the faster run. */
  score?: (candidate: CandidateResult) => number;
}

export interface SpeculateOutcome {
  mode: 'first-wins' | 'best-of';
  workspace: string;
  framework: ResolvedTest['kind'];
  winner: CandidateResult | null;
  /** A winner was committed into the workspace (false under dryRun). */
  committed: boolean;
  dryRun: boolean;
  mustPass: string[];
  baseline: BaselineResult;
  candidates: CandidateResult[];
  timings: {
    totalMs: number;
    /** From the start until the first candidate was known to pass. */
    firstPassMs: number | null;
    /** From the start until the winner's commit finished. */
    commitMs: number | null;
  };
}

/** Runs every candidate in its own branch against the suite; commits the first that passes (firstWins) or the best. */
export async function speculate(options: SpeculateOptions): Promise<SpeculateOutcome> {
  const firstWins = options.firstWins ?? true;
  return new Speculation(options, firstWins ? 'first-wins' : 'best-of', undefined).run();
}

/** Runs every candidate to the end, then commits the passing one with the best score. */
export async function bestOf(options: BestOfOptions): Promise<SpeculateOutcome> {
  if (options.score !== undefined && typeof options.score !== 'function') {
    throw new ArgumentError('score must be a function (candidate) => number', { argument: 'score' });
  }
  return new Speculation(options, 'best-of', options.score).run();
}

function checkOptions(options: SpeculateOptions): void {
  if (options === null || typeof options !== 'object')
    throw new ArgumentError('options must be an object', { argument: 'options' });
  const { maxParallel, timeout, mustPass } = options;
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
}

function errorInfo(err: unknown): ErrorInfo {
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

/** Stops the losers: aborting it kills every suite in flight and cancels what has not started. */
class StopSignal {
  readonly controller = new AbortController();
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  stop(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}

class Speculation {
  private readonly start = performance.now();
  private readonly stopper = new StopSignal();
  private readonly executor: SuiteExecutor;
  private readonly candidates: PreparedCandidate[];
  private readonly results: CandidateResult[];
  private readonly baseline: BaselineResult = {
    state: 'queued',
    counts: null,
    failing: [],
    durationMs: null,
    pgid: null,
  };
  private readonly openBranches = new Map<number, Branch>();
  private test!: ResolvedTest;
  private ws!: Workspace;
  private baselineRun!: Promise<SuiteRun>;
  private mustPass: string[] = [];
  private leader: CandidateResult | null = null;
  private committed = false;
  private firstPassMs: number | null = null;
  private commitMs: number | null = null;
  private fatal: unknown = null;

  constructor(
    private readonly options: SpeculateOptions,
    private readonly mode: 'first-wins' | 'best-of',
    private readonly score: ((c: CandidateResult) => number) | undefined,
  ) {
    checkOptions(options);
    this.candidates = prepareCandidates(options.candidates);
    this.executor = options.executor ?? new SandboxExecutor();
    this.results = this.candidates.map((c) => ({
      index: c.index,
      name: c.name,
      kind: c.kind,
      state: 'queued',
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
      pgid: null,
      branchDir: null,
    }));
  }

  async run(): Promise<SpeculateOutcome> {
    const ownsWorkspace = typeof this.options.workspace === 'string';
    this.ws = await this.openWorkspace();
    const userSignal = this.options.signal;
    const onUserAbort = () => this.stopper.stop(userSignal?.reason);
    try {
      this.test = resolveTest(this.options.test, this.ws.path);
      if (userSignal?.aborted) throw userSignal.reason;
      userSignal?.addEventListener('abort', onUserAbort, { once: true });
      this.emitBaseline();
      for (const r of this.results) this.emit(r);
      await this.runAll();
      if (userSignal?.aborted) throw userSignal.reason;
      if (this.fatal) throw this.fatal;
      if (this.mode === 'best-of' && this.leader) await this.crown(this.leader);
      return this.outcome();
    } finally {
      userSignal?.removeEventListener('abort', onUserAbort);
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

  /** The baseline and the candidates share one pool of `maxParallel` slots, baseline first. */
  private async runAll(): Promise<void> {
    let resolveBaseline!: (run: SuiteRun) => void;
    let rejectBaseline!: (err: unknown) => void;
    this.baselineRun = new Promise<SuiteRun>((res, rej) => {
      resolveBaseline = res;
      rejectBaseline = rej;
    });
    this.baselineRun.catch(() => {}); // awaited by candidates; the error itself is reported by fatal
    const jobs: Array<() => Promise<void>> = [
      () => this.runBaseline().then(resolveBaseline, rejectBaseline),
      ...this.candidates.map((c) => () => this.runCandidate(c)),
    ];
    const limit = Math.min(this.options.maxParallel ?? availableParallelism(), jobs.length);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) await jobs[next++]();
    };
    await Promise.all(Array.from({ length: limit }, worker));
  }

  private async runBaseline(): Promise<SuiteRun> {
    this.baseline.state = 'running';
    this.emitBaseline();
    try {
      const run = await this.inBranch(`baseline-${randomBytes(3).toString('hex')}`, (b) =>
        runSuite({
          test: this.test,
          executor: this.executor,
          branchDir: b.path,
          workspaceDir: this.ws.path,
          timeoutMs: this.options.timeout,
          signal: this.stopper.signal,
          label: 'baseline',
          onStart: ({ pgid }) => {
            this.baseline.pgid = pgid;
            this.emitBaseline();
          },
        }),
      );
      this.baseline.state = 'done';
      this.baseline.counts = run.counts;
      this.baseline.failing = failingAtBaseline(run.tests);
      this.baseline.durationMs = run.exit.durationMs;
      this.mustPass = this.options.mustPass ?? this.baseline.failing;
      this.emitBaseline();
      return run;
    } catch (err) {
      // Without a baseline no candidate can be judged: stop everything and report why.
      if (!this.stopper.signal.aborted) this.fatal = err;
      this.stopper.stop(err);
      throw err;
    }
  }

  /** Runs `fn` in a throwaway branch of the workspace, aborted afterwards. */
  private async inBranch<T>(name: string, fn: (b: Branch) => Promise<T>): Promise<T> {
    const b = await this.ws.branch(name, { onSuccess: null, onError: null });
    try {
      return await fn(b);
    } finally {
      await b.abort();
    }
  }

  private async runCandidate(c: PreparedCandidate): Promise<void> {
    const r = this.results[c.index];
    if (this.stopper.signal.aborted) return this.settle(r, 'cancelled');
    let branch: Branch | null = null;
    try {
      this.update(r, 'applying');
      branch = await this.ws.branch(`candidate-${c.index}-${randomBytes(3).toString('hex')}`, {
        onSuccess: null,
        onError: null,
      });
      this.openBranches.set(c.index, branch);
      await applyCandidate(c, branch.path);
      const stat = await diffStat(this.ws, branch);
      r.changedFiles = stat.files;
      r.changedLines = stat.lines;
      this.throwIfStopped();
      this.update(r, 'running');
      // The suite runs in a child branch, so whatever it writes (caches, reports) never reaches a commit.
      const testBranch = branch;
      const run = await this.inBranchOf(testBranch, (t) =>
        runSuite({
          test: this.test,
          executor: this.executor,
          branchDir: t.path,
          workspaceDir: this.ws.path,
          timeoutMs: this.options.timeout,
          signal: this.stopper.signal,
          label: `candidate ${c.name}`,
          onStart: ({ pgid }) => {
            r.pgid = pgid;
            this.emit(r);
          },
        }),
      );
      r.durationMs = run.exit.durationMs;
      r.counts = run.counts;
      r.failures = [...run.tests.values()]
        .filter((t) => t.status === 'failed')
        .slice(0, 10)
        .map((t) => ({ id: t.id, message: t.message ?? '' }));
      this.update(r, 'judging');
      const baseline = await this.baselineRun;
      const verdict = judge(baseline.tests, run.tests, this.mustPass);
      r.regressions = verdict.regressions;
      r.stillFailing = verdict.stillFailing;
      r.fixed = verdict.fixed;
      if (!verdict.passed) return this.settle(r, 'failed');
      this.firstPassMs ??= performance.now() - this.start;
      if (this.mode === 'first-wins') await this.claimFirstWin(r);
      else await this.considerForBest(r);
    } catch (err) {
      if (this.stopper.signal.aborted && !isBranchingError(err, 'PatchError')) {
        return this.settle(r, 'killed').catch(() => {});
      }
      r.error = errorInfo(err);
      await this.settle(r, isBranchingError(err, 'TimeoutError') ? 'timeout' : 'error').catch(() => {});
      if (!isBranchingError(err) && !this.fatal) {
        // Not a judgement on the candidate (e.g. the disk is full): stop and rethrow.
        this.fatal = err;
        this.stopper.stop(err);
      }
    }
  }

  private async inBranchOf<T>(parent: Branch, fn: (b: Branch) => Promise<T>): Promise<T> {
    const child = await parent.branch('test-run', { onSuccess: null, onError: null });
    try {
      return await fn(child);
    } finally {
      await child.abort();
    }
  }

  private throwIfStopped(): void {
    if (this.stopper.signal.aborted) throw this.stopper.signal.reason;
  }

  private async claimFirstWin(r: CandidateResult): Promise<void> {
    if (this.leader || this.stopper.signal.aborted) return this.settle(r, 'passed');
    this.leader = r;
    // Kill the rest first: their CPUs are better spent on nothing than on losers.
    this.stopper.stop(new Error(`candidate ${r.name} won`));
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

  private outcome(): SpeculateOutcome {
    return {
      mode: this.mode,
      workspace: this.ws.path,
      framework: this.test.kind,
      winner: this.results.find((r) => r.state === 'winner') ?? null,
      committed: this.committed,
      dryRun: this.options.dryRun ?? false,
      mustPass: this.mustPass,
      baseline: this.baseline,
      candidates: this.results,
      timings: { totalMs: performance.now() - this.start, firstPassMs: this.firstPassMs, commitMs: this.commitMs },
    };
  }
}

/** bestOf's order: higher score, then fewer changed lines, then the faster run, then the earlier candidate. */
function outranks(a: CandidateResult, b: CandidateResult): boolean {
  if ((a.score ?? 0) !== (b.score ?? 0)) return (a.score ?? 0) > (b.score ?? 0);
  if ((a.changedLines ?? 0) !== (b.changedLines ?? 0)) return (a.changedLines ?? 0) < (b.changedLines ?? 0);
  if ((a.durationMs ?? 0) !== (b.durationMs ?? 0)) return (a.durationMs ?? 0) < (b.durationMs ?? 0);
  return a.index < b.index;
}
