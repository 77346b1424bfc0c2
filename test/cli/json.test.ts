// `--json` on every command: one document on stdout with its schemaVersion, and an error document,
// with the exit code the command has without --json, when it fails.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { commitAll, tempDir } from '../helpers/tree.ts';

const CLI = join(repoRoot, 'dist', 'cli.js');
const tmp = tempDir('branching-json-');
afterAll(() => tmp.cleanup());

interface Document {
  schemaVersion: number;
  command: string;
  error?: { name: string; code: string; message: string };
  [key: string]: unknown;
}

function cliJson(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; doc: Document; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: tmp.path,
    encoding: 'utf8',
    env: { ...process.env, BRANCHING_QUIET: '1', ...env },
  });
  let doc: Document;
  try {
    doc = JSON.parse(r.stdout) as Document;
  } catch {
    throw new Error(`branching ${args.join(' ')}: stdout is not one JSON document:\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.status, doc, stderr: r.stderr };
}

const SCHEMA_VERSIONS: Record<string, number> = {
  gc: 1,
  run: 1,
  speculate: 2,
  'best-of': 2,
  flaky: 1,
  bisect: 1,
  polluter: 1,
  doctor: 1,
};

let repo: string;
let patch: string;
beforeAll(() => {
  assertBuilt();
  repo = join(tmp.path, 'repo');
  spawnSync('mkdir', [repo]);
  writeFileSync(join(repo, 'f.txt'), 'a\n');
  commitAll(repo, 'one');
  writeFileSync(join(repo, 'f.txt'), 'a\nb\n');
  commitAll(repo, 'two');
  patch = join(tmp.path, 'c.diff');
  writeFileSync(patch, '--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,3 @@\n a\n b\n+c\n');
});

/** speculate and best-of on one patch, judged by the exit status of `true`. */
const patchRun = (command: string) => [
  command,
  '--json',
  '--dry-run',
  '-C',
  repo,
  '--patch',
  patch,
  '--framework',
  'none',
  '--',
  'true',
];

describe('--json reports', () => {
  const runs: Record<string, () => string[]> = {
    gc: () => ['gc', '--json', repo],
    doctor: () => ['doctor', '--json'],
    speculate: () => patchRun('speculate'),
    'best-of': () => patchRun('best-of'),
    flaky: () => [
      'flaky',
      '--json',
      '-C',
      repo,
      '--runs',
      '1',
      '--shared-runs',
      '0',
      '--format',
      'exit-code',
      '--',
      'true',
    ],
    bisect: () => [
      'bisect',
      '--json',
      '-C',
      repo,
      '--good',
      'HEAD~1',
      '--bad',
      'HEAD',
      '--runs',
      '2',
      '--format',
      'exit-code',
      '--',
      'true',
    ],
    polluter: () => [
      'polluter',
      '--json',
      '-C',
      repo,
      '--victim',
      'v',
      '--candidates',
      'a',
      '--format',
      'exit-code',
      '--',
      'true',
    ],
  };
  it.each(Object.keys(runs))('%s: one document with its schemaVersion and command', (name) => {
    const { code, doc, stderr } = cliJson(runs[name]?.() ?? []);
    expect(doc.schemaVersion, stderr).toBe(SCHEMA_VERSIONS[name]);
    expect(doc.command).toBe(name);
    expect(doc.error, stderr).toBeUndefined();
    // bisect: the bad revision never fails; polluter: the victim never fails. Both are reports, exit 1.
    expect(code, stderr).toBe(name === 'bisect' || name === 'polluter' ? 1 : 0);
  });
});

describe('--json error documents', () => {
  it.each(Object.keys(SCHEMA_VERSIONS))('%s: a usage error is an error document, exit 2', (name) => {
    const { code, doc } = cliJson([name, '--json', '--no-such-option', '--', 'true']);
    expect(code).toBe(2);
    expect(doc).toEqual({
      schemaVersion: SCHEMA_VERSIONS[name],
      command: name,
      error: {
        name: 'TypeError',
        code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
        message: expect.stringContaining('--no-such-option'),
      },
    });
  });

  it('bad input found at run time is an error document too, exit 2', () => {
    const { code, doc } = cliJson(['flaky', '--json', '--runs', 'zero', '--', 'true']);
    expect(code).toBe(2);
    expect(doc.error).toEqual({
      name: 'UsageError',
      code: 'ERR_BRANCHING_USAGE',
      message: '--runs must be an integer; got "zero"',
    });
    const missing = cliJson(['speculate', '--json', '--patch', join(tmp.path, 'none.diff'), '--', 'true']);
    expect(missing.code).toBe(2);
    expect(missing.doc.error?.code).toBe('ERR_SPECULATE_PATCH_FILE');
  });

  it('run: a sandbox that cannot be set up is an error document, exit 126', () => {
    const { code, doc } = cliJson(['run', '--json', '--', 'true'], { BRANCHING_LAUNCHER: '/nonexistent' });
    expect(code).toBe(126);
    expect(doc).toEqual({
      schemaVersion: 1,
      command: 'run',
      error: {
        name: 'NamespaceError',
        code: expect.any(String),
        message: 'cannot sandbox: BRANCHING_LAUNCHER=/nonexistent does not exist',
      },
    });
  });

  it('speculate: an interrupt is an error document, exit 130', async () => {
    const marker = `3141.${process.pid}`; // the seconds of a sleep that no other process runs
    const child = spawn(
      process.execPath,
      [
        CLI,
        'speculate',
        '--json',
        '--dry-run',
        '--no-cache',
        '-C',
        repo,
        '--patch',
        patch,
        '--framework',
        'none',
        '--',
        'sleep',
        marker,
      ],
      { cwd: tmp.path, env: { ...process.env, BRANCHING_QUIET: '1' } },
    );
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    const closed = new Promise<number | null>((done) => child.on('close', done));
    try {
      await until(() => sleepRunning(marker) || child.exitCode !== null);
      child.kill('SIGINT');
      expect(await closed).toBe(130);
    } finally {
      child.kill('SIGKILL');
    }
    expect(JSON.parse(stdout)).toMatchObject({
      schemaVersion: 2,
      command: 'speculate',
      error: { code: 'ERR_BRANCHING_INTERRUPTED' },
    });
  });

  it('an unknown command is an error document, exit 2', () => {
    const { code, doc } = cliJson(['no-such-command', '--json']);
    expect(code).toBe(2);
    expect(doc.error).toMatchObject({ code: 'ERR_BRANCHING_USAGE', message: 'unknown command "no-such-command"' });
  });
});

/** A `sleep SECONDS` process runs (not merely a process with those words among its arguments). */
function sleepRunning(seconds: string): boolean {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .some((pid) => {
      try {
        const [program, first] = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return basename(program ?? '') === 'sleep' && first === seconds;
      } catch {
        return false; // it exited meanwhile
      }
    });
}

/** Waits for a condition the test cannot be told about (a process of a process it started). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((done) => setTimeout(done, 50));
}
