import { realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { Workspace } from '../core/workspace.ts';
import { checkoutInBranch, historyBetween, repositoryRoot, resolveCommit } from './bisect-git.ts';
import { NoisyBisector } from './bisect-model.ts';
import { SetupCache, type SetupResult } from './bisect-setup.ts';
import type { SuiteExecutor } from './executor.ts';
import { ProcessGroupExecutor } from './executor.ts';
import { defaultExecutor } from './flaky-exec.ts';
import {
  inThrowawayBranch,
  mapLimited,
  runInBranch,
  sessionDir,
  validateCommand,
  validateCount,
  validateFraction,
} from './flaky-runner.ts';

export interface BisectOptions {
  /** A path inside the repository (default: the current directory). Commands run in the same subdirectory. */
  repository?: string;
  good: string;
  bad: string;
  /** The test command; a run fails when it exits non-zero (or times out). */
  command: string[];
  /** Stop when the best culprit's posterior probability reaches this. Default 0.95. */
  confidence?: number;
  /** The most runs to spend, all revisions together. Default 300. */
  runs?: number;
  /** Runs at once (at one revision). Default 1. */
  parallel?: number;
  /** Shell command run once per revision before its runs (e.g. `npm ci`); node_modules is cached by lockfile. */
  setup?: string;
  /** Keep the setup cache here (reused across sessions); default: a temporary directory. */
  cacheDir?: string;
  /** The most runs spent on the bad revision waiting for its first failure. Default 60. */
  badRuns?: number;
  /** Probability that a run fails before the culprit. Default 0. */
  epsilon?: number;
  timeoutMs?: number;
  /** How commands are started (default: a plain process group; a sandbox executor plugs in here). */
  executor?: SuiteExecutor;
  onProgress?: (event: BisectProgress) => void;
}

export type BisectProgress =
  | { kind: 'revision'; index: number; sha: string; setup: SetupResult['how']; ok: boolean }
  | { kind: 'run'; index: number; sha: string; failed: boolean; runs: number; best: RevisionProbability };

export interface RevisionProbability {
  index: number;
  sha: string;
  subject: string;
  probability: number;
}

/**
 * - `found`: the culprit's posterior probability reached the confidence asked for.
 * - `inconclusive`: the run budget ran out first; `culprit` is the best guess.
 * - `bad-never-failed`: the bad revision passed every run we gave it; there is no flake to chase.
 */
export type BisectStatus = 'found' | 'inconclusive' | 'bad-never-failed';

export interface BisectReport {
  status: BisectStatus;
  culprit: RevisionProbability | null;
  /** The most probable culprits, best first. */
  candidates: RevisionProbability[];
  /** Posterior mean flake rate at the culprit. */
  flakeRate: number | null;
  good: string;
  bad: string;
  commits: number;
  runs: number;
  revisionsTested: number;
  tested: Array<{ index: number; sha: string; passes: number; fails: number }>;
  /** Revisions whose setup failed; they are never tested. */
  skipped: string[];
  setup: { ran: number; cached: number };
  confidence: number;
  durationMs: number;
}

/**
 * Finds the commit that introduced a flaky failure, by noisy bisection.
 * Every revision is checked out inside its own branch (never in the user's
 * tree), set up once, and every run is a fresh child branch of it.
 */
export async function bisectFlaky(options: BisectOptions): Promise<BisectReport> {
  const command = validateCommand(options.command);
  const confidence = validateFraction(options.confidence, 'confidence', 0.95);
  const budget = validateCount(options.runs, 'runs', 1, 300);
  const parallel = validateCount(options.parallel, 'parallel', 1, 1);
  const badRuns = validateCount(options.badRuns, 'badRuns', 1, 60);
  if (options.setup !== undefined && typeof options.setup !== 'string') {
    throw new ArgumentError('setup must be a shell command string', { argument: 'setup' });
  }
  // A setup step (`npm ci`) writes the user's caches outside the project, which the sandbox's
  // read-only root forbids; bisect therefore runs in plain process groups unless told otherwise.
  const executor = options.executor ?? (options.setup ? new ProcessGroupExecutor() : defaultExecutor());
  const started = performance.now();
  const start = await realpath(options.repository ?? process.cwd()).catch((err) => {
    throw new ArgumentError(`repository ${options.repository} does not exist`, {
      argument: 'repository',
      path: options.repository,
      cause: err,
    });
  });
  const root = await repositoryRoot(start);
  const subdir = relative(root, start);
  const good = await resolveCommit(root, options.good, 'good');
  const bad = await resolveCommit(root, options.bad, 'bad');
  const history = await historyBetween(root, good, bad);
  const shas = [good, ...history.map((h) => h.sha)];
  const subjects = ['(good)', ...history.map((h) => h.subject)];
  const n = history.length;
  const model = new NoisyBisector(n, { epsilon: options.epsilon });
  const describe = (index: number, probability: number): RevisionProbability => ({
    index,
    sha: shas[index] as string,
    subject: subjects[index] as string,
    probability,
  });

  const ws = new Workspace(root, { onNotice: () => {} });
  const session = await sessionDir('branching-bisect-');
  const cache = new SetupCache(options.cacheDir ?? join(session.path, 'cache'));
  const revisions = new Map<number, Branch | null>();
  let runs = 0;

  const revisionBranch = async (index: number): Promise<Branch | null> => {
    if (revisions.has(index)) return revisions.get(index) ?? null;
    const sha = shas[index] as string;
    const branch = await ws.branch(`bisect-${process.pid}-${sha.slice(0, 12)}`, { onSuccess: null, onError: null });
    let setup: SetupResult;
    try {
      await checkoutInBranch(branch.path, root, sha);
      setup = await cache.prepare(branch, root, options.setup, executor, options.timeoutMs);
    } catch (err) {
      await branch.abort();
      throw err;
    }
    options.onProgress?.({ kind: 'revision', index, sha, setup: setup.how, ok: setup.ok });
    if (!setup.ok) await branch.abort();
    revisions.set(index, setup.ok ? branch : null);
    return setup.ok ? branch : null;
  };

  const runAt = async (index: number, count: number): Promise<void> => {
    const branch = await revisionBranch(index);
    if (!branch) return;
    const indices = Array.from({ length: count }, () => runs++);
    const records = await mapLimited(indices, parallel, (runIndex) =>
      inThrowawayBranch(branch, `run-${runIndex}`, (child) =>
        runInBranch({
          branch: child,
          subdir,
          projectPath: root,
          argv: command,
          format: 'exit-code',
          executor,
          index: runIndex,
          tmp: join(session.path, `run-${runIndex}`, 'tmp'),
          resultsFile: join(session.path, `run-${runIndex}`, 'results.json'),
          timeoutMs: options.timeoutMs,
        }),
      ),
    );
    for (const record of records) {
      const failed = record.tests.some((t) => t.status === 'failed');
      model.record(index, failed);
      const best = model.best();
      options.onProgress?.({
        kind: 'run',
        index,
        sha: shas[index] as string,
        failed,
        runs: model.passes.reduce((a, b) => a + b, 0) + model.totalFails,
        best: describe(best.index, best.probability),
      });
    }
  };

  let status: BisectStatus;
  try {
    // The bad revision must fail at least once: that failure is what the bisection chases, and it calibrates θ.
    while (model.totalFails === 0 && runs < Math.min(budget, badRuns)) {
      await runAt(n, Math.min(parallel, Math.min(budget, badRuns) - runs));
      if (!revisions.get(n)) break;
    }
    if (model.totalFails === 0) status = 'bad-never-failed';
    else {
      const unusable = new Set<number>();
      while (model.best().probability < confidence && runs < budget) {
        const next = model.next(unusable);
        if (next === null) break;
        await runAt(next, Math.min(parallel, budget - runs));
        if (!revisions.get(next)) unusable.add(next);
      }
      status = model.best().probability >= confidence ? 'found' : 'inconclusive';
    }
  } finally {
    for (const branch of revisions.values()) await branch?.abort();
    await ws.close();
    await session.dispose();
  }

  const posterior = model.posterior();
  const ranked = posterior
    .map((p, index) => ({ index, p }))
    .filter((e) => e.index >= 1)
    .sort((a, b) => b.p - a.p || a.index - b.index);
  const best = model.best();
  return {
    status,
    culprit: status === 'bad-never-failed' ? null : describe(best.index, best.probability),
    candidates: ranked.slice(0, 5).map((e) => describe(e.index, e.p)),
    flakeRate: status === 'bad-never-failed' ? null : (model.meanTheta()[best.index] ?? null),
    good,
    bad,
    commits: n,
    runs,
    revisionsTested: [...revisions.values()].filter(Boolean).length,
    tested: shas
      .map((sha, index) => ({ index, sha, passes: model.passes[index] ?? 0, fails: model.fails[index] ?? 0 }))
      .filter((r) => r.passes + r.fails > 0),
    skipped: [...revisions.entries()].filter(([, b]) => b === null).map(([i]) => shas[i] as string),
    setup: { ran: cache.misses, cached: cache.hits },
    confidence,
    durationMs: performance.now() - started,
  };
}
