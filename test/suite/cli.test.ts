import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../src/sandbox/launcher.ts';
import { speculateReportSchema } from '../../src/suite/report.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { copyFixture, monorepo, patchFile, topLevelPatch } from '../helpers/fixture-project.ts';
import { validate } from '../helpers/json-schema.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const cli = join(repoRoot, 'dist', 'cli.js');

function runCli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd,
      env: { ...process.env, BRANCHING_QUIET: '1', CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function parseReport(stdout: string): any {
  const report = JSON.parse(stdout);
  expect(validate(speculateReportSchema, report)).toEqual([]);
  return report;
}

beforeAll(() => {
  assertBuilt();
});

describe('plain-command project', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let project: string;
  let patches: string;
  let before: Snapshot;
  const check = ['--', 'sh', '-c', 'test "$(cat value)" = good'];

  beforeEach(async () => {
    dir = tempDir('branching-spec-cli-');
    project = join(dir.path, 'project');
    patches = join(dir.path, 'patches');
    await writeTree(project, { value: 'bad\n', 'other.txt': 'x\n' });
    const patch = (to: string) => `diff --git a/value b/value\n--- a/value\n+++ b/value\n@@ -1 +1 @@\n-bad\n+${to}\n`;
    await writeTree(patches, {
      '1-worse.diff': patch('worse'),
      '2-good.diff': patch('good'),
      '3-stale.diff': patch('good').replace('-bad', '-old'),
      'README.txt': 'not a patch',
    });
    before = await snapshot(project);
  });
  afterEach(() => dir.cleanup());

  test('best-of --json: a report valid against the schema, exit 0, the winner committed', async () => {
    const r = await runCli(['best-of', '--dir', patches, '--json', '--parallel', '2', ...check], project);
    expect(r.code).toBe(0);
    const report = parseReport(r.stdout);
    expect(report).toMatchObject({
      command: 'best-of',
      mode: 'best-of',
      committed: true,
      winner: 1,
      framework: 'command',
    });
    expect(report.candidates.map((c: { name: string; state: string }) => [c.name, c.state])).toEqual([
      ['1-worse.diff', 'failed'],
      ['2-good.diff', 'winner'],
      ['3-stale.diff', 'error'],
    ]);
    expect(report.candidates[2].error.message).toMatch(/patch does not apply/);
    const sandboxed = probeSandbox().available;
    for (const c of report.candidates) expect(c.isolation.sandboxed).toBe(sandboxed);
    expect(report.candidates[0].isolation.reason).not.toBe('');
    expect(await fs.readFile(join(project, 'value'), 'utf8')).toBe('good\n');
    expect((await snapshot(project))['other.txt']).toBe(before['other.txt']);
  });

  test('--dry-run exits 0 and changes nothing; no passing candidate exits 1', async () => {
    const dry = await runCli(
      ['speculate', '--patch', join(patches, '2-good.diff'), '--dry-run', '--json', ...check],
      project,
    );
    expect(dry.code).toBe(0);
    expect(parseReport(dry.stdout)).toMatchObject({ dryRun: true, committed: false, winner: 0 });
    expect(await snapshot(project)).toEqual(before);
    const none = await runCli(['speculate', '--patch', join(patches, '1-worse.diff'), '--json', ...check], project);
    expect(none.code).toBe(1);
    expect(parseReport(none.stdout)).toMatchObject({ winner: null, committed: false });
    expect(await snapshot(project)).toEqual(before);
  });

  test('bad input exits 2: with --json an error report, without it a message and the usage', async () => {
    const missing = await runCli(['speculate', '--patch', join(patches, 'nope.diff'), '--json', ...check], project);
    expect(missing.code).toBe(2);
    expect(parseReport(missing.stdout).error).toMatchObject({
      name: 'ArgumentError',
      code: 'ERR_SPECULATE_PATCH_FILE',
    });
    const noCandidates = await runCli(['speculate', ...check], project);
    expect(noCandidates.code).toBe(2);
    expect(noCandidates.stderr).toMatch(/no candidates.*\nusage: branching speculate/s);
    const badTimeout = await runCli(['best-of', '--dir', patches, '--timeout', 'soon', ...check], project);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toMatch(/--timeout must be a duration/);
    const nothingApplies = await runCli(
      [
        'speculate',
        '--patch',
        join(patches, '3-stale.diff'),
        '--patch',
        join(patches, '3-stale.diff'),
        '--json',
        ...check,
      ],
      project,
    );
    expect(nothingApplies.code).toBe(2);
    const error = parseReport(nothingApplies.stdout).error;
    expect(error).toMatchObject({ name: 'ArgumentError', code: 'ERR_SPECULATE_NOTHING_APPLIES' });
    expect(error.message.match(/candidate 3-stale\.diff: git apply failed:/g)).toHaveLength(2);
    expect(error.message).toMatch(/patch does not apply/);
    const noCommand = await runCli(
      ['speculate', '--dir', patches, '--json', '--', 'no-such-test-command-here', 'run'],
      project,
    );
    expect(noCommand.code).toBe(2);
    expect(parseReport(noCommand.stdout).error).toMatchObject({ code: 'ERR_SPECULATE_NO_TEST_COMMAND' });
    const noFramework = await runCli(['speculate', '--dir', patches], project);
    expect(noFramework.code).toBe(2);
    expect(noFramework.stderr).toMatch(/cannot tell which test framework/);
    expect(await snapshot(project)).toEqual(before);
  });
});

test('speculate -- npx vitest run: plain progress lines in CI, per-test results, the right fix committed', async () => {
  const p = copyFixture('vitest-project');
  try {
    const args = ['speculate', '--patch', patchFile('wrong'), '--patch', patchFile('right'), '--parallel', '3'];
    const r = await runCli([...args, '--', 'npx', 'vitest', 'run'], p.path);
    expect(r.code).toBe(0);
    // Progress on stderr, the result on stdout.
    expect(r.stderr).toMatch(/^baseline: 1 passed, 1 failed/m);
    expect(r.stderr).toMatch(/^\[2\] right\.diff: winner; 2 passed, 0 failed/m);
    expect(r.stdout).toMatch(/^winner: right\.diff, committed into /m);
    expect(r.stdout).not.toMatch(/^baseline:/m);
    expect(await fs.readFile(join(p.path, 'src/math.js'), 'utf8')).toContain('return a * b;');
  } finally {
    await p.cleanup();
  }
});

test('-C repo --cwd packages/x -- npx vitest run: per-test results in a package, a top-level patch committed', async () => {
  const { repo, cleanup } = monorepo();
  try {
    const patch = join(repo, '..', 'right.diff');
    await fs.writeFile(patch, topLevelPatch('right', 'packages/x').diff);
    const args = ['speculate', '-C', repo, '--cwd', 'packages/x', '--patch', patch, '--json'];
    const r = await runCli([...args, '--', 'npx', 'vitest', 'run'], repo);
    expect(r.code).toBe(0);
    const report = parseReport(r.stdout);
    expect(report).toMatchObject({ framework: 'vitest', cwd: 'packages/x', committed: true, uncommittedChanges: 0 });
    expect(report.baseline.failing).toEqual(['test/mul.test.js > multiplies']);
    expect(await fs.readFile(join(repo, 'packages/x/src/math.js'), 'utf8')).toContain('return a * b;');
  } finally {
    await cleanup();
  }
});
