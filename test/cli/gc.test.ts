import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBranchingError, Workspace } from '../../src/index.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { tempDir } from '../helpers/tree.ts';

const CLI = join(repoRoot, 'dist', 'cli.js');
const CHILD = join(repoRoot, 'test/fixtures/scripts/commit-child.mjs');

/** A child that opens a branch of `root` and is SIGKILLed with it open; its state goes where `env` says. */
async function dieWithOpenBranch(root: string, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, [CHILD, root, '', 'die-open'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  expect((await lines.next()).value).toBe('open');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('gc finds every state dir', () => {
  let tmp: ReturnType<typeof tempDir>;
  let env: NodeJS.ProcessEnv;
  const saved = { ...process.env };
  beforeEach(() => {
    assertBuilt();
    tmp = tempDir('branching-gc-');
    mkdirSync(join(tmp.path, 'tmp'));
    env = { ...process.env, XDG_CACHE_HOME: join(tmp.path, 'cache'), TMPDIR: join(tmp.path, 'tmp') };
    delete env.BRANCHING_STATE_DIR;
  });
  afterEach(async () => {
    process.env = { ...saved };
    await tmp.cleanup();
  });

  it('a branch made while the cache dir was unusable is still reclaimed by `gc <path>` once it is usable', async () => {
    const root = join(tmp.path, 'project');
    mkdirSync(root);
    // A cache "dir" that is a file: not even root can create state there, so it goes to $TMPDIR.
    writeFileSync(join(tmp.path, 'not-a-dir'), '');
    await dieWithOpenBranch(root, { ...env, XDG_CACHE_HOME: join(tmp.path, 'not-a-dir') });
    expect(readdirSync(join(tmp.path, 'tmp')).some((n) => n.startsWith('branching-'))).toBe(true);
    const gc = spawnSync(process.execPath, [CLI, 'gc', '--json', root], { env, encoding: 'utf8' });
    expect(gc.status, gc.stderr).toBe(0);
    const report = JSON.parse(gc.stdout);
    expect(report.schemaVersion).toBe(1);
    expect(report.workspaces[0].report.reclaimedBranches).toBe(1);
  });

  it('`gc` with no path reclaims every workspace of this user and removes the state of projects that are gone', async () => {
    const kept = join(tmp.path, 'kept');
    const gone = join(tmp.path, 'gone');
    mkdirSync(kept);
    mkdirSync(gone);
    await dieWithOpenBranch(kept, env);
    await dieWithOpenBranch(gone, env);
    await import('node:fs/promises').then((fs) => fs.rm(gone, { recursive: true }));
    const gc = spawnSync(process.execPath, [CLI, 'gc'], { env, encoding: 'utf8' });
    expect(gc.status, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(new RegExp(`${kept}: reclaimed 1 dead branch`));
    expect(gc.stdout).toMatch(new RegExp(`${gone}: the project is gone; removed its state`));
    const cacheRoot = join(tmp.path, 'cache', 'branching');
    expect(readdirSync(cacheRoot)).toHaveLength(1); // only the kept project's state is left
    expect(existsSync(kept)).toBe(true);
  });

  it('bad Workspace options are ArgumentErrors naming them, and create nothing', () => {
    const root = join(tmp.path, 'project');
    mkdirSync(root);
    process.env.XDG_CACHE_HOME = env.XDG_CACHE_HOME;
    for (const [options, argument] of [
      [{ fallback: 'yes' }, 'fallback'],
      [{ onNotice: 'print' }, 'onNotice'],
      [{ stateDirectory: '/tmp' }, 'stateDirectory'],
      [{ backend: 'zfs' }, 'backend'],
      [{ stateDir: 5 }, 'stateDir'],
    ] as const) {
      let err: unknown;
      try {
        new Workspace(root, options as never);
      } catch (e) {
        err = e;
      }
      expect(isBranchingError(err, 'ArgumentError'), JSON.stringify(options)).toBe(true);
      expect(err).toMatchObject({ argument });
    }
    expect(readdirSync(root)).toEqual([]);
    expect(existsSync(join(tmp.path, 'cache'))).toBe(false);
  });
});
