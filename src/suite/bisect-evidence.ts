import { readFile } from 'node:fs/promises';
import { ArgumentError } from '../base/errors.ts';
import type { RunRecord } from './branch-run.ts';
import type { ResultFormat, TestResult } from './flaky-results.ts';

/**
 * What one bisection run says about the flake. Like `git bisect`'s exit 125,
 * a run that cannot tell (the suite did not load, the target test did not
 * run, no report) is a skip: it is shown and counted, never used as evidence.
 */
export type RunVerdict = { kind: 'fail' } | { kind: 'pass' } | { kind: 'skip'; reason: string };

/**
 * The test to judge: the id `branching flaky` reports (`<file> > <name>`, the
 * name's parts joined by ` > ` or by spaces), a test file, or a name filter.
 */
export interface TargetTest {
  spec: string;
  file: string | null;
  /** The name's parts joined by spaces (as Vitest's and Jest's `-t` match them). */
  name: string | null;
  /** `name` must equal the test's full name (an id), not merely occur in it (a filter). */
  exact: boolean;
}

const TEST_FILE = /\.(c|m)?(j|t)sx?$/;

export function parseTarget(spec: unknown): TargetTest | null {
  if (spec === undefined) return null;
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new ArgumentError(`test must be a test id, file or name; got ${JSON.stringify(spec)}`, { argument: 'test' });
  }
  const parts = spec.split(' > ');
  const first = parts[0] as string;
  if (parts.length > 1 && (TEST_FILE.test(first) || first.includes('/'))) {
    return { spec, file: first, name: parts.slice(1).join(' '), exact: true };
  }
  if (parts.length === 1 && (TEST_FILE.test(spec) || spec.includes('/'))) {
    return { spec, file: spec, name: null, exact: false };
  }
  return { spec, file: null, name: parts.join(' '), exact: false };
}

/** A report's entry for a file that failed as a whole (did not load), or for the run itself. */
function isTestEntry(t: TestResult): boolean {
  return t.kind === 'test';
}

function sameFile(reported: string | null, wanted: string): boolean {
  if (reported === null) return false;
  return reported === wanted || reported.endsWith(`/${wanted}`) || wanted.endsWith(`/${reported}`);
}

/** The test's name within its file, parts joined by spaces, for both `a > b` and `a b` id styles. */
function nameOf(t: TestResult): string {
  const prefix = t.file === null ? '' : `${t.file} > `;
  const name = t.id.startsWith(prefix) ? t.id.slice(prefix.length) : t.id;
  return name.split(' > ').join(' ');
}

export function matchesTarget(t: TestResult, target: TargetTest): boolean {
  if (!isTestEntry(t)) return false;
  if (target.file !== null && !sameFile(t.file, target.file)) return false;
  if (target.name === null) return true;
  return target.exact ? nameOf(t) === target.name : nameOf(t).includes(target.name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The command narrowed to the target where the framework allows it
 * (`vitest run FILE -t NAME`, `jest FILE -t NAME`); null when it cannot be.
 */
export function narrowCommand(argv: string[], format: ResultFormat, target: TargetTest): string[] | null {
  if (format !== 'vitest' && format !== 'jest') return null;
  const narrowed = [...argv];
  // Vitest filters files by substring, Jest by regular expression.
  if (target.file !== null) narrowed.push(format === 'jest' ? escapeRegExp(target.file) : target.file);
  if (target.name !== null) narrowed.push('-t', escapeRegExp(target.name));
  return narrowed;
}

function failedFiles(tests: TestResult[]): string[] {
  return tests.filter((t) => t.kind === 'file' && t.status === 'failed').map((t) => t.file ?? t.id);
}

/** Without a target: a run fails only when a test failed, and passes only when tests ran, loaded and passed. */
function judgeSuite(record: RunRecord): RunVerdict {
  const tests = record.tests.filter(isTestEntry);
  if (tests.some((t) => t.status === 'failed')) return { kind: 'fail' };
  const broken = failedFiles(record.tests);
  if (broken.length > 0) return { kind: 'skip', reason: `${broken.slice(0, 2).join(', ')} failed to load` };
  if (!tests.some((t) => t.status === 'passed')) return { kind: 'skip', reason: 'no tests ran' };
  if (record.exitCode !== 0) return { kind: 'skip', reason: `exit ${record.exitCode} with no failing test` };
  return { kind: 'pass' };
}

function judgeTarget(record: RunRecord, target: TargetTest): RunVerdict {
  const mine = record.tests.filter((t) => matchesTarget(t, target));
  if (mine.some((t) => t.status === 'failed')) return { kind: 'fail' };
  if (mine.some((t) => t.status === 'passed')) return { kind: 'pass' };
  if (mine.length > 0) return { kind: 'skip', reason: `${target.spec} did not run` };
  const broken = failedFiles(record.tests).filter((f) => target.file === null || sameFile(f, target.file));
  if (broken.length > 0) return { kind: 'skip', reason: `${broken.slice(0, 2).join(', ')} failed to load` };
  return { kind: 'skip', reason: `${target.spec} is not in the report` };
}

/** The exit status is all there is: 0 passes, 125 skips (as for `git bisect run`), anything else fails. */
function judgeExitCode(record: RunRecord): RunVerdict {
  if (record.exitCode === 0) return { kind: 'pass' };
  if (record.exitCode === 125) return { kind: 'skip', reason: 'exit 125' };
  return record.exitCode === null ? { kind: 'skip', reason: 'killed by a signal' } : { kind: 'fail' };
}

export function judgeRun(record: RunRecord, format: ResultFormat, target: TargetTest | null): RunVerdict {
  if (record.timedOut) return { kind: 'skip', reason: 'timed out' };
  if (format === 'exit-code') return judgeExitCode(record);
  if (!record.reported) return { kind: 'skip', reason: `no test report (exit ${record.exitCode})` };
  return target ? judgeTarget(record, target) : judgeSuite(record);
}

/** A `branching flaky --json` report, as far as the flake-rate prior needs it. */
interface FlakyReportShape {
  tests?: Array<{ id?: unknown; verdict?: unknown; isolated?: { passed?: unknown; failed?: unknown } }>;
}

/**
 * The isolated runs of the target test (or, without one, of the report's only
 * flaky test) in an earlier `branching flaky --json` report: evidence about θ.
 */
export function flakeEvidenceFromReport(
  report: unknown,
  target: TargetTest | null,
  path: string,
): { failed: number; passed: number; id: string } {
  const tests = (report as FlakyReportShape | null)?.tests;
  if (!Array.isArray(tests)) {
    throw new ArgumentError(`${path} is not a branching flaky --json report (no tests array)`, {
      argument: 'prior',
      path,
    });
  }
  const entries = tests.filter(
    (t) => typeof t.id === 'string' && typeof t.isolated?.failed === 'number' && typeof t.isolated.passed === 'number',
  );
  const chosen = target
    ? entries.filter((t) =>
        matchesTarget({ id: t.id as string, file: fileOfId(t.id as string), status: 'passed', kind: 'test' }, target),
      )
    : entries.filter((t) => t.verdict === 'flaky');
  if (chosen.length !== 1) {
    const what = target ? `tests matching ${JSON.stringify(target.spec)}` : 'flaky tests (pass --test to choose one)';
    throw new ArgumentError(`${path} has ${chosen.length} ${what}; the prior needs exactly one`, {
      argument: 'prior',
      path,
    });
  }
  const t = chosen[0] as { id: string; isolated: { failed: number; passed: number } };
  return { failed: t.isolated.failed, passed: t.isolated.passed, id: t.id };
}

function fileOfId(id: string): string | null {
  const at = id.indexOf(' > ');
  return at < 0 ? null : id.slice(0, at);
}

/** Reads an earlier `branching flaky --json` report: the flake-rate evidence for `test` (see flakeEvidenceFromReport). */
export async function loadFlakePrior(
  path: string,
  test?: string,
): Promise<{ failed: number; passed: number; id: string }> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ArgumentError(`prior ${path} is not a readable JSON file`, { argument: 'prior', path, cause: err });
  }
  return flakeEvidenceFromReport(json, parseTarget(test), path);
}
