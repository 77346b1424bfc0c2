import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './build.ts';
import { tempDir } from './tree.ts';

/**
 * A fixture project of test/fixtures/vitest-<name>, copied into a fresh directory with its own git
 * repository, an ignored file, and node_modules linked to ours (so that it resolves vitest and
 * vitest-environment-branching). The run gets its own TMPDIR, state dir and Vite cache dir, all
 * outside the project, so the tests can compare the project and TMPDIR before and after.
 */
export interface FixtureProject {
  root: string;
  tmp: string;
  state: string;
  base: string;
  cleanup: () => Promise<void>;
}

/**
 * Which Vitest and Node run the fixtures: by default this repository's (Vitest 4 on the Node running
 * the suite); scripts/vitest-matrix.mjs points these at another install (Vitest 5 on Node 22).
 */
const vitestHome = process.env.BRANCHING_TEST_VITEST_HOME;
const fixtureNodeModules = vitestHome ? join(vitestHome, 'node_modules') : join(repoRoot, 'node_modules');
const fixtureNode = process.env.BRANCHING_TEST_VITEST_NODE || process.execPath;

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'fixture',
  GIT_AUTHOR_EMAIL: 'fixture@example.com',
  GIT_COMMITTER_NAME: 'fixture',
  GIT_COMMITTER_EMAIL: 'fixture@example.com',
};

export async function fixtureProject(name: string): Promise<FixtureProject> {
  const dir = tempDir('branching-vitest-');
  const root = join(dir.path, 'project');
  const tmp = join(dir.path, 'tmp');
  const state = join(dir.path, 'state');
  for (const d of [tmp, state, join(dir.path, 'cache')]) mkdirSync(d);
  cpSync(join(repoRoot, 'test', 'fixtures', `vitest-${name}`), root, { recursive: true });
  writeFileSync(join(root, 'ignored.txt'), 'ignored v1\n');
  symlinkSync(fixtureNodeModules, join(root, 'node_modules'));
  await run('git', ['init', '-q'], root);
  await run('git', ['add', '-A'], root);
  await run('git', ['commit', '-qm', 'fixture'], root);
  return { root, tmp, state, base: dir.path, cleanup: dir.cleanup };
}

/** The version of the Vitest the fixtures run (this repository's, or the matrix cell's). */
export const fixtureVitestVersion: string = JSON.parse(
  readFileSync(join(fixtureNodeModules, 'vitest', 'package.json'), 'utf8'),
).version;

/** git in a fixture project, with the fixture's author. */
export async function git(project: FixtureProject, args: string[]): Promise<string> {
  return (await run('git', args, project.root)).stdout;
}

export interface VitestRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Full name → state, from the JSON reporter. */
  results: Record<string, string>;
}

let runs = 0;

/** Runs the real Vitest CLI of this repository in the fixture project (mock nothing). */
export async function runVitest(
  project: FixtureProject,
  args: string[] = [],
  env: Record<string, string> = {},
  { cwd = project.root }: { cwd?: string } = {},
): Promise<VitestRun> {
  const report = join(project.base, `report-${++runs}.json`);
  const vitest = join(fixtureNodeModules, 'vitest', 'vitest.mjs');
  const argv = [vitest, 'run', '--configLoader=runner', '--reporter=default', '--reporter=json'];
  argv.push(`--outputFile.json=${report}`, ...args);
  const { code, stdout, stderr } = await run(fixtureNode, argv, cwd, {
    TMPDIR: project.tmp,
    BRANCHING_STATE_DIR: project.state,
    FIXTURE_CACHE_DIR: join(project.base, 'cache'),
    NO_COLOR: '1',
    ...env,
  });
  let results: Record<string, string> = {};
  try {
    results = parseReport(readFileSync(report, 'utf8'));
  } catch {
    // no report: the caller sees the exit code and output
  }
  return { code, stdout, stderr, results };
}

function parseReport(text: string): Record<string, string> {
  const json = JSON.parse(text) as {
    testResults: { name: string; assertionResults: { fullName: string; status: string }[] }[];
  };
  const out: Record<string, string> = {};
  for (const file of json.testResults) {
    const rel = file.name.split('/test/').pop();
    for (const t of file.assertionResults) out[`${rel} > ${t.fullName}`] = t.status;
  }
  return out;
}

/** Our own environment minus what the Vitest running this suite set for its workers. */
function outerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('VITEST') || key.startsWith('BRANCHING_VITEST') || key === 'TEST') delete env[key];
  }
  return env;
}

function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...outerEnv(), ...GIT_ENV, ...env },
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
      if (command === 'git' && code !== 0) reject(new Error(`git ${args.join(' ')} failed: ${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}
