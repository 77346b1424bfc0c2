import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { ArgumentError, TimeoutError } from '../base/errors.ts';
import { SuiteError } from './errors.ts';
import type { SuiteExecutor, SuiteExit } from './executor.ts';

export type Framework = 'vitest' | 'jest';

/**
 * The test suite that judges candidates:
 * - `{ framework: 'vitest' | 'jest' | 'auto', args?, command? }`: per-test results from the
 *   framework's JSON report. `command` is how to launch the runner (default: its bin, resolved in
 *   the project); report options are appended to it, then `args`.
 * - `{ command }`: any command; its exit code decides (one pseudo-test named `(command)`).
 */
export type TestSpec =
  | { framework: Framework | 'auto'; args?: string[]; command?: string[] }
  | { command: string[]; framework?: undefined; args?: string[] };

/** A validated TestSpec, with the framework (or `command`) decided. */
export interface ResolvedTest {
  kind: Framework | 'command';
  /** argv prefix: the runner or the command; `{report}` is appended by the runner for frameworks. */
  argv: string[];
  args: string[];
}

export type TestStatus = 'passed' | 'failed' | 'skipped';

export interface TestOutcome {
  id: string;
  status: TestStatus;
  /** `file`: a test file that failed as a whole (did not load, or crashed outside any test). */
  kind: 'test' | 'file' | 'command';
  /** The first failure message, shortened. */
  message?: string;
}

export interface SuiteRun {
  tests: Map<string, TestOutcome>;
  counts: { passed: number; failed: number; skipped: number };
  exit: SuiteExit;
}

const FRAMEWORKS: readonly string[] = ['vitest', 'jest'];
const COMMAND_ID = '(command)';

/** Validates a TestSpec and decides the framework; nothing runs yet. */
export function resolveTest(spec: unknown, workspace: string): ResolvedTest {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new ArgumentError('test must be { framework, args } or { command: [...] }', {
      argument: 'test',
      code: 'ERR_SPECULATE_TEST',
    });
  }
  const { framework, args = [], command } = spec as Record<string, unknown>;
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new ArgumentError('test.args must be an array of strings', { argument: 'test.args' });
  }
  if (command !== undefined && !isCommand(command)) {
    throw new ArgumentError(`test.command must be a non-empty array of strings; got ${JSON.stringify(command)}`, {
      argument: 'test.command',
      code: 'ERR_SPECULATE_NO_TEST_COMMAND',
    });
  }
  if (framework === undefined) {
    if (command === undefined) {
      throw new ArgumentError('test needs a command to run (test.command) or a framework (test.framework)', {
        argument: 'test.command',
        code: 'ERR_SPECULATE_NO_TEST_COMMAND',
      });
    }
    return { kind: 'command', argv: command as string[], args: args as string[] };
  }
  if (framework !== 'auto' && !FRAMEWORKS.includes(framework as string)) {
    throw new ArgumentError(
      `unknown test framework ${JSON.stringify(framework)}: use 'vitest', 'jest', 'auto', or a plain test.command`,
      { argument: 'test.framework', code: 'ERR_SPECULATE_UNKNOWN_FRAMEWORK' },
    );
  }
  const kind =
    framework === 'auto' ? detectFramework(workspace, command as string[] | undefined) : (framework as Framework);
  const argv = (command as string[] | undefined) ?? [process.execPath, resolveRunnerBin(kind, workspace)];
  return { kind, argv, args: args as string[] };
}

function isCommand(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((a) => typeof a === 'string') && value[0] !== '';
}

/** Which framework a command launches, judging by its words (`npx vitest run`, `node_modules/.bin/jest`). */
export function frameworkOfCommand(command: readonly string[]): Framework | null {
  for (const word of command) {
    const base = word.split(/[\\/]/).pop() ?? '';
    if (/^vitest(\.m?js)?$/.test(base)) return 'vitest';
    if (/^jest(\.js)?$/.test(base)) return 'jest';
  }
  return null;
}

/** `auto`: the command's words, then the project's package.json, then its config files. */
function detectFramework(workspace: string, command: string[] | undefined): Framework {
  const fromCommand = command ? frameworkOfCommand(command) : null;
  if (fromCommand) return fromCommand;
  const pkgFile = join(workspace, 'package.json');
  if (existsSync(pkgFile)) {
    try {
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
      const deps = { ...pkg.dependencies, ...pkg.devDependencies };
      if ('vitest' in deps) return 'vitest';
      if ('jest' in deps || pkg.jest !== undefined) return 'jest';
      const script = String(pkg.scripts?.test ?? '');
      const fromScript = frameworkOfCommand(script.split(/\s+/));
      if (fromScript) return fromScript;
    } catch {
      // An unreadable package.json: fall through to config files.
    }
  }
  for (const ext of ['ts', 'mts', 'js', 'mjs', 'cjs']) {
    if (existsSync(join(workspace, `vitest.config.${ext}`))) return 'vitest';
    if (existsSync(join(workspace, `jest.config.${ext}`))) return 'jest';
  }
  throw new ArgumentError(
    `cannot tell which test framework ${workspace} uses (no vitest or jest in package.json or config files): pass test.framework or test.command`,
    { argument: 'test.framework', path: workspace, code: 'ERR_SPECULATE_UNKNOWN_FRAMEWORK' },
  );
}

/**
 * The runner's bin script, found like Node resolves packages: node_modules in the workspace and
 * its ancestors. A bin inside the workspace is given relative to it, so each branch runs its own copy.
 */
function resolveRunnerBin(framework: Framework, workspace: string): string {
  for (let dir = workspace; ; dir = dirname(dir)) {
    const pkgFile = join(dir, 'node_modules', framework, 'package.json');
    if (existsSync(pkgFile)) {
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
      const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.[framework];
      const abs = join(dirname(pkgFile), bin);
      const rel = relative(workspace, abs);
      return rel.startsWith('..') || isAbsolute(rel) ? abs : `.${sep}${rel}`;
    }
    if (dirname(dir) === dir) break;
  }
  throw new ArgumentError(`${framework} is not installed for ${workspace} (no node_modules/${framework} found)`, {
    argument: 'test.framework',
    path: workspace,
    code: 'ERR_SPECULATE_RUNNER_MISSING',
  });
}

/** The full argv: the runner, its subcommand, the user's args, then the options that make it write Jest-shaped JSON to `reportFile`. */
export function suiteArgv(test: ResolvedTest, reportFile: string): string[] {
  if (test.kind === 'command') return [...test.argv, ...test.args];
  if (test.kind === 'vitest') {
    // `run` (no watch mode) must be the first word after the bin; a user's command usually has it.
    const subcommand = test.argv.includes('run') ? [] : ['run'];
    return [...test.argv, ...subcommand, ...test.args, '--reporter=json', `--outputFile=${reportFile}`];
  }
  return [...test.argv, ...test.args, '--ci', '--json', `--outputFile=${reportFile}`];
}

export interface RunSuiteOptions {
  test: ResolvedTest;
  executor: SuiteExecutor;
  branchDir: string;
  workspaceDir: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  onStart?: (info: { pid: number; pgid: number }) => void;
  /** Who is running, for error messages: `baseline` or `candidate 2 (fix.diff)`. */
  label: string;
}

/**
 * Runs the suite once in a branch, with a private TMPDIR, and reads per-test results. Throws
 * TimeoutError (hung), SuiteError (crashed, no report, unreadable report) or the abort reason.
 */
export async function runSuite(options: RunSuiteOptions): Promise<SuiteRun> {
  const { test, executor } = options;
  const scratch = await fs.mkdtemp(join(tmpdir(), 'branching-suite-'));
  try {
    const privateTmp = join(scratch, 'tmp');
    await fs.mkdir(privateTmp);
    const reportFile = join(scratch, 'report.json');
    const argv = suiteArgv(test, reportFile);
    const exit = await executor.run({
      branchDir: options.branchDir,
      workspaceDir: options.workspaceDir,
      writable: [scratch],
      argv,
      env: { ...process.env, TMPDIR: privateTmp, TMP: privateTmp, TEMP: privateTmp, CI: process.env.CI ?? '1' },
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      onStart: options.onStart,
    });
    if (exit.aborted) throw options.signal?.reason ?? new Error('aborted');
    if (exit.timedOut) {
      throw new TimeoutError(
        `${options.label}: the test suite did not finish within ${options.timeoutMs} ms; its process tree was killed`,
        { code: 'ERR_SUITE_TIMEOUT' },
      );
    }
    const projectDir = executor.projectPath(options.branchDir, options.workspaceDir);
    if (test.kind === 'command') return commandRun(exit);
    const run = await readReport(reportFile, exit, projectDir, test.kind, options.label);
    // Messages name the branch's private path; the user knows the project by its own.
    if (projectDir !== options.workspaceDir) {
      for (const t of run.tests.values())
        if (t.message) t.message = t.message.replaceAll(projectDir, options.workspaceDir);
    }
    return run;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

function commandRun(exit: SuiteExit): SuiteRun {
  const passed = exit.code === 0;
  const message = passed ? undefined : shorten(exit.stderrTail || exit.stdoutTail || describeExit(exit));
  const tests = new Map<string, TestOutcome>([
    [COMMAND_ID, { id: COMMAND_ID, status: passed ? 'passed' : 'failed', kind: 'command', message }],
  ]);
  return { tests, counts: { passed: passed ? 1 : 0, failed: passed ? 0 : 1, skipped: 0 }, exit };
}

function describeExit(exit: SuiteExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

function shorten(text: string, max = 2000): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `${trimmed.slice(0, max)}…` : trimmed;
}

async function readReport(
  file: string,
  exit: SuiteExit,
  projectDir: string,
  kind: Framework,
  label: string,
): Promise<SuiteRun> {
  const output = shorten(exit.stderrTail || exit.stdoutTail, 1500);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    const crashed = exit.signal !== null;
    throw new SuiteError(
      `${label}: ${kind} ${crashed ? `crashed (${describeExit(exit)})` : `exited with ${describeExit(exit)}`} without writing its JSON report${output ? `; its output ends with:\n${output}` : ''}`,
      { code: crashed ? 'ERR_SUITE_CRASHED' : 'ERR_SUITE_NO_REPORT', path: file },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SuiteError(
      `${label}: ${kind}'s report is not JSON (${(err as Error).message}); it starts with ${JSON.stringify(text.slice(0, 80))}`,
      { code: 'ERR_SUITE_REPORT_INVALID', path: file, cause: err },
    );
  }
  return { ...parseJestShapedReport(json, projectDir, label, file), exit };
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
  status?: string;
  message?: string;
  assertionResults?: AssertionJson[];
}

/**
 * Vitest's JSON reporter and Jest's --json write the same shape:
 * `testResults[]` (files: name, status, message) each with `assertionResults[]`
 * (ancestorTitles, title, status, failureMessages). Test ids are
 * `<file relative to the project> > <describe> > <test>`, stable across branches.
 */
export function parseJestShapedReport(
  json: unknown,
  projectDir: string,
  label: string,
  file = '',
): Omit<SuiteRun, 'exit'> {
  const files = (json as { testResults?: unknown })?.testResults;
  if (!Array.isArray(files)) {
    throw new SuiteError(`${label}: the JSON report has no testResults array`, {
      code: 'ERR_SUITE_REPORT_INVALID',
      path: file,
    });
  }
  const tests = new Map<string, TestOutcome>();
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const f of files as FileJson[]) {
    const rel = relativeTestFile(f.name ?? '?', projectDir);
    const assertions = Array.isArray(f.assertionResults) ? f.assertionResults : [];
    for (const a of assertions) {
      const title = [...(a.ancestorTitles ?? []), a.title ?? a.fullName ?? '?'].join(' > ');
      const id = `${rel} > ${title}`;
      const status = statusOf(a.status);
      counts[status]++;
      const message = status === 'failed' ? shorten((a.failureMessages ?? []).join('\n'), 1000) : undefined;
      tests.set(id, { id, status, kind: 'test', message });
    }
    // A file that failed although none of its tests did: it did not load, or failed outside any test.
    const fileFailed = f.status === 'failed' && !assertions.some((a) => statusOf(a.status) === 'failed');
    tests.set(rel, {
      id: rel,
      status: fileFailed ? 'failed' : 'passed',
      kind: 'file',
      message: fileFailed ? shorten(f.message ?? 'the test file failed', 1000) : undefined,
    });
  }
  return { tests, counts };
}

/** A Jest-shaped report's status word (also Vitest's json reporter) as ours. */
export function statusOf(status: string | undefined): TestStatus {
  if (status === 'passed') return 'passed';
  if (status === 'failed') return 'failed';
  return 'skipped'; // pending, skipped, todo, disabled
}

function relativeTestFile(name: string, projectDir: string): string {
  const rel = relative(projectDir, name);
  return (rel.startsWith('..') || isAbsolute(rel) ? name : rel).split(sep).join('/');
}
