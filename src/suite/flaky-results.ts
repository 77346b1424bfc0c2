import { ArgumentError } from '../base/errors.ts';
import { frameworkOfCommand, type ReportEntry, readJestReport, reporterArgs, type TestStatus } from './test-report.ts';

/**
 * Where per-test results come from:
 * - `vitest`: we append `--reporter=json --outputFile=<file>`;
 * - `jest`: we append `--json --outputFile=<file>`;
 * - `json-file`: the command itself writes a Jest-shaped report to $BRANCHING_RESULTS_FILE
 *   (a custom runner, a script); without one, the exit code is all we have;
 * - `exit-code`: the command's exit status is one pseudo-test.
 * `auto` picks vitest or jest when the command names them, else `json-file`.
 */
export type ResultFormat = 'vitest' | 'jest' | 'json-file' | 'exit-code';
export type FormatChoice = ResultFormat | 'auto';
export const FORMAT_CHOICES: readonly FormatChoice[] = ['auto', 'vitest', 'jest', 'json-file', 'exit-code'];

export type { TestStatus };

export interface TestResult {
  /** `<file relative to the project> > <describe> > ... > <test>`, a file that failed as a whole, or RUN_PSEUDO_TEST. */
  id: string;
  file: string | null;
  status: TestStatus;
  /** A test, a file that failed as a whole (it did not load), or the run itself (RUN_PSEUDO_TEST). */
  kind: 'test' | 'file' | 'run';
}

/**
 * Every run reports this pseudo-test. With per-test results it fails only when
 * the run failed beyond its tests (no report, a crash, a timeout, a non-zero
 * exit with no failing test); in `exit-code` mode it is the command's status.
 */
export const RUN_PSEUDO_TEST = '(run)';

export function parseFormat(value: unknown, argument = 'format'): FormatChoice {
  if (value === undefined) return 'auto';
  if (typeof value === 'string' && (FORMAT_CHOICES as readonly string[]).includes(value)) return value as FormatChoice;
  throw new ArgumentError(`${argument} must be one of ${FORMAT_CHOICES.join(', ')}; got ${JSON.stringify(value)}`, {
    argument,
  });
}

export function resolveFormat(choice: FormatChoice, argv: string[]): ResultFormat {
  if (choice !== 'auto') return choice;
  return frameworkOfCommand(argv) ?? 'json-file';
}

/** The argv to run so that the chosen tool writes its report to `resultsFile`. */
export function withReporter(argv: string[], format: ResultFormat, resultsFile: string): string[] {
  if (format === 'vitest' || format === 'jest') return [...argv, ...reporterArgs(format, resultsFile)];
  return argv;
}

/** The report's entries as the flaky tools count them: every test, and a file only when it failed as a whole. */
async function readReport(resultsFile: string, root: string): Promise<TestResult[] | null> {
  let entries: ReportEntry[] | null;
  try {
    entries = await readJestReport(resultsFile, root, 'the test command');
  } catch {
    return null; // not a usable report: judged like a run that wrote none
  }
  if (entries === null) return null;
  return entries
    .filter((e) => e.kind === 'test' || e.status === 'failed')
    .map((e) => ({ id: e.id, file: e.file, status: e.status, kind: e.kind }));
}

/** The per-test results of one run, always including the RUN_PSEUDO_TEST entry. */
export async function collectResults(
  format: ResultFormat,
  resultsFile: string,
  root: string,
  outcome: { exitCode: number | null; timedOut: boolean },
): Promise<{ tests: TestResult[]; reported: boolean }> {
  const exitedCleanly = outcome.exitCode === 0 && !outcome.timedOut;
  if (format === 'exit-code') {
    return { tests: [runEntry(exitedCleanly)], reported: false };
  }
  const tests = await readReport(resultsFile, root);
  if (tests === null) return { tests: [runEntry(exitedCleanly && format === 'json-file')], reported: false };
  const anyFailed = tests.some((t) => t.status === 'failed');
  const runFailed = outcome.timedOut || (outcome.exitCode !== 0 && !anyFailed);
  return { tests: [...tests, runEntry(!runFailed)], reported: true };
}

function runEntry(passed: boolean): TestResult {
  return { id: RUN_PSEUDO_TEST, file: null, status: passed ? 'passed' : 'failed', kind: 'run' };
}
