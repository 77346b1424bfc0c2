import { readFile } from 'node:fs/promises';
import { basename, isAbsolute, relative } from 'node:path';
import { ArgumentError } from '../base/errors.ts';
import { statusOf, type TestStatus } from './test-runner.ts';

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
  /** `<file relative to the project> > <full name>`, or RUN_PSEUDO_TEST. */
  id: string;
  file: string | null;
  status: TestStatus;
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

function names(argv: string[], tool: string): boolean {
  return argv.some((arg) => {
    const base = basename(arg);
    return base === tool || base === `${tool}.mjs` || base === `${tool}.js` || base === `${tool}.cjs`;
  });
}

export function resolveFormat(choice: FormatChoice, argv: string[]): ResultFormat {
  if (choice !== 'auto') return choice;
  if (names(argv, 'vitest')) return 'vitest';
  if (names(argv, 'jest')) return 'jest';
  return 'json-file';
}

/** The argv to run so that the chosen tool writes its report to `resultsFile`. */
export function withReporter(argv: string[], format: ResultFormat, resultsFile: string): string[] {
  if (format === 'vitest') return [...argv, '--reporter=json', `--outputFile=${resultsFile}`];
  if (format === 'jest') return [...argv, '--json', `--outputFile=${resultsFile}`];
  return argv;
}

interface JestShapedReport {
  testResults?: Array<{
    name?: string;
    testFilePath?: string;
    status?: string;
    message?: string;
    assertionResults?: Array<{ fullName?: string; title?: string; ancestorTitles?: string[]; status?: string }>;
  }>;
}

function relativeFile(root: string, file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(root, file);
  return rel.startsWith('..') ? file : rel;
}

/** Parses a Jest-shaped report (Jest's --json, Vitest's json reporter). */
export function parseJestShaped(json: unknown, root: string): TestResult[] {
  const report = json as JestShapedReport;
  if (!report || !Array.isArray(report.testResults)) throw new Error('not a Jest-shaped report (no testResults array)');
  const results: TestResult[] = [];
  for (const file of report.testResults) {
    const path = relativeFile(root, file.name ?? file.testFilePath ?? '(unknown file)');
    const assertions = file.assertionResults ?? [];
    for (const a of assertions) {
      const name = a.fullName ?? [...(a.ancestorTitles ?? []), a.title ?? ''].join(' ');
      results.push({ id: `${path} > ${name}`, file: path, status: statusOf(a.status) });
    }
    // A file that failed before any test ran (an import error) still counts, as the file itself.
    if (assertions.length === 0 && file.status === 'failed') {
      results.push({ id: `${path} > (file)`, file: path, status: 'failed' });
    }
  }
  return results;
}

async function readReport(resultsFile: string, root: string): Promise<TestResult[] | null> {
  let text: string;
  try {
    text = await readFile(resultsFile, 'utf8');
  } catch {
    return null;
  }
  try {
    return parseJestShaped(JSON.parse(text), root);
  } catch {
    return null;
  }
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
  return { id: RUN_PSEUDO_TEST, file: null, status: passed ? 'passed' : 'failed' };
}
