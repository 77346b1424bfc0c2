import { join } from 'node:path';
import { ArgumentError } from '../base/errors.ts';
import type { Workspace } from '../core/workspace.ts';
import { inThrowawayBranch, openToolSession, type RunRecord, runInBranch, validateCommand } from './branch-run.ts';
import type { SuiteExecutor } from './executor.ts';
import { defaultExecutor } from './flaky-exec.ts';
import { type FormatChoice, parseFormat, RUN_PSEUDO_TEST, resolveFormat, type TestResult } from './flaky-results.ts';

/** The argv element replaced by the tests to run, in order (the candidates kept, then the victim). */
export const TESTS_PLACEHOLDER = '{tests}';

export interface PolluterOptions {
  workspace: string | Workspace;
  /** The test (or, with granularity 'file', the test file) that fails when something runs before it. */
  victim: string;
  /**
   * The test command. It must run exactly the tests it is given, in the given order: as arguments where
   * an argv element is `{tests}`, and always in $BRANCHING_TESTS (one per line).
   */
  command: string[];
  /** The tests that run before the victim, in order. Default: read from one full run's report. */
  candidates?: string[];
  /** What a candidate is: a test file (default) or a single test (`<file> > <name>`). */
  granularity?: 'file' | 'test';
  format?: FormatChoice;
  timeoutMs?: number;
  /** How commands are started (default: a plain process group; a sandbox executor plugs in here). */
  executor?: SuiteExecutor;
  onProgress?: (event: PolluterTrial & { trial: number }) => void;
}

export interface PolluterTrial {
  /** What ran, in order; the victim is last. */
  tests: string[];
  victimFailed: boolean;
}

/**
 * - `found`: `polluters` (usually one) make the victim fail when they run before it; without any one of them it passes.
 * - `victim-fails-alone`: the victim fails even alone: not order-dependent.
 * - `not-reproduced`: the victim passed after all its candidates too.
 */
export type PolluterStatus = 'found' | 'victim-fails-alone' | 'not-reproduced';

export interface PolluterReport {
  status: PolluterStatus;
  victim: string;
  polluters: string[];
  candidates: string[];
  trials: PolluterTrial[];
  durationMs: number;
}

export function expandCommand(argv: string[], tests: string[]): string[] {
  return argv.flatMap((arg) => (arg === TESTS_PLACEHOLDER ? tests : [arg]));
}

/** Which results belong to the victim. */
function victimResults(tests: TestResult[], victim: string, granularity: 'file' | 'test'): TestResult[] {
  return tests.filter((t) => (granularity === 'file' ? t.file === victim : t.id === victim));
}

function victimFailed(record: RunRecord, victim: string, granularity: 'file' | 'test'): boolean {
  if (!record.reported) return record.exitCode !== 0 || record.timedOut;
  const own = victimResults(record.tests, victim, granularity);
  // A victim that never reported was taken down with its process: that counts as failing.
  if (own.length === 0) return true;
  return own.some((t) => t.status === 'failed');
}

function orderedCandidates(tests: TestResult[], victim: string, granularity: 'file' | 'test'): string[] | null {
  const keys: string[] = [];
  for (const t of tests) {
    if (t.id === RUN_PSEUDO_TEST) continue;
    const key = granularity === 'file' ? (t.file as string) : t.id;
    if (!keys.includes(key)) keys.push(key);
  }
  const at = keys.indexOf(victim);
  return at < 0 ? null : keys.slice(0, at);
}

/**
 * Delta debugging (Zeller's ddmin) over the candidates: a 1-minimal subset
 * that, run before the victim, still makes it fail. `fails` is called with
 * candidate indices in their original order.
 */
export async function ddmin(count: number, fails: (subset: number[]) => Promise<boolean>): Promise<number[]> {
  let current = Array.from({ length: count }, (_, i) => i);
  let granularity = 2;
  while (current.length >= 2) {
    const chunks = split(current, granularity);
    let reduced = false;
    for (const chunk of chunks) {
      if (await fails(chunk)) {
        current = chunk;
        granularity = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced && granularity > 2) {
      for (const chunk of chunks) {
        const complement = current.filter((i) => !chunk.includes(i));
        if (await fails(complement)) {
          current = complement;
          granularity = Math.max(granularity - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (reduced) continue;
    if (granularity >= current.length) break;
    granularity = Math.min(current.length, granularity * 2);
  }
  return current;
}

function split<T>(items: T[], parts: number): T[][] {
  const chunks: T[][] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const end = start + Math.floor((items.length - start) / (parts - i));
    if (end > start) chunks.push(items.slice(start, end));
    start = end;
  }
  return chunks;
}

/**
 * Finds the test(s) that make `victim` fail when they run before it. Every
 * trial runs in a fresh branch with a fresh TMPDIR, so no trial sees what an
 * earlier one left behind, and the project itself never changes.
 */
export async function findPolluter(options: PolluterOptions): Promise<PolluterReport> {
  const command = validateCommand(options.command);
  const { victim, granularity } = validateTarget(options);
  const format = resolveFormat(parseFormat(options.format), command);
  const executor = options.executor ?? defaultExecutor();
  const started = performance.now();
  const session = await openToolSession(options.workspace, 'branching-polluter-');
  const ws = session.ws;
  const trials: PolluterTrial[] = [];
  let counter = 0;

  const runTests = (tests: string[] | null): Promise<RunRecord> => {
    const index = counter++;
    const argv = tests ? expandCommand(command, tests) : command.filter((a) => a !== TESTS_PLACEHOLDER);
    return inThrowawayBranch(ws, `polluter-${process.pid}-${index}`, (branch) =>
      runInBranch({
        branch,
        projectPath: ws.path,
        argv,
        format,
        executor,
        index,
        tmp: join(session.path, `trial-${index}`, 'tmp'),
        resultsFile: join(session.path, `trial-${index}`, 'results.json'),
        timeoutMs: options.timeoutMs,
        extraEnv: tests ? { BRANCHING_TESTS: tests.join('\n') } : {},
      }),
    );
  };

  try {
    const candidates = options.candidates ?? (await discoverCandidates(await runTests(null), victim, granularity));
    const cache = new Map<string, boolean>();
    const fails = async (subset: number[]): Promise<boolean> => {
      const key = subset.join(',');
      const known = cache.get(key);
      if (known !== undefined) return known;
      const tests = [...subset.map((i) => candidates[i] as string), victim];
      const failed = victimFailed(await runTests(tests), victim, granularity);
      cache.set(key, failed);
      trials.push({ tests, victimFailed: failed });
      options.onProgress?.({ trial: trials.length, tests, victimFailed: failed });
      return failed;
    };
    const { status, polluters } = await searchPolluters(candidates, fails);
    return { status, victim, polluters, candidates, trials, durationMs: performance.now() - started };
  } finally {
    await session.dispose();
  }
}

/** The victim's id and the granularity of the search, or an ArgumentError naming the bad one. */
function validateTarget(options: PolluterOptions): { victim: string; granularity: 'file' | 'test' } {
  if (typeof options.victim !== 'string' || options.victim === '') {
    throw new ArgumentError('victim must be a non-empty test id', { argument: 'victim' });
  }
  const granularity = options.granularity ?? 'file';
  if (granularity !== 'file' && granularity !== 'test') {
    throw new ArgumentError(`granularity must be 'file' or 'test'; got ${JSON.stringify(granularity)}`, {
      argument: 'granularity',
    });
  }
  return { victim: options.victim, granularity };
}

/**
 * The victim alone first, then after every candidate (a polluter must be among them), then a
 * minimal failing subset by delta debugging. `fails(subset)` runs the subset before the victim.
 */
async function searchPolluters(
  candidates: readonly string[],
  fails: (subset: number[]) => Promise<boolean>,
): Promise<{ status: PolluterStatus; polluters: string[] }> {
  if (await fails([])) return { status: 'victim-fails-alone', polluters: [] };
  if (candidates.length === 0 || !(await fails(candidates.map((_, i) => i)))) {
    return { status: 'not-reproduced', polluters: [] };
  }
  const polluters = (await ddmin(candidates.length, fails)).map((i) => candidates[i] as string);
  return { status: 'found', polluters };
}

function discoverCandidates(record: RunRecord, victim: string, granularity: 'file' | 'test'): string[] {
  if (!record.reported) {
    throw new ArgumentError(
      'cannot tell which tests run before the victim: the command wrote no per-test report; pass candidates (--candidates)',
      { argument: 'candidates', code: 'ERR_BRANCHING_NO_REPORT' },
    );
  }
  const found = orderedCandidates(record.tests, victim, granularity);
  if (found === null) {
    const known = [
      ...new Set(
        record.tests.filter((t) => t.id !== RUN_PSEUDO_TEST).map((t) => (granularity === 'file' ? t.file : t.id)),
      ),
    ];
    throw new ArgumentError(
      `victim ${JSON.stringify(victim)} is not among the ${granularity === 'file' ? 'test files' : 'tests'} of the full run (${known.slice(0, 5).join(', ')}${known.length > 5 ? ', …' : ''})`,
      { argument: 'victim', code: 'ERR_BRANCHING_UNKNOWN_TEST' },
    );
  }
  return found;
}
