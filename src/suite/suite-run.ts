import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ArgumentError, TimeoutError } from '../base/errors.ts';
import { packageRoot } from '../binaries.ts';
import { SuiteError } from './errors.ts';
import type { SuiteExecutor, SuiteExit } from './executor.ts';
import { inSubdir } from './flaky-exec.ts';
import {
  countTests,
  detectFramework,
  type Framework,
  frameworkOfCommand,
  progressReporterArgs,
  type ReportEntry,
  readJestReport,
  readProgress,
  reporterArgs,
  shorten,
  type TestStatus,
} from './test-report.ts';

export type { Framework, TestStatus };

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
  /** The subdirectory of the workspace the command runs in ('' for the workspace itself), '/'-separated. */
  cwd: string;
  /** argv prefix: the runner or the command; `{report}` is appended by the runner for frameworks. */
  argv: string[];
  args: string[];
}

export interface TestOutcome {
  id: string;
  status: TestStatus;
  /** `file`: a test file's own entry (see ReportEntry); `command`: a plain command's exit status. */
  kind: ReportEntry['kind'] | 'command';
  /** The test file, relative to where the command ran (none for a plain command). */
  file?: string;
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

/**
 * Validates a TestSpec and decides the framework; nothing runs yet. `cwd` is the subdirectory of the
 * workspace the command runs in (a package of a monorepo); detection and the runner's bin start there.
 */
export function resolveTest(spec: unknown, workspace: string, cwd = ''): ResolvedTest {
  const runDir = join(workspace, checkCwd(cwd, workspace));
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
    checkProgram((command as string[])[0]!, runDir);
    return { kind: 'command', cwd, argv: command as string[], args: args as string[] };
  }
  if (framework !== 'auto' && !FRAMEWORKS.includes(framework as string)) {
    throw new ArgumentError(
      `unknown test framework ${JSON.stringify(framework)}: use 'vitest', 'jest', 'auto', or a plain test.command`,
      { argument: 'test.framework', code: 'ERR_SPECULATE_UNKNOWN_FRAMEWORK' },
    );
  }
  const kind = framework === 'auto' ? frameworkOf(runDir, command as string[] | undefined) : (framework as Framework);
  if (command !== undefined) checkProgram((command as string[])[0]!, runDir);
  const argv = (command as string[] | undefined) ?? [process.execPath, resolveRunnerBin(kind, runDir, workspace)];
  return { kind, cwd, argv, args: args as string[] };
}

function checkCwd(cwd: unknown, workspace: string): string {
  const parts = typeof cwd === 'string' ? cwd.split('/') : [];
  const valid =
    typeof cwd === 'string' &&
    (cwd === '' || (!isAbsolute(cwd) && !parts.some((p) => p === '..' || p === '' || p === '.')));
  if (!valid) {
    throw new ArgumentError(
      `cwd must be a relative path inside the workspace, without '.' or '..'; got ${JSON.stringify(cwd)}`,
      {
        argument: 'cwd',
      },
    );
  }
  const dir = join(workspace, cwd as string);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ArgumentError(`cwd ${JSON.stringify(cwd)} is not a directory of ${workspace}`, {
      argument: 'cwd',
      path: dir,
    });
  }
  return cwd as string;
}

/** The test command's program must exist before any branch does: on PATH, or as a path from where it runs. */
function checkProgram(program: string, runDir: string): void {
  const candidates = program.includes('/')
    ? [resolve(runDir, program)]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, program));
  if (candidates.some((file) => isExecutable(file))) return;
  throw new ArgumentError(
    `the test command ${JSON.stringify(program)} was not found ${program.includes('/') ? `from ${runDir}` : 'on PATH'}`,
    { argument: 'test.command', path: program, code: 'ERR_SPECULATE_NO_TEST_COMMAND' },
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function isCommand(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((a) => typeof a === 'string') && value[0] !== '';
}

function frameworkOf(workspace: string, command: string[] | undefined): Framework {
  const found = detectFramework(workspace, command);
  if (found) return found;
  throw new ArgumentError(
    `cannot tell which test framework ${workspace} uses (no vitest or jest in package.json or config files): pass test.framework or test.command`,
    { argument: 'test.framework', path: workspace, code: 'ERR_SPECULATE_UNKNOWN_FRAMEWORK' },
  );
}

/**
 * The runner's bin script, found like Node resolves packages: node_modules in the workspace and
 * its ancestors. A bin inside the workspace is given relative to it, so each branch runs its own copy.
 */
function resolveRunnerBin(framework: Framework, runDir: string, workspace: string): string {
  for (let dir = runDir; ; dir = dirname(dir)) {
    const pkgFile = join(dir, 'node_modules', framework, 'package.json');
    if (existsSync(pkgFile)) {
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
      const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.[framework];
      const abs = join(dirname(pkgFile), bin);
      const inWorkspace = relative(workspace, abs);
      if (inWorkspace.startsWith('..') || isAbsolute(inWorkspace)) return abs;
      const rel = relative(runDir, abs);
      return rel.startsWith('..') ? rel : `.${sep}${rel}`;
    }
    if (dirname(dir) === dir) break;
  }
  throw new ArgumentError(`${framework} is not installed for ${runDir} (no node_modules/${framework} found)`, {
    argument: 'test.framework',
    path: runDir,
    code: 'ERR_SPECULATE_RUNNER_MISSING',
  });
}

/** The JSON report at the end, and a line per finished test as it goes (what a killed run leaves). */
function reportArgs(framework: Framework, reportFile: string): string[] {
  return [...reporterArgs(framework, reportFile), ...progressReporterArgs(framework, packageRoot())];
}

/** The full argv: the runner, its subcommand, the user's args, then the options that make it write Jest-shaped JSON to `reportFile`. */
export function suiteArgv(test: ResolvedTest, reportFile: string): string[] {
  if (test.kind === 'command') return [...test.argv, ...test.args];
  if (test.kind === 'vitest') {
    // `run` (no watch mode) must be the first word after the bin; a user's command usually has it.
    const subcommand = test.argv.includes('run') ? [] : ['run'];
    return [...test.argv, ...subcommand, ...test.args, ...reportArgs('vitest', reportFile)];
  }
  return [...test.argv, ...test.args, '--ci', ...reportArgs('jest', reportFile)];
}

/**
 * The argv of a first-stage run: only the test files related to `files` (absolute paths of changed
 * sources and of test files to include), through `vitest related` or `jest --findRelatedTests`.
 * Null when the command gives no handle for it (a plain command, a vitest behind a script).
 */
export function relatedArgv(test: ResolvedTest, files: string[], reportFile: string): string[] | null {
  if (test.kind === 'command') return null;
  if (test.kind === 'jest') {
    return [
      ...test.argv,
      ...test.args,
      '--ci',
      '--findRelatedTests',
      ...files,
      '--passWithNoTests',
      ...reportArgs('jest', reportFile),
    ];
  }
  const at = test.argv.findIndex((word) => frameworkOfCommand([word]) === 'vitest');
  if (at < 0) return null;
  const rest = test.argv.slice(at + 1);
  if (rest[0] === 'run') rest.shift();
  return [
    ...test.argv.slice(0, at + 1),
    'related',
    '--run',
    ...rest,
    ...test.args,
    ...files,
    ...reportArgs('vitest', reportFile),
  ];
}

export interface RunSuiteOptions {
  test: ResolvedTest;
  /** Run only the tests related to these files (absolute paths as the run sees them); see relatedArgv. */
  related?: string[];
  /** Called once the suite's processes are gone, before its report is read. */
  onExit?: (exit: SuiteExit) => void;
  /** Called when the run is killed (aborted or timed out), with the tests it had finished. */
  onKilled?: (finished: TestOutcome[]) => void;
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
    const progressFile = join(scratch, 'progress.jsonl');
    const argv = (options.related && relatedArgv(test, options.related, reportFile)) || suiteArgv(test, reportFile);
    const exit = await executor.run({
      branchDir: options.branchDir,
      workspaceDir: options.workspaceDir,
      writable: [scratch],
      argv: inSubdir(argv, test.cwd),
      env: {
        ...process.env,
        TMPDIR: privateTmp,
        TMP: privateTmp,
        TEMP: privateTmp,
        CI: process.env.CI ?? '1',
        BRANCHING_PROGRESS_FILE: progressFile,
      },
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      onStart: options.onStart,
    });
    options.onExit?.(exit);
    const projectDir = executor.projectPath(options.branchDir, options.workspaceDir);
    if ((exit.aborted || exit.timedOut) && options.onKilled && test.kind !== 'command') {
      options.onKilled(await readProgress(progressFile, join(projectDir, test.cwd), options.label));
    }
    if (exit.aborted) throw options.signal?.reason ?? new Error('aborted');
    if (exit.timedOut) {
      throw new TimeoutError(
        `${options.label}: the test suite did not finish within ${options.timeoutMs} ms; its process tree was killed`,
        { code: 'ERR_SUITE_TIMEOUT' },
      );
    }
    if (test.kind === 'command') return commandRun(exit);
    const run = await readReport(reportFile, exit, join(projectDir, test.cwd), test.kind, options.label);
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

async function readReport(
  file: string,
  exit: SuiteExit,
  projectDir: string,
  kind: Framework,
  label: string,
): Promise<SuiteRun> {
  const entries = await readJestReport(file, projectDir, `${label}: ${kind}`);
  if (entries === null) {
    const output = shorten(exit.stderrTail || exit.stdoutTail, 1500);
    const crashed = exit.signal !== null;
    throw new SuiteError(
      `${label}: ${kind} ${crashed ? `crashed (${describeExit(exit)})` : `exited with ${describeExit(exit)}`} without writing its JSON report${output ? `; its output ends with:\n${output}` : ''}`,
      { code: crashed ? 'ERR_SUITE_CRASHED' : 'ERR_SUITE_NO_REPORT', path: file },
    );
  }
  return { ...outcomesOf(entries), exit };
}

/** A parsed report as a judge reads it: outcomes by id, and counts of tests. */
export function outcomesOf(entries: ReportEntry[]): Omit<SuiteRun, 'exit'> {
  const tests = new Map<string, TestOutcome>();
  for (const entry of entries) tests.set(entry.id, { ...entry });
  return { tests, counts: countTests(entries) };
}
