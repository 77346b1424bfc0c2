// Watch mode, as `vitest` runs by default in a terminal: the first run, a rerun after a test file
// changed, and quitting. Each run's files get fresh branches from the pool's workers, the tree keeps
// only the user's own edit, and quitting leaves no worker behind.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { repoRoot } from '../../helpers/build.ts';
import { type FixtureProject, fixtureProject, git } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');

const vitestHome = process.env.BRANCHING_TEST_VITEST_HOME;
const vitest = join(
  vitestHome ? join(vitestHome, 'node_modules') : join(repoRoot, 'node_modules'),
  'vitest',
  'vitest.mjs',
);
const node = process.env.BRANCHING_TEST_VITEST_NODE || process.execPath;

/** The output of a running Vitest, and a way to wait until it has printed something new. */
class Watched {
  output = '';
  private waiters: Array<() => void> = [];
  readonly closed: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    const take = (d: Buffer) => {
      this.output += d;
      for (const wake of this.waiters.splice(0)) wake();
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.closed = new Promise((resolve) => child.on('close', resolve));
  }

  /** Resolves with the output after `from` once it matches `pattern`. */
  async next(pattern: RegExp, from: number): Promise<string> {
    for (;;) {
      const text = this.output.slice(from);
      if (pattern.test(text)) return text;
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }
}

const IDLE = /(Waiting|Watching) for file changes/;

/** Processes whose command line names the project (workers, launchers, helpers). */
function processesOf(root: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(root) && !line.includes(' ps '));
}

let p: FixtureProject | undefined;
let watched: Watched | undefined;
afterEach(async () => {
  if (watched && watched.child.exitCode === null) {
    watched.child.kill('SIGKILL');
    await watched.closed;
  }
  watched = undefined;
  await p?.cleanup();
  p = undefined;
});

describe.skipIf(skip)('watch mode', () => {
  test('a rerun after a test file changed runs in fresh branches, and quitting leaves nothing behind', async () => {
    p = await fixtureProject('writes');
    const child = spawn(node, [vitest, '--watch', '--configLoader=runner', '--reporter=default'], {
      cwd: p.root,
      env: { ...process.env, TMPDIR: p.tmp, BRANCHING_STATE_DIR: p.state, NO_COLOR: '1', CI: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    watched = new Watched(child);
    const first = await watched.next(IDLE, 0);
    expect(first, watched.output).toMatch(/Tests\s+7 passed \(7\)/);

    // The user edits a test file: the new test writes into the project, as the others do.
    const mark = watched.output.length;
    appendFileSync(
      join(p.root, 'test', 'rollback.test.js'),
      "\ntest('added while watching', () => { require('node:fs').writeFileSync('watch-added.txt', 'x'); });\n",
    );
    const rerun = await watched.next(IDLE, mark);
    expect(rerun, watched.output).toMatch(/Tests\s+5 passed \(5\)/);

    child.kill('SIGTERM');
    await watched.closed;
    expect(await git(p, ['status', '--porcelain'])).toBe(' M test/rollback.test.js\n');
    expect(processesOf(p.root)).toEqual([]);
  });
});
