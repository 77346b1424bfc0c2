import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { SuiteError } from './errors.ts';

/**
 * Per-test results of Vitest and Jest, the one way every suite tool reads
 * them: which framework a command or project uses, the arguments that make it
 * write a Jest-shaped JSON report to a file, and the parser of that report.
 */
export type Framework = 'vitest' | 'jest';

export type TestStatus = 'passed' | 'failed' | 'skipped';

/**
 * One entry of a report. Ids are `<file relative to the project, / separated> > <describe> > ... > <test>`
 * for tests, and the bare file path for a file's own entry (`kind: 'file'`), which fails when the file
 * failed although none of its tests did (it did not load, or failed outside any test).
 */
export interface ReportEntry {
  id: string;
  file: string;
  status: TestStatus;
  kind: 'test' | 'file';
  /** The first failure message, shortened. */
  message?: string;
}

const CONFIG_EXTENSIONS = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'];

/** Which framework a command launches, judging by its words (`npx vitest run`, `node_modules/.bin/jest`). */
export function frameworkOfCommand(command: readonly string[]): Framework | null {
  for (const word of command) {
    const match = /^(vitest|jest)(\.[cm]?js)?$/.exec(word.split(/[\\/]/).pop() ?? '');
    if (match) return match[1] as Framework;
  }
  return null;
}

/** The command's words, then the project's package.json (dependencies, `jest` key, test script), then its config files. */
export function detectFramework(projectDir: string, command?: readonly string[]): Framework | null {
  const fromCommand = command ? frameworkOfCommand(command) : null;
  if (fromCommand) return fromCommand;
  const fromPackage = frameworkOfPackage(join(projectDir, 'package.json'));
  if (fromPackage) return fromPackage;
  for (const ext of CONFIG_EXTENSIONS) {
    if (existsSync(join(projectDir, `vitest.config.${ext}`))) return 'vitest';
    if (existsSync(join(projectDir, `jest.config.${ext}`))) return 'jest';
  }
  return null;
}

function frameworkOfPackage(file: string): Framework | null {
  let pkg: Record<string, any>;
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null; // no package.json, or an unreadable one: the config files decide
  }
  const deps = { ...pkg.dependencies, ...pkg.devDependencies };
  if ('vitest' in deps) return 'vitest';
  if ('jest' in deps || pkg.jest !== undefined) return 'jest';
  return frameworkOfCommand(String(pkg.scripts?.test ?? '').split(/\s+/));
}

/** The options that make the framework write its Jest-shaped JSON report to `reportFile`. */
export function reporterArgs(framework: Framework, reportFile: string): string[] {
  if (framework === 'vitest') return ['--reporter=json', `--outputFile=${reportFile}`];
  return ['--json', `--outputFile=${reportFile}`];
}

/**
 * The options that add the progress reporter (reporters/progress.cjs, one line per finished test in
 * the file BRANCHING_PROGRESS_FILE names), or none when this package was installed without it.
 */
export function progressReporterArgs(framework: Framework, packageDir: string | null): string[] {
  const reporter = packageDir && join(packageDir, 'reporters', 'progress.cjs');
  if (!reporter || !existsSync(reporter)) return [];
  // Jest's --reporters replaces the configured ones: keep its default output alongside.
  return framework === 'vitest' ? [`--reporter=${reporter}`] : ['--reporters=default', `--reporters=${reporter}`];
}

/** The tests a killed run had finished, from its progress file (see progressReporterArgs); none without one. */
export async function readProgress(file: string, projectDir: string, label: string): Promise<ReportEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const byFile = new Map<string, AssertionJson[]>();
  for (const line of text.split('\n')) {
    let entry: AssertionJson & { file?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // the last line of a killed run may be cut short
    }
    const list = byFile.get(entry.file ?? '?') ?? [];
    list.push(entry);
    byFile.set(entry.file ?? '?', list);
  }
  const testResults = [...byFile].map(([name, assertionResults]) => ({ name, assertionResults }));
  return parseJestReport({ testResults }, projectDir, label, file).filter((e) => e.kind === 'test');
}

/** A Jest-shaped report's status word as ours. */
export function statusOf(status: string | undefined): TestStatus {
  if (status === 'passed') return 'passed';
  if (status === 'failed') return 'failed';
  return 'skipped'; // pending, skipped, todo, disabled
}

interface AssertionJson {
  fullName?: string;
  title?: string;
  ancestorTitles?: string[];
  status?: string;
  failureMessages?: string[];
}

interface FileJson {
  name?: string;
  testFilePath?: string;
  status?: string;
  message?: string;
  assertionResults?: AssertionJson[];
}

/**
 * Vitest's JSON reporter and Jest's --json write the same shape: `testResults[]` (files: name,
 * status, message) each with `assertionResults[]` (ancestorTitles, title, status, failureMessages).
 * File paths are made relative to `projectDir` so ids are the same in every branch.
 */
export function parseJestReport(json: unknown, projectDir: string, label: string, file = ''): ReportEntry[] {
  const files = (json as { testResults?: unknown })?.testResults;
  if (!Array.isArray(files)) {
    throw new SuiteError(`${label}: the JSON report has no testResults array`, {
      code: 'ERR_SUITE_REPORT_INVALID',
      path: file,
    });
  }
  const entries: ReportEntry[] = [];
  for (const f of files as FileJson[]) {
    const rel = relativeTestFile(f.name ?? f.testFilePath ?? '?', projectDir);
    const assertions = Array.isArray(f.assertionResults) ? f.assertionResults : [];
    for (const a of assertions) {
      const title = [...(a.ancestorTitles ?? []), a.title ?? a.fullName ?? '?'].join(' > ');
      const status = statusOf(a.status);
      const message = status === 'failed' ? shorten((a.failureMessages ?? []).join('\n'), 1000) : undefined;
      entries.push({ id: `${rel} > ${title}`, file: rel, status, kind: 'test', message });
    }
    const fileFailed = f.status === 'failed' && !assertions.some((a) => statusOf(a.status) === 'failed');
    entries.push({
      id: rel,
      file: rel,
      status: fileFailed ? 'failed' : 'passed',
      kind: 'file',
      message: fileFailed ? shorten(f.message ?? 'the test file failed', 1000) : undefined,
    });
  }
  return entries;
}

/**
 * Reads and parses a report file: null when the runner wrote none; a SuiteError when it is not JSON
 * or not Jest-shaped.
 */
export async function readJestReport(file: string, projectDir: string, label: string): Promise<ReportEntry[] | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SuiteError(
      `${label}: the report is not JSON (${(err as Error).message}); it starts with ${JSON.stringify(text.slice(0, 80))}`,
      { code: 'ERR_SUITE_REPORT_INVALID', path: file, cause: err },
    );
  }
  return parseJestReport(json, projectDir, label, file);
}

/** Passed, failed and skipped tests (file entries are not tests). */
export function countTests(entries: Iterable<{ kind: string; status: TestStatus }>): {
  passed: number;
  failed: number;
  skipped: number;
} {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const e of entries) if (e.kind === 'test') counts[e.status]++;
  return counts;
}

export function shorten(text: string, max = 2000): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `${trimmed.slice(0, max)}…` : trimmed;
}

function relativeTestFile(name: string, projectDir: string): string {
  const rel = relative(projectDir, name);
  return (rel.startsWith('..') || isAbsolute(rel) ? name : rel).split(sep).join('/');
}
