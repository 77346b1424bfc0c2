import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { Workspace } from '../core/workspace.ts';
import type { SuiteExecutor, SuiteExit } from './executor.ts';
import { childEnv, inSubdir } from './flaky-exec.ts';
import { collectResults, type ResultFormat, type TestResult, withReporter } from './flaky-results.ts';

/**
 * One run of a test command inside a branch: a fresh process with a private
 * TMPDIR, the run index in BRANCHING_RUN_INDEX (so fixtures can seed their
 * randomness), and a results file outside the branch.
 */
export interface RunSpec {
  branch: Branch;
  /** Run in this subdirectory of the branch (the user's cwd within the project). */
  subdir?: string;
  projectPath: string;
  argv: string[];
  format: ResultFormat;
  executor: SuiteExecutor;
  index: number;
  /** The TMPDIR the command gets; runs that share state pass the same one. */
  tmp: string;
  resultsFile: string;
  timeoutMs?: number;
  extraEnv?: Record<string, string>;
}

export interface RunRecord {
  index: number;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** Did the command write a per-test report? */
  reported: boolean;
  tests: TestResult[];
  outcome: SuiteExit;
}

export async function runInBranch(spec: RunSpec): Promise<RunRecord> {
  await mkdir(spec.tmp, { recursive: true });
  await mkdir(dirname(spec.resultsFile), { recursive: true });
  await rm(spec.resultsFile, { force: true });
  const env = childEnv({
    TMPDIR: spec.tmp,
    TMP: spec.tmp,
    TEMP: spec.tmp,
    BRANCHING_RUN_INDEX: String(spec.index),
    BRANCHING_RESULTS_FILE: spec.resultsFile,
    ...spec.extraEnv,
  });
  const outcome = await spec.executor.run({
    branchDir: spec.branch.path,
    workspaceDir: spec.projectPath,
    // Under the sandbox's read-only root, the run writes only its branch, its TMPDIR and its report.
    writable: [spec.tmp, dirname(spec.resultsFile)],
    argv: inSubdir(withReporter(spec.argv, spec.format, spec.resultsFile), spec.subdir),
    env,
    timeoutMs: spec.timeoutMs,
  });
  // Reports name files where the runner saw them: under the project path the executor gave it.
  const root = join(spec.executor.projectPath(spec.branch.path, spec.projectPath), spec.subdir ?? '');
  const { tests, reported } = await collectResults(spec.format, spec.resultsFile, root, {
    exitCode: outcome.code,
    timedOut: outcome.timedOut,
  });
  return {
    index: spec.index,
    exitCode: outcome.code,
    timedOut: outcome.timedOut,
    durationMs: outcome.durationMs,
    reported,
    tests,
    outcome,
  };
}

/** Creates a branch of `parent`, runs `fn` in it, and always aborts it: trials never change the project. */
export async function inThrowawayBranch<T>(
  parent: Workspace | Branch,
  name: string,
  fn: (branch: Branch) => Promise<T>,
): Promise<T> {
  const branch = await parent.branch(name, { onSuccess: null, onError: null });
  try {
    return await fn(branch);
  } finally {
    await branch.abort();
  }
}

/** A private scratch directory for one session's TMPDIRs and result files, removed by `dispose`. */
export async function sessionDir(prefix: string): Promise<{ path: string; dispose: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}

/** What a suite tool runs on: a workspace (the caller's, or one it opens on a path) and a scratch dir. */
export interface ToolSession {
  ws: Workspace;
  path: string;
  /** Removes the scratch dir and closes the workspace when the tool opened it. */
  dispose: () => Promise<void>;
}

export async function openToolSession(workspace: string | Workspace, prefix: string): Promise<ToolSession> {
  const own = typeof workspace === 'string';
  const ws = own ? new Workspace(workspace, { onNotice: () => {} }) : workspace;
  const session = await sessionDir(prefix);
  return {
    ws,
    path: session.path,
    dispose: async () => {
      await session.dispose();
      if (own) await ws.close();
    },
  };
}

/** Validates a test command (the argv after `--`). */
export function validateCommand(argv: unknown, argument = 'command'): string[] {
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    throw new ArgumentError(`${argument} must be a non-empty array of strings (the test command after --)`, {
      argument,
    });
  }
  if (argv[0] === '') throw new ArgumentError(`${argument}[0] is empty`, { argument });
  return argv as string[];
}

export function validateCount(value: unknown, argument: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ArgumentError(`${argument} must be an integer ≥ ${min}; got ${JSON.stringify(value)}`, { argument });
  }
  return value;
}

export function validateFraction(value: unknown, argument: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new ArgumentError(`${argument} must be a number strictly between 0 and 1; got ${JSON.stringify(value)}`, {
      argument,
    });
  }
  return value;
}

/** Runs `tasks` with at most `limit` at a time, keeping their order in the result. */
export async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
