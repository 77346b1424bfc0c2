import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { tempDir } from '../helpers/tree.ts';

const CLI = join(repoRoot, 'dist', 'cli.js');
const cli = (args: string[], cliPath = CLI) =>
  spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env: { ...process.env, BRANCHING_QUIET: '1' } });
const tmp = tempDir('branching-cli-');
afterAll(() => tmp.cleanup());

describe('the branching command', () => {
  it('--version and -V print the package version', () => {
    assertBuilt();
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('-h and --help work on every subcommand', () => {
    for (const name of ['gc', 'run', 'speculate', 'best-of', 'flaky', 'bisect', 'polluter', 'doctor']) {
      for (const flag of ['-h', '--help']) {
        const r = cli([name, flag]);
        expect(r.status, `${name} ${flag}: ${r.stderr}`).toBe(0);
        expect(r.stdout, `${name} ${flag}`).toMatch(new RegExp(`usage: branching ${name}`));
        expect(r.stdout, `${name} ${flag}`).toMatch(/^ {2}-h, --help +print this help$/m);
      }
    }
  });

  it('loads the native addon and the launcher from a path with a space and a non-ASCII character', () => {
    const parent = join(tmp.path, 'josé dir');
    mkdirSync(parent);
    const link = join(parent, 'my proj');
    symlinkSync(repoRoot, link);
    // not through the symlink's target: node keeps the path as given with --preserve-symlinks-main
    const r = spawnSync(
      process.execPath,
      ['--preserve-symlinks', '--preserve-symlinks-main', join(link, 'dist', 'cli.js'), 'doctor', '--json'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { checks: Array<{ id: string; ok: boolean; detail: string }> };
    const addon = report.checks.find((c) => c.id === 'native-addon');
    expect(addon, JSON.stringify(report.checks.map((c) => c.id))).toBeDefined();
    expect(addon?.ok, addon?.detail).toBe(true);
  });
});

describe('one duration syntax', () => {
  it('every command takes --timeout 10m, 90s, 500ms or seconds, and refuses anything else with exit 2', () => {
    const required: Record<string, string[]> = {
      bisect: ['--good', 'HEAD', '--bad', 'HEAD'],
      polluter: ['--victim', 'a.test.js'],
      speculate: ['--patch', 'none.diff'],
    };
    for (const name of ['flaky', 'bisect', 'polluter', 'speculate']) {
      const bad = cli([name, ...(required[name] ?? []), '--timeout', 'soon', '--', 'true']);
      expect(bad.status, `${name}: ${bad.stderr}`).toBe(2);
      expect(bad.stderr).toMatch(/--timeout must be a duration like 90s, 10m or 500ms; got "soon"/);
    }
    const ok = cli([
      'flaky',
      '--timeout',
      '10m',
      '--runs',
      '1',
      '--shared-runs',
      '0',
      '--format',
      'exit-code',
      '--',
      'true',
    ]);
    expect(ok.status, ok.stderr).toBe(0);
  });
});

describe('branching run without a sandbox', () => {
  it('exits 126 with one line naming the reason', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--', 'true'], {
      encoding: 'utf8',
      env: { ...process.env, BRANCHING_LAUNCHER: '/nonexistent' },
    });
    expect(r.status, r.stderr).toBe(126);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n'), r.stderr).toEqual([
      'branching run: cannot sandbox: BRANCHING_LAUNCHER=/nonexistent does not exist',
    ]);
  });
});

describe('output streams', () => {
  it('flaky: progress on stderr, the report alone on stdout, and no escape sequence under NO_COLOR', () => {
    const project = join(tmp.path, 'streams');
    mkdirSync(project);
    const r = spawnSync(
      process.execPath,
      [CLI, 'flaky', '-C', project, '--runs', '2', '--shared-runs', '0', '--format', 'exit-code', '--', 'true'],
      { encoding: 'utf8', env: { ...process.env, BRANCHING_QUIET: '1', NO_COLOR: '1' } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/isolated run 2\/2/);
    expect(r.stdout).not.toMatch(/isolated run \d+\/2/);
    expect(r.stdout).toMatch(/verdict/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(String.fromCharCode(27));
  });
});
