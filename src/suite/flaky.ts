import { join } from 'node:path';
import type { Workspace } from '../core/workspace.ts';
import {
  inThrowawayBranch,
  mapLimited,
  openToolSession,
  type RunRecord,
  runInBranch,
  validateCommand,
  validateCount,
  validateFraction,
} from './branch-run.ts';
import type { SuiteExecutor } from './executor.ts';
import { defaultExecutor } from './flaky-exec.ts';
import { type FormatChoice, parseFormat, resolveFormat, type TestResult } from './flaky-results.ts';
import { type Interval, wilsonInterval } from './stats.ts';

export interface FlakyOptions {
  /** The project: a path or an open Workspace. */
  workspace: string | Workspace;
  /** The test command (argv), e.g. `['npx', 'vitest', 'run', 'test/a.test.ts']`. */
  command: string[];
  /** Isolated runs (with untilConfident: the most to spend). Default 10. */
  runs?: number;
  /** Isolated runs at once. Default 1. */
  parallel?: number;
  /** Runs in ONE branch, one after another, to see whether state carried over makes tests fail. Default min(runs, 10); 0 skips. */
  sharedRuns?: number;
  /** Stop as soon as every test's verdict is settled (see `settled`). */
  untilConfident?: boolean;
  /** The flake rate a test is called stable below (95% Wilson upper bound). Default 0.1. */
  threshold?: number;
  format?: FormatChoice;
  timeoutMs?: number;
  /** How commands are started (default: a plain process group; a sandbox executor plugs in here). */
  executor?: SuiteExecutor;
  onProgress?: (event: FlakyProgress) => void;
}

export type FlakyProgress = { phase: 'isolated' | 'shared'; run: RunRecord; done: number; planned: number };

/**
 * - `stable`: never failed.
 * - `flaky`: passed and failed from identical starting bytes, each run in a fresh branch: flaky even in isolation.
 * - `carryover`: never failed in isolation, but failed when runs shared one branch (and TMPDIR) in sequence:
 *   it fails only when state carries over.
 * - `failing`: failed every isolated run.
 */
export type FlakyVerdict = 'stable' | 'flaky' | 'carryover' | 'failing';

export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

export interface TestFlakiness {
  id: string;
  isolated: Tally & { failRate: number; interval: Interval };
  shared: Tally;
  verdict: FlakyVerdict;
  /** The verdict would not change with more runs (at 95%; see README "Flaky tests"). */
  settled: boolean;
}

export interface FlakyReport {
  command: string[];
  format: string;
  isolatedRuns: number;
  sharedRuns: number;
  /** Every test's verdict is settled. */
  settled: boolean;
  /** untilConfident stopped before the run budget. */
  stoppedEarly: boolean;
  threshold: number;
  tests: TestFlakiness[];
  durationMs: number;
}

const emptyTally = (): Tally => ({ passed: 0, failed: 0, skipped: 0 });

function tallyInto(map: Map<string, Tally>, tests: TestResult[]): void {
  for (const t of tests) {
    const tally = map.get(t.id) ?? emptyTally();
    tally[t.status] += 1;
    map.set(t.id, tally);
  }
}

/**
 * The isolated verdict is settled once a test has both passed and failed
 * (flaky: certain, since every run started from the same bytes), or the 95%
 * Wilson upper bound of its failure rate is below the threshold (stable), or
 * that of its pass rate is (failing).
 */
export function isolatedSettled(t: Tally, threshold: number): boolean {
  const n = t.passed + t.failed;
  if (n === 0) return false;
  if (t.passed > 0 && t.failed > 0) return true;
  // One of the two counts is zero: bound the rate of the outcome never seen.
  return wilsonInterval(0, n).high < threshold;
}

/** In shared runs a clean-in-isolation test is settled once it fails (carryover), or clears the same bound. */
function sharedSettled(t: Tally, threshold: number): boolean {
  const n = t.passed + t.failed;
  return t.failed > 0 || (n > 0 && wilsonInterval(0, n).high < threshold);
}

export function classify(isolated: Tally, shared: Tally): FlakyVerdict {
  if (isolated.failed > 0 && isolated.passed > 0) return 'flaky';
  if (isolated.failed > 0) return 'failing';
  if (shared.failed > 0) return 'carryover';
  return 'stable';
}

/**
 * Runs a test command many times, each in a fresh branch and a fresh process
 * with a private TMPDIR, then again in one shared branch, and reports each
 * test's flake rate (with a 95% Wilson interval) and verdict.
 */
export async function measureFlakiness(options: FlakyOptions): Promise<FlakyReport> {
  const command = validateCommand(options.command);
  const runs = validateCount(options.runs, 'runs', 1, 10);
  const parallel = validateCount(options.parallel, 'parallel', 1, 1);
  const sharedRuns = validateCount(options.sharedRuns, 'sharedRuns', 0, Math.min(runs, 10));
  const threshold = validateFraction(options.threshold, 'threshold', 0.1);
  const format = resolveFormat(parseFormat(options.format), command);
  const executor = options.executor ?? defaultExecutor();
  const started = performance.now();
  const session = await openToolSession(options.workspace, 'branching-flaky-');
  const ws = session.ws;
  const series: Series = {
    ws,
    session: session.path,
    base: { projectPath: ws.path, argv: command, format, executor, timeoutMs: options.timeoutMs },
    options,
    threshold,
    isolated: new Map<string, Tally>(),
    shared: new Map<string, Tally>(),
  };
  let isolatedDone = 0;
  let sharedDone = 0;
  try {
    isolatedDone = await runIsolatedSeries(series, runs, parallel);
    if (sharedRuns > 0) sharedDone = await runSharedSeries(series, runs, sharedRuns);
  } finally {
    await session.dispose();
  }
  const tests = summarize(series.isolated, series.shared, threshold, sharedDone);
  return {
    command,
    format,
    isolatedRuns: isolatedDone,
    sharedRuns: sharedDone,
    settled: tests.every((t) => t.settled),
    stoppedEarly: isolatedDone < runs || sharedDone < sharedRuns,
    threshold,
    tests,
    durationMs: performance.now() - started,
  };
}

/** What both series of measureFlakiness share: where they run, how, and the tallies they fill. */
interface Series {
  ws: Workspace;
  session: string;
  base: Omit<Parameters<typeof runInBranch>[0], 'branch' | 'index' | 'tmp' | 'resultsFile'>;
  options: FlakyOptions;
  threshold: number;
  isolated: Map<string, Tally>;
  shared: Map<string, Tally>;
}

/** Isolated series: batches of `parallel` runs, each in its own branch. Returns the runs done. */
async function runIsolatedSeries(s: Series, runs: number, parallel: number): Promise<number> {
  let done = 0;
  while (done < runs) {
    const batch = Array.from({ length: Math.min(parallel, runs - done) }, (_, k) => done + k);
    const records = await mapLimited(batch, parallel, (index) =>
      inThrowawayBranch(s.ws, `flaky-${process.pid}-${index}`, (branch) =>
        runInBranch({
          ...s.base,
          branch,
          index,
          tmp: join(s.session, `run-${index}`, 'tmp'),
          resultsFile: join(s.session, `run-${index}`, 'results.json'),
        }),
      ),
    );
    for (const record of records) {
      tallyInto(s.isolated, record.tests);
      done += 1;
      s.options.onProgress?.({ phase: 'isolated', run: record, done, planned: runs });
    }
    if (s.options.untilConfident && done >= 2 && allSettled(s.isolated, (t) => isolatedSettled(t, s.threshold))) break;
  }
  return done;
}

/**
 * Shared series: one branch and one TMPDIR, runs in sequence, so whatever a run leaves behind the
 * next one sees. Run indexes continue after the isolated series' `runs`. Returns the runs done.
 */
async function runSharedSeries(s: Series, runs: number, sharedRuns: number): Promise<number> {
  let done = 0;
  const needsShared = () =>
    [...s.isolated.entries()].some(
      ([id, t]) => t.failed === 0 && !sharedSettled(s.shared.get(id) ?? emptyTally(), s.threshold),
    );
  await inThrowawayBranch(s.ws, `flaky-${process.pid}-shared`, async (branch) => {
    while (done < sharedRuns) {
      if (s.options.untilConfident && done >= 2 && !needsShared()) break;
      const index = runs + done;
      const record = await runInBranch({
        ...s.base,
        branch,
        index,
        tmp: join(s.session, 'shared', 'tmp'),
        resultsFile: join(s.session, 'shared', `results-${index}.json`),
      });
      tallyInto(s.shared, record.tests);
      done += 1;
      s.options.onProgress?.({ phase: 'shared', run: record, done, planned: sharedRuns });
    }
  });
  return done;
}

function allSettled(map: Map<string, Tally>, settled: (t: Tally) => boolean): boolean {
  return map.size > 0 && [...map.values()].every(settled);
}

const VERDICT_ORDER: Record<FlakyVerdict, number> = { flaky: 0, carryover: 1, failing: 2, stable: 3 };

function summarize(
  isolated: Map<string, Tally>,
  shared: Map<string, Tally>,
  threshold: number,
  sharedDone: number,
): TestFlakiness[] {
  const ids = new Set([...isolated.keys(), ...shared.keys()]);
  const tests = [...ids].map((id): TestFlakiness => {
    const iso = isolated.get(id) ?? emptyTally();
    const sh = shared.get(id) ?? emptyTally();
    const n = iso.passed + iso.failed;
    const verdict = classify(iso, sh);
    const isoSettled = isolatedSettled(iso, threshold);
    // A clean-in-isolation verdict also needs the shared series to have spoken (or to have been skipped on purpose).
    const settled =
      verdict === 'flaky' || verdict === 'failing'
        ? isoSettled
        : isoSettled && (sharedDone === 0 || sharedSettled(sh, threshold));
    return {
      id,
      isolated: { ...iso, failRate: n ? iso.failed / n : 0, interval: wilsonInterval(iso.failed, n) },
      shared: sh,
      verdict,
      settled,
    };
  });
  return tests.sort((a, b) => VERDICT_ORDER[a.verdict] - VERDICT_ORDER[b.verdict] || a.id.localeCompare(b.id));
}
