// The runner/preset: Jest workers born in the sandbox, each file's and each test's branch mounted at
// the project's own path. Runs as root and (scripts/test.mjs) as the unprivileged user nobody.
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveStateDir } from '../../../src/core/state.ts';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { explain, type FixtureProject, fixtureProject, type JestMajor, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the sandbox launcher', probe.reason ?? '');

const WRITES = [
  'relative write',
  'absolute write',
  '__dirname write',
  'TMPDIR write',
  '.git mutation',
  'sees the original data',
];
const FILES = ['__tests__/writes.test.js', '__tests__/nested/again.test.js'];

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

function hasOtherInterfaces(): boolean {
  return Object.keys(networkInterfaces()).some((name) => name !== 'lo');
}

/** Run dirs the runner made under the state dir and did not remove. */
function leftovers(p: FixtureProject): string[] {
  const state = resolveStateDir(realpathSync(p.root));
  expect(existsSync(state)).toBe(true);
  return readdirSync(state).filter((n) => n.startsWith('jest-run-'));
}

describe.skipIf(skip)('jest runner: workers in the sandbox', () => {
  it.each([30, 29, 28] as JestMajor[])(
    'Jest %i: relative, absolute, __dirname, TMPDIR and .git writes stay in per-test branches across reused workers',
    async (jest) => {
      project = fixtureProject('jest-writes', { git: true });
      const before = await snapshot(project.root);
      // One worker for both files: the second file must start from the real tree again.
      const run = await runJest(project, { jest, mode: 'preset', args: ['--maxWorkers=1'] });
      expect(run.code, explain(run)).toBe(0);
      for (const file of FILES) for (const t of WRITES) expect(run.statuses[`${file} > ${t}`]).toBe('passed');
      expect(await snapshot(project.root)).toEqual(before);
      const tmpdirs = run.reported.filter((l) => l.startsWith('tmpdir ')).map((l) => l.slice(7));
      expect(tmpdirs).toHaveLength(2);
      // One worker ran both files: its TMPDIR path stays the same for its whole life (libraries
      // cache os.tmpdir()), while the content rolls back (each test first checks tmp.txt is absent).
      expect(new Set(tmpdirs).size).toBe(1);
      for (const dir of tmpdirs) {
        expect(dir).not.toBe(tmpdir());
        expect(existsSync(dir)).toBe(false);
      }
      expect(leftovers(project)).toEqual([]);
      expect(run.reported.filter((l) => l.startsWith('sandbox '))).toEqual(['sandbox 1', 'sandbox 1']);
    },
  );

  it('--runInBand and a single file are isolated too (one sandboxed worker)', async () => {
    project = fixtureProject('jest-writes');
    const before = await snapshot(project.root);
    const run = await runJest(project, { mode: 'runner', args: ['--runInBand', '__tests__/writes.test.js'] });
    expect(run.code, explain(run)).toBe(0);
    expect(Object.values(run.statuses)).toEqual(WRITES.map(() => 'passed'));
    expect(await snapshot(project.root)).toEqual(before);
  });

  const noNetns = !skip && skipUnless(probe.netns, 'network namespaces', probe.reason ?? '');
  it.skipIf(noNetns)('network: false starts the workers without a network (loopback only)', async () => {
    project = fixtureProject('jest-network');
    if (hasOtherInterfaces()) {
      const vanilla = await runJest(project, { mode: 'vanilla' });
      expect(Object.values(vanilla.statuses)).toEqual(['failed', 'passed']);
    }
    const run = await runJest(project, { mode: 'preset', options: { network: false } });
    expect(run.code, explain(run)).toBe(0);
    expect(Object.values(run.statuses)).toEqual(['passed', 'passed']);
  });

  it('renaming a project directory: EXDEV without privileges (overlayfs in a user namespace), and the tree stays as it was', async () => {
    project = fixtureProject('jest-rename');
    const before = await snapshot(project.root);
    const run = await runJest(project, { mode: 'preset' });
    expect(run.code, explain(run)).toBe(0);
    const outcome = run.reported.find((l) => l.startsWith('rename '));
    if (process.getuid?.() !== 0) expect(outcome).toBe('rename EXDEV');
    else expect(['rename EXDEV', 'rename renamed']).toContain(outcome);
    expect(await snapshot(project.root)).toEqual(before);
  });

  it('concurrent runs on one project do not see each other and leave it unchanged', async () => {
    project = fixtureProject('jest-writes');
    const before = await snapshot(project.root);
    const runs = await Promise.all([
      runJest(project, { mode: 'preset', args: ['--maxWorkers=2'] }),
      runJest(project, { mode: 'preset', args: ['--maxWorkers=2'] }),
    ]);
    for (const run of runs) {
      expect(run.code, explain(run)).toBe(0);
      expect(Object.keys(run.statuses)).toHaveLength(FILES.length * WRITES.length);
    }
    expect(await snapshot(project.root)).toEqual(before);
  });
});
