import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { assertBuilt, repoRoot } from './build.ts';
import { commitAll, tempDir } from './tree.ts';

/**
 * The Jest majors the plugin is run with: 30 is the root devDependency, 29 and 28 the `jest29` and
 * `jest28` aliases; 27 (`jest27`) is outside the supported range, to check that it is refused.
 */
export const JEST_BINS = {
  30: join(repoRoot, 'node_modules', 'jest', 'bin', 'jest.js'),
  29: join(repoRoot, 'node_modules', 'jest29', 'bin', 'jest.js'),
  28: join(repoRoot, 'node_modules', 'jest28', 'bin', 'jest.js'),
  27: join(repoRoot, 'node_modules', 'jest27', 'bin', 'jest.js'),
} as const;
export type JestMajor = keyof typeof JEST_BINS;

export interface FixtureProject {
  /** The project root (a copy of test/fixtures/<name>). */
  root: string;
  /** Scratch space next to it: reports, Jest's cache. */
  scratch: string;
  cleanup: () => Promise<void>;
}

/**
 * Copies a fixture into a fresh temp dir and links the repo's node_modules into it, so that
 * `testEnvironment: 'branching'` and the preset resolve to this checkout's plugin.
 */
export function fixtureProject(name: string, { git = false } = {}): FixtureProject {
  assertBuilt();
  const dir = tempDir('branching-jest-');
  const root = join(dir.path, 'proj');
  cpSync(join(repoRoot, 'test', 'fixtures', name), root, { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  if (git) commitAll(root, 'fixture');
  return { root, scratch: dir.path, cleanup: dir.cleanup };
}

export type JestMode = 'vanilla' | 'environment' | 'runner' | 'preset';

export interface JestRunOptions {
  jest?: JestMajor;
  mode?: JestMode;
  /** testEnvironmentOptions.branching */
  options?: Record<string, unknown>;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Where Jest runs, relative to the project root (a package of a monorepo). */
  cwd?: string;
}

export interface AssertionResult {
  fullName: string;
  status: string;
  failureMessages: string[];
}

export interface JestRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** `fullName -> status` of every test, from Jest's own --json report. */
  statuses: Record<string, string>;
  results: Array<{ name: string; status: string; message: string; assertionResults: AssertionResult[] }>;
  /** Lines the fixture appended to JEST_FIXTURE_REPORT. */
  reported: string[];
}

let runCounter = 0;

/** Runs the real Jest CLI on a fixture project and collects its JSON report. */
export function runJest(project: FixtureProject, run: JestRunOptions = {}): Promise<JestRun> {
  const n = ++runCounter;
  const report = join(project.scratch, `report-${n}.json`);
  const lines = join(project.scratch, `lines-${n}.txt`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('BRANCHING_') || key.startsWith('JEST_')) delete env[key];
  Object.assign(env, {
    JEST_FIXTURE_MODE: run.mode ?? 'environment',
    JEST_FIXTURE_CACHE: join(project.scratch, `cache-${run.jest ?? 30}`),
    JEST_FIXTURE_REPORT: lines,
    // the fixtures report through files outside the project, which the sandbox makes read-only
    BRANCHING_WRITABLE: project.scratch,
    ...(run.options ? { JEST_FIXTURE_OPTIONS: JSON.stringify(run.options) } : {}),
    ...run.env,
  });
  const args = [JEST_BINS[run.jest ?? 30], '--json', `--outputFile=${report}`, ...(run.args ?? [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: join(project.root, run.cwd ?? ''),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const json = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : { testResults: [] };
      const statuses: Record<string, string> = {};
      for (const file of json.testResults) {
        for (const a of file.assertionResults)
          statuses[`${relativeName(project, file.name)} > ${a.fullName}`] = a.status;
      }
      const reported = existsSync(lines) ? readFileSync(lines, 'utf8').split('\n').filter(Boolean) : [];
      resolve({ code, stdout, stderr, statuses, results: json.testResults, reported });
    });
  });
}

function relativeName(project: FixtureProject, file: string): string {
  return file.startsWith(`${project.root}/`) ? file.slice(project.root.length + 1) : file;
}

/** A readable summary for failed expectations: the failure messages and Jest's stderr. */
export function explain(run: JestRun): string {
  const failures = run.results.flatMap((r) => [
    ...(r.message ? [r.message] : []),
    ...r.assertionResults.flatMap((a) => a.failureMessages),
  ]);
  return `exit ${run.code}\n${failures.join('\n')}\n--- stderr ---\n${run.stderr}`;
}
