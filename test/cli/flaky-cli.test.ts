import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { snapshot, tempDir } from '../helpers/tree.ts';
import { flakyTest, git, makeFlakyHistory, STABLE_TEST, writeProject } from '../suite/flaky-fixtures.ts';

const CLI = join(repoRoot, 'dist', 'cli.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, BRANCHING_QUIET: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => assertBuilt());
beforeEach(() => {
  tmp = tempDir('branching-flaky-cli-');
});
afterEach(() => tmp.cleanup());

describe('branching flaky / bisect / polluter', () => {
  it('flaky: exit 1 with a flaky test, 0 when all is stable; JSON on stdout, progress on stderr', async () => {
    const flakyProject = join(tmp.path, 'flaky');
    writeProject(flakyProject, { 'a.mjs': STABLE_TEST, 'b.mjs': flakyTest('b', 0.5) });
    const r = cli([
      'flaky',
      '--runs',
      '6',
      '--shared-runs',
      '1',
      '--json',
      '-C',
      flakyProject,
      '--',
      process.execPath,
      'run.mjs',
    ]);
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.tests.find((t: { id: string }) => t.id === 'tests/b.mjs > sometimes').verdict).toBe('flaky');
    expect(r.stderr).toMatch(/isolated run 6\/6/);

    const stableProject = join(tmp.path, 'stable');
    writeProject(stableProject, { 'a.mjs': STABLE_TEST });
    const ok = cli([
      'flaky',
      '--runs',
      '2',
      '--shared-runs',
      '1',
      '-C',
      stableProject,
      '--',
      process.execPath,
      'run.mjs',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/stable\?\s+0\/2\s+0\.0%\s+\[0\.0%, 65\.8%\]\s+0\/1\s+tests\/a\.mjs > adds/);
  });

  it('usage errors exit 2 and name the problem', () => {
    const noCommand = cli(['flaky', '--runs', '3']);
    expect(noCommand.code).toBe(2);
    expect(noCommand.stderr).toMatch(/after --/);
    const badRuns = cli(['flaky', '--runs', '0', '-C', tmp.path, '--', 'true']);
    expect(badRuns.code).toBe(2);
    expect(badRuns.stderr).toMatch(/runs must be an integer/);
    expect(cli(['bisect', '--good', 'x', '--', 'true']).code).toBe(2);
    expect(cli(['polluter', '--', 'true']).stderr).toMatch(/--victim/);
  });

  it('bisect: names the culprit, exit 0; a bad revision that never fails exits 1', async () => {
    const repo = join(tmp.path, 'repo');
    const { shas } = makeFlakyHistory(repo, { commits: 4, culprit: 3 });
    const before = await snapshot(repo);
    const r = cli([
      'bisect',
      '--good',
      shas[0] as string,
      '--bad',
      'main',
      '--json',
      '-C',
      repo,
      '--',
      process.execPath,
      'run.mjs',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.culprit.sha).toBe(shas[3]);
    expect(r.stderr).toMatch(/run \d+ at #\d+ [0-9a-f]{10}: (FAIL|pass)/);
    const quiet = cli([
      'bisect',
      '--good',
      shas[0] as string,
      '--bad',
      shas[2] as string,
      '--quiet',
      '--format',
      'exit-code',
      '-C',
      repo,
      '--',
      'true',
    ]);
    expect(quiet.code).toBe(1);
    expect(quiet.stdout).toMatch(/passed all 60 run\(s\): no failure to bisect/);
    // Without --format, a command that writes no per-test report gives no evidence, and says so.
    const noReport = cli([
      'bisect',
      '--good',
      shas[0] as string,
      '--bad',
      shas[2] as string,
      '--quiet',
      '-C',
      repo,
      '--',
      'true',
    ]);
    expect(noReport.code).toBe(1);
    expect(noReport.stdout).toMatch(/gave no usable run: nothing to bisect/);
    expect(noReport.stdout).toMatch(/pass --format exit-code/);
    expect(git(repo, 'rev-parse', 'HEAD')).toBe(shas[4]);
    expect(await snapshot(repo)).toEqual(before);
  });

  it('polluter: names the polluting file, exit 0', () => {
    const project = join(tmp.path, 'p');
    writeProject(project, {
      '1.mjs': STABLE_TEST,
      '2.mjs': `import { writeFileSync } from 'node:fs';\nexport const tests = { pollutes: () => writeFileSync('flag', '') };\n`,
      '3.mjs': `import { existsSync } from 'node:fs';\nexport const tests = { victim: () => { if (existsSync('flag')) throw new Error('x'); } };\n`,
    });
    const r = cli(['polluter', '--victim', 'tests/3.mjs', '-C', project, '--', process.execPath, 'run.mjs', '{tests}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/polluter: tests\/2\.mjs/);
  });
});
