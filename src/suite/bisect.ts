import { realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { Workspace } from '../core/workspace.ts';
import { judgeRun, narrowCommand, parseTarget, type RunVerdict, type TargetTest } from './bisect-evidence.ts';
import { checkoutInBranch, historyBetween, repositoryRoot, resolveCommit } from './bisect-git.ts';
import { type BisectModelOptions, NoisyBisector } from './bisect-model.ts';
import { SetupCache, type SetupResult } from './bisect-setup.ts';
import {
  inThrowawayBranch,
  type RunRecord,
  runInBranch,
  sessionDir,
  validateCommand,
  validateCount,
  validateFraction,
} from './branch-run.ts';
import type { SuiteExecutor } from './executor.ts';
import { ProcessGroupExecutor } from './executor.ts';
import { defaultExecutor } from './flaky-exec.ts';
import { type FormatChoice, parseFormat, type ResultFormat, resolveFormat } from './flaky-results.ts';

export interface BisectOptions {
  /** A path inside the repository (default: the current directory). Commands run in the same subdirectory. */
  repository?: string;
  good: string;
  bad: string;
  /** The test command. A run fails when a test in its report failed (see `format`). */
  command: string[];
  /**
   * Judge only this test: the id `branching flaky` reports (`file > name`), a test file, or a name
   * filter. Vitest and Jest commands then run only it (`FILE -t NAME`).
   */
  test?: string;
  /** Where per-test results come from (default `auto`); `exit-code`: the exit status decides, 125 skips. */
  format?: FormatChoice;
  /** Stop when the best culprit's probability reaches this. Default 0.95. */
  confidence?: number;
  /** The most runs to spend, all revisions together, skipped runs included. Default 300. */
  runs?: number;
  /** Runs at once, each chosen as if the ones in flight had come out as they most probably will. Default 1. */
  parallel?: number;
  /** Shell command run once per revision before its runs (e.g. `npm ci`); node_modules is cached by lockfile. */
  setup?: string;
  /** Keep the setup cache here (reused across sessions); default: a temporary directory. */
  cacheDir?: string;
  /** The most runs spent on the bad revision waiting for its first failure. Default 60. */
  badRuns?: number;
  /** Probability that a run fails before the culprit. Default 0. */
  epsilon?: number;
  /** The flake rate, if known: weighs the prior as if measured in FLAKE_RATE_WEIGHT runs. */
  flakeRate?: number;
  /** Earlier runs of the flaky test (e.g. from `branching flaky --json`, see flakeEvidenceFromReport). */
  flakeEvidence?: { failed: number; passed: number };
  timeoutMs?: number;
  /** How commands are started (default: a plain process group; a sandbox executor plugs in here). */
  executor?: SuiteExecutor;
  onProgress?: (event: BisectProgress) => void;
}

/** How many runs a `flakeRate` stands for: enough to steer, few enough for the runs to overrule a wrong guess. */
export const FLAKE_RATE_WEIGHT = 20;

export type BisectProgress =
  | { kind: 'notice'; message: string }
  | { kind: 'revision'; index: number; sha: string; setup: SetupResult['how']; ok: boolean }
  | {
      kind: 'run';
      index: number;
      sha: string;
      verdict: RunVerdict['kind'];
      /** Why a skipped run is no evidence. */
      reason?: string;
      /** Tests in this run's report that ran (passed or failed): 1 when the command ran only the target. */
      testsRun: number;
      runs: number;
      best: RevisionProbability;
    };

export interface RevisionProbability {
  index: number;
  sha: string;
  subject: string;
  probability: number;
}

/**
 * - `found`: the culprit's probability reached the confidence asked for.
 * - `skipped-range`: the culprit is one of `possibleCulprits` with that confidence, but the revisions
 *   that would tell them apart gave no evidence (like `git bisect`'s "only skipped commits left").
 * - `inconclusive`: the run budget ran out first; `culprit` is the best guess.
 * - `bad-never-failed`: the bad revision passed every run we gave it; there is no flake to chase.
 * - `no-evidence`: no run at the bad revision gave evidence (see `skipped` for why).
 */
export type BisectStatus = 'found' | 'skipped-range' | 'inconclusive' | 'bad-never-failed' | 'no-evidence';

export interface RevisionTally {
  index: number;
  sha: string;
  passes: number;
  fails: number;
  skips: number;
}

export interface BisectReport {
  status: BisectStatus;
  culprit: RevisionProbability | null;
  /** The most probable culprits, best first. */
  candidates: RevisionProbability[];
  /** With `skipped-range`: the revisions the culprit is among, oldest first. */
  possibleCulprits: RevisionProbability[] | null;
  /** Posterior mean flake rate at the culprit. */
  flakeRate: number | null;
  good: string;
  bad: string;
  commits: number;
  /** The test judged (`--test`), or null for the whole suite. */
  test: string | null;
  /** The command each run executed (narrowed to the test where the framework allows it). */
  command: string[];
  /** Runs made, skipped ones included. */
  runs: number;
  skippedRuns: number;
  revisionsTested: number;
  tested: RevisionTally[];
  /** Revisions never used as evidence: their setup failed, or their runs were skipped. */
  skipped: Array<{ index: number; sha: string; reason: string }>;
  setup: { ran: number; cached: number };
  confidence: number;
  durationMs: number;
}

interface BisectPlan {
  command: string[];
  /** The command runs only the target test. */
  narrowed: boolean;
  format: ResultFormat;
  target: TargetTest | null;
  confidence: number;
  budget: number;
  parallel: number;
  badRuns: number;
  model: BisectModelOptions;
  executor: SuiteExecutor;
}

interface History {
  root: string;
  subdir: string;
  good: string;
  bad: string;
  shas: string[];
  subjects: string[];
}

/**
 * Finds the commit that introduced a flaky failure, by noisy bisection.
 * Every revision is checked out inside its own branch (never in the user's
 * tree), set up once, and every run is a fresh child branch of it.
 */
export async function bisectFlaky(options: BisectOptions): Promise<BisectReport> {
  const started = performance.now();
  const plan = resolvePlan(options);
  const history = await openHistory(options);
  if (plan.target && !plan.narrowed) {
    options.onProgress?.({
      kind: 'notice',
      message: `the command is not vitest or jest, so every run executes all of it; only ${plan.target.spec} is judged`,
    });
  }
  const search = new BisectSearch(plan, history, options);
  await search.open();
  let status: BisectStatus;
  try {
    status = await search.run();
  } finally {
    await search.close();
  }
  return search.report(status, performance.now() - started);
}

function resolvePlan(options: BisectOptions): BisectPlan {
  const command = validateCommand(options.command);
  const format = resolveFormat(parseFormat(options.format), command);
  const target = parseTarget(options.test);
  if (options.setup !== undefined && typeof options.setup !== 'string') {
    throw new ArgumentError('setup must be a shell command string', { argument: 'setup' });
  }
  if (options.flakeRate !== undefined && options.flakeEvidence !== undefined) {
    throw new ArgumentError('give flakeRate or flakeEvidence, not both', { argument: 'flakeRate' });
  }
  const rate = options.flakeRate === undefined ? undefined : validateFraction(options.flakeRate, 'flakeRate', 0);
  const narrowed = target && narrowCommand(command, format, target);
  const confidence = validateFraction(options.confidence, 'confidence', 0.95);
  return {
    command: narrowed ?? command,
    narrowed: Boolean(narrowed),
    format,
    target,
    confidence,
    budget: validateCount(options.runs, 'runs', 1, 300),
    parallel: validateCount(options.parallel, 'parallel', 1, 1),
    badRuns: validateCount(options.badRuns, 'badRuns', 1, 60),
    model: {
      epsilon: options.epsilon,
      confidence,
      thetaEvidence:
        rate === undefined
          ? options.flakeEvidence
          : { failed: rate * FLAKE_RATE_WEIGHT, passed: (1 - rate) * FLAKE_RATE_WEIGHT },
    },
    // A setup step (`npm ci`) writes the user's caches outside the project, which the sandbox's
    // read-only root forbids; bisect therefore runs in plain process groups unless told otherwise.
    executor: options.executor ?? (options.setup ? new ProcessGroupExecutor() : defaultExecutor()),
  };
}

function testsRun(record: RunRecord): number {
  return record.tests.filter((t) => t.kind === 'test' && t.status !== 'skipped').length;
}

async function openHistory(options: BisectOptions): Promise<History> {
  const start = await realpath(options.repository ?? process.cwd()).catch((err) => {
    throw new ArgumentError(`repository ${options.repository} does not exist`, {
      argument: 'repository',
      path: options.repository,
      cause: err,
    });
  });
  const root = await repositoryRoot(start);
  const good = await resolveCommit(root, options.good, 'good');
  const bad = await resolveCommit(root, options.bad, 'bad');
  const revisions = await historyBetween(root, good, bad);
  return {
    root,
    subdir: relative(root, start),
    good,
    bad,
    shas: [good, ...revisions.map((h) => h.sha)],
    subjects: ['(good)', ...revisions.map((h) => h.subject)],
  };
}

/**
 * One bisection session: the model, one set-up branch per revision, and the
 * runs. Up to `parallel` runs are in flight; each new one goes where it adds
 * most to what the runs in flight will say.
 */
class BisectSearch {
  private readonly n: number;
  private readonly model: NoisyBisector;
  private readonly revisions = new Map<number, Promise<Branch | null>>();
  private readonly setupFailed = new Set<number>();
  private readonly skips: number[];
  private readonly skipReasons = new Map<number, string>();
  private ws: Workspace | null = null;
  private session: { path: string; dispose: () => Promise<void> } | null = null;
  private cache: SetupCache | null = null;
  /** Runs counted against the budget (a revision whose setup fails gives its run back). */
  private launched = 0;
  /** Every run's index, unique: fixtures seed their randomness with it. */
  private runCounter = 0;

  constructor(
    private readonly plan: BisectPlan,
    private readonly history: History,
    private readonly options: BisectOptions,
  ) {
    this.n = history.shas.length - 1;
    this.model = new NoisyBisector(this.n, plan.model);
    this.skips = new Array(this.n + 1).fill(0);
  }

  async open(): Promise<void> {
    this.ws = new Workspace(this.history.root, { onNotice: () => {} });
    this.session = await sessionDir('branching-bisect-');
    this.cache = new SetupCache(this.options.cacheDir ?? join(this.session.path, 'cache'));
  }

  async close(): Promise<void> {
    for (const branch of this.revisions.values()) await (await branch.catch(() => null))?.abort();
    await this.ws?.close();
    await this.session?.dispose();
  }

  /** Launches runs until a stop condition holds, keeping up to `parallel` in flight. */
  async run(): Promise<BisectStatus> {
    const inFlight = new Map<Promise<void>, number>();
    for (;;) {
      const stop = this.stopStatus();
      while (stop === null && inFlight.size < this.plan.parallel && this.launched < this.plan.budget) {
        const next = this.model.next(this.unusable(), [...inFlight.values()]);
        if (next === null) break;
        this.launched += 1;
        const done: Promise<void> = this.runAt(next, this.runCounter++).finally(() => inFlight.delete(done));
        inFlight.set(done, next);
      }
      if (inFlight.size === 0) return stop ?? (this.model.totalFails === 0 ? 'no-evidence' : 'inconclusive');
      try {
        await Promise.race(inFlight.keys());
      } catch (err) {
        // Let the other runs finish before their branches are aborted.
        await Promise.allSettled(inFlight.keys());
        throw err;
      }
    }
  }

  private stopStatus(): BisectStatus | null {
    const { model, n } = this;
    if (model.totalFails === 0) {
      const atBad = (model.passes[n] ?? 0) + (this.skips[n] ?? 0);
      if (this.unusable().has(n)) return 'no-evidence';
      return atBad >= this.plan.badRuns ? 'bad-never-failed' : null;
    }
    if (model.best().probability >= this.plan.confidence) return 'found';
    const block = this.bestBlock();
    return block.revisions.length > 1 && block.probability >= this.plan.confidence ? 'skipped-range' : null;
  }

  /**
   * Revisions that give no evidence: their setup failed, or more of their runs were skipped than
   * counted (the bad revision gets two more tries: without it there is nothing to bisect).
   */
  private unusable(): Set<number> {
    const out = new Set(this.setupFailed);
    for (let r = 1; r <= this.n; r++) {
      const evidence = (this.model.passes[r] ?? 0) + (this.model.fails[r] ?? 0);
      if ((this.skips[r] ?? 0) > evidence + (r === this.n ? 2 : 0)) out.add(r);
    }
    return out;
  }

  /**
   * Culprits K = k and K = k + 1 differ only in how revision k behaves; when k gives no evidence
   * they cannot be told apart. The blocks of culprits that can be, with their probability.
   */
  private bestBlock(): { revisions: number[]; probability: number } {
    const posterior = this.model.posterior();
    const unusable = this.unusable();
    let best = { revisions: [] as number[], probability: 0 };
    let current = { revisions: [] as number[], probability: 0 };
    for (let k = 1; k <= this.n; k++) {
      current.revisions.push(k);
      current.probability += posterior[k] as number;
      if (!unusable.has(k) || k === this.n) {
        if (current.probability > best.probability) best = current;
        current = { revisions: [], probability: 0 };
      }
    }
    return best;
  }

  private revisionBranch(index: number): Promise<Branch | null> {
    let branch = this.revisions.get(index);
    if (!branch) {
      branch = this.setUp(index);
      this.revisions.set(index, branch);
    }
    return branch;
  }

  private async setUp(index: number): Promise<Branch | null> {
    const sha = this.history.shas[index] as string;
    const ws = this.ws as Workspace;
    const branch = await ws.branch(`bisect-${process.pid}-${sha.slice(0, 12)}`, { onSuccess: null, onError: null });
    let setup: SetupResult;
    try {
      await checkoutInBranch(branch.path, this.history.root, sha);
      setup = await (this.cache as SetupCache).prepare(
        branch,
        this.history.root,
        this.options.setup,
        this.plan.executor,
        this.options.timeoutMs,
      );
    } catch (err) {
      await branch.abort();
      throw err;
    }
    this.options.onProgress?.({ kind: 'revision', index, sha, setup: setup.how, ok: setup.ok });
    if (setup.ok) return branch;
    await branch.abort();
    this.setupFailed.add(index);
    this.skipReasons.set(index, `setup failed (exit ${setup.outcome?.code ?? '?'})`);
    return null;
  }

  private async runAt(index: number, runIndex: number): Promise<void> {
    const branch = await this.revisionBranch(index);
    if (!branch) {
      this.launched -= 1;
      return;
    }
    const session = this.session as { path: string };
    const record = await inThrowawayBranch(branch, `run-${runIndex}`, (child) =>
      runInBranch({
        branch: child,
        subdir: this.history.subdir,
        projectPath: this.history.root,
        argv: this.plan.command,
        format: this.plan.format,
        executor: this.plan.executor,
        index: runIndex,
        tmp: join(session.path, `run-${runIndex}`, 'tmp'),
        resultsFile: join(session.path, `run-${runIndex}`, 'results.json'),
        timeoutMs: this.options.timeoutMs,
      }),
    );
    this.record(index, judgeRun(record, this.plan.format, this.plan.target), testsRun(record));
  }

  private record(index: number, verdict: RunVerdict, ran: number): void {
    if (verdict.kind === 'skip') {
      this.skips[index] = (this.skips[index] ?? 0) + 1;
      this.skipReasons.set(index, verdict.reason);
    } else {
      this.model.record(index, verdict.kind === 'fail');
    }
    const best = this.model.best();
    this.options.onProgress?.({
      kind: 'run',
      index,
      sha: this.history.shas[index] as string,
      verdict: verdict.kind,
      ...(verdict.kind === 'skip' ? { reason: verdict.reason } : {}),
      testsRun: ran,
      runs: this.runsMade(),
      best: this.describe(best.index, best.probability),
    });
  }

  private runsMade(): number {
    return this.model.totalRuns + this.skips.reduce((a, b) => a + b, 0);
  }

  private describe(index: number, probability: number): RevisionProbability {
    return {
      index,
      sha: this.history.shas[index] as string,
      subject: this.history.subjects[index] as string,
      probability,
    };
  }

  report(status: BisectStatus, durationMs: number): BisectReport {
    const { model, history } = this;
    const chasing = status !== 'bad-never-failed' && status !== 'no-evidence';
    const posterior = model.posterior();
    const ranked = posterior
      .map((p, index) => ({ index, p }))
      .filter((e) => e.index >= 1)
      .sort((a, b) => b.p - a.p || a.index - b.index);
    const best = model.best();
    const block = status === 'skipped-range' ? this.bestBlock() : null;
    const unusable = this.unusable();
    return {
      status,
      culprit: chasing ? this.describe(best.index, best.probability) : null,
      candidates: ranked.slice(0, 5).map((e) => this.describe(e.index, e.p)),
      possibleCulprits: block ? block.revisions.map((k) => this.describe(k, posterior[k] as number)) : null,
      flakeRate: chasing ? (model.meanTheta()[best.index] ?? null) : null,
      good: history.good,
      bad: history.bad,
      commits: this.n,
      test: this.plan.target?.spec ?? null,
      command: this.plan.command,
      runs: this.runsMade(),
      skippedRuns: this.skips.reduce((a, b) => a + b, 0),
      revisionsTested: this.revisions.size - this.setupFailed.size,
      tested: this.tallies(),
      skipped: [...unusable].map((index) => ({
        index,
        sha: history.shas[index] as string,
        reason: this.skipReasons.get(index) ?? 'no evidence',
      })),
      setup: { ran: this.cache?.misses ?? 0, cached: this.cache?.hits ?? 0 },
      confidence: this.plan.confidence,
      durationMs,
    };
  }

  private tallies(): RevisionTally[] {
    return this.history.shas
      .map((sha, index) => ({
        index,
        sha,
        passes: this.model.passes[index] ?? 0,
        fails: this.model.fails[index] ?? 0,
        skips: this.skips[index] ?? 0,
      }))
      .filter((r) => r.passes + r.fails + r.skips > 0);
  }
}
