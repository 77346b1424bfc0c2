import { existsSync, readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Workspace } from '../../src/core/workspace.ts';
import { liveProcessesInGroup } from '../../src/suite/executor.ts';
import { bestOf, speculate } from '../../src/suite/speculate.ts';
import { speculateFixtures } from '../helpers/fixture-project.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const fakeRunner = [process.execPath, join(speculateFixtures, 'fake-runner.mjs')];
const quiet = { onNotice: () => {} };

let dir: { path: string; cleanup: () => Promise<void> };
let project: string;
let before: Snapshot;

beforeEach(async () => {
  dir = tempDir('branching-spec-bad-');
  project = join(dir.path, 'project');
  await writeTree(project, { mode: 'ok\n', value: 'bad\n', 'lib/keep.txt': 'unchanged\n' });
  before = await snapshot(project);
});
afterEach(() => dir.cleanup());

/** No branch may be left in the workspace's state dir once a run is over. */
async function expectNoBranchesLeft(ws: Workspace): Promise<void> {
  const branches = join(ws.stateDir, 'branches');
  expect(existsSync(branches) ? readdirSync(branches) : []).toEqual([]);
}

async function expectUnchanged(): Promise<void> {
  expect(await snapshot(project)).toEqual(before);
}

describe('bad input is a typed error that names the argument, and changes nothing', () => {
  test('an unknown framework', async () => {
    const ws = await Workspace.open(project, quiet);
    const run = speculate({ workspace: ws, candidates: [{ value: 'good\n' }], test: { framework: 'mocha' as 'jest' } });
    await expect(run).rejects.toMatchObject({
      name: 'ArgumentError',
      code: 'ERR_SPECULATE_UNKNOWN_FRAMEWORK',
      argument: 'test.framework',
    });
    await expectNoBranchesLeft(ws);
    await ws.close();
    await expectUnchanged();
  });

  test('no test command, and a framework that cannot be detected', async () => {
    const candidates = [{ value: 'good\n' }];
    await expect(speculate({ workspace: project, candidates, test: { command: [] } })).rejects.toMatchObject({
      name: 'ArgumentError',
      code: 'ERR_SPECULATE_NO_TEST_COMMAND',
    });
    await expect(speculate({ workspace: project, candidates, test: {} as never })).rejects.toMatchObject({
      code: 'ERR_SPECULATE_NO_TEST_COMMAND',
      argument: 'test.command',
    });
    await expect(speculate({ workspace: project, candidates, test: { framework: 'auto' } })).rejects.toMatchObject({
      code: 'ERR_SPECULATE_UNKNOWN_FRAMEWORK',
      path: project,
    });
    await expectUnchanged();
  });

  test('a missing patch file, a file map escaping the project, bad options', async () => {
    const test = { command: ['true'] };
    const missing = join(dir.path, 'nope.diff');
    await expect(speculate({ workspace: project, candidates: [{ patchFile: missing }], test })).rejects.toMatchObject({
      name: 'ArgumentError',
      code: 'ERR_SPECULATE_PATCH_FILE',
      path: missing,
      argument: 'candidates[0]',
    });
    await expect(
      speculate({ workspace: project, candidates: [{ value: 'x' }, { '../escape': 'x' }], test }),
    ).rejects.toMatchObject({ code: 'ERR_SPECULATE_FILE_PATH', argument: 'candidates[1]', path: '../escape' });
    await expect(speculate({ workspace: project, candidates: [], test })).rejects.toMatchObject({
      argument: 'candidates',
    });
    await expect(speculate({ workspace: project, candidates: ['x'], test, maxParallel: 0 })).rejects.toMatchObject({
      argument: 'maxParallel',
    });
    expect(existsSync(join(dir.path, 'escape'))).toBe(false);
    await expectUnchanged();
  });
});

describe('a baseline that cannot be judged stops the run with a typed error', () => {
  const cases = [
    ['crash', 'SuiteError', 'ERR_SUITE_CRASHED', /crashed \(killed by SIGSEGV\)/],
    ['garbage', 'SuiteError', 'ERR_SUITE_REPORT_INVALID', /is not JSON.*PASS {2}all good/],
    [
      'silent',
      'SuiteError',
      'ERR_SUITE_NO_REPORT',
      /without writing its JSON report.*boom: cannot find the test configuration/s,
    ],
  ] as const;
  test.each(cases)('a runner that goes %s', async (mode, name, code, message) => {
    await fs.writeFile(join(project, 'mode'), `${mode}\n`);
    before = await snapshot(project);
    const ws = await Workspace.open(project, quiet);
    const run = speculate({
      workspace: ws,
      candidates: [{ value: 'good\n' }],
      test: { framework: 'jest', command: fakeRunner },
    });
    const err = await run.catch((e) => e);
    expect(err).toMatchObject({ name, code });
    expect(err.message).toMatch(message);
    await expectNoBranchesLeft(ws);
    await ws.close();
    await expectUnchanged();
  });

  test('a hanging baseline is killed at the timeout, its whole process group with it', async () => {
    await fs.writeFile(join(project, 'mode'), 'hang\n');
    before = await snapshot(project);
    let pgid = 0;
    const run = speculate({
      workspace: project,
      candidates: [{ value: 'good\n' }],
      test: { framework: 'jest', command: fakeRunner },
      timeout: 300,
      maxParallel: 1,
      onProgress: (e) => {
        if (e.type === 'baseline' && e.baseline.pgid) pgid = e.baseline.pgid;
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'TimeoutError', code: 'ERR_SUITE_TIMEOUT' });
    expect(pgid).toBeGreaterThan(0);
    expect(liveProcessesInGroup(pgid)).toEqual([]);
    await expectUnchanged();
  });
});

describe('plain commands: the exit code decides', () => {
  const check = ['sh', '-c', 'test "$(cat value)" = good'];

  test('the passing file map is committed; a throwing function and a crashing suite fail only themselves', async () => {
    const outcome = await bestOf({
      workspace: project,
      candidates: [
        { name: 'still bad', files: { value: 'worse\n' } },
        {
          name: 'throws',
          apply: () => {
            throw new Error('no idea how to fix this');
          },
        },
        { value: 'good\n', 'lib/keep.txt': null, 'lib/new.txt': 'added\n' },
      ],
      test: { command: check },
      maxParallel: 2,
    });
    expect(outcome.framework).toBe('command');
    expect(outcome.baseline.failing).toEqual(['(command)']);
    const [bad, throws, good] = outcome.candidates;
    expect(bad).toMatchObject({ state: 'failed', stillFailing: ['(command)'] });
    expect(throws).toMatchObject({ state: 'error', error: { name: 'PatchError', code: 'ERR_PATCH_FUNCTION' } });
    expect(throws.error?.message).toContain('no idea how to fix this');
    expect(good).toMatchObject({ state: 'winner', fixed: ['(command)'] });
    expect(good.changedFiles.sort()).toEqual(['lib/keep.txt', 'lib/new.txt', 'value']);
    expect(outcome.committed).toBe(true);
    const after = await snapshot(project);
    const expected = { ...before };
    delete expected['lib/keep.txt'];
    expect(Object.keys(after).sort()).toEqual([...Object.keys(expected), 'lib/new.txt'].sort());
    expect(await fs.readFile(join(project, 'value'), 'utf8')).toBe('good\n');
    expect(await fs.readFile(join(project, 'lib/new.txt'), 'utf8')).toBe('added\n');
    expect(after.mode).toBe(before.mode);
  });

  test('a candidate whose suite crashes fails alone; the others go on', async () => {
    const outcome = await speculate({
      workspace: project,
      candidates: [{ mode: 'crash\n', value: 'good\n' }, { value: 'good\n' }],
      test: { framework: 'jest', command: fakeRunner },
      maxParallel: 1,
    });
    expect(outcome.candidates[0]).toMatchObject({
      state: 'error',
      error: { name: 'SuiteError', code: 'ERR_SUITE_CRASHED' },
    });
    expect(outcome.candidates[1].state).toBe('winner');
    expect(await fs.readFile(join(project, 'value'), 'utf8')).toBe('good\n');
    expect(await fs.readFile(join(project, 'mode'), 'utf8')).toBe('ok\n');
  });

  test('aborting the signal kills running suites, aborts every branch and rejects with its reason', async () => {
    const controller = new AbortController();
    const pgids: number[] = [];
    const ws = await Workspace.open(project, quiet);
    const run = speculate({
      workspace: ws,
      candidates: [{ value: 'good\n' }],
      test: { command: ['sh', '-c', 'sleep 1000 & wait'] },
      signal: controller.signal,
      maxParallel: 2,
      onProgress: (e) => {
        const pgid = e.type === 'baseline' ? e.baseline.pgid : e.type === 'candidate' ? e.candidate.pgid : null;
        if (pgid && !pgids.includes(pgid)) pgids.push(pgid);
        // Both suites started: stop everything.
        if (pgids.length === 2) controller.abort(new Error('stop now'));
      },
    });
    await expect(run).rejects.toThrow('stop now');
    for (const pgid of pgids) expect(liveProcessesInGroup(pgid)).toEqual([]);
    await expectNoBranchesLeft(ws);
    await ws.close();
    await expectUnchanged();
  });
});
