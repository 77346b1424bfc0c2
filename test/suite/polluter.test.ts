import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBranchingError } from '../../src/base/errors.ts';
import { ddmin, expandCommand, findPolluter } from '../../src/suite/polluter.ts';
import { snapshot, tempDir } from '../helpers/tree.ts';
import { STABLE_TEST, writeProject } from './flaky-fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
let project: string;
beforeEach(() => {
  tmp = tempDir('branching-polluter-t-');
  project = join(tmp.path, 'project');
});
afterEach(() => tmp.cleanup());

/** Leaves a file in the project that the victim trips over. */
const POLLUTER = `import { mkdirSync, writeFileSync } from 'node:fs';
export const tests = { 'writes state': () => { mkdirSync('state', { recursive: true }); writeFileSync('state/flag', 'x'); } };
`;
/** Writes state the victim does not care about. */
const DECOY = `import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
export const tests = { 'writes elsewhere': () => { writeFileSync('decoy.txt', 'x'); writeFileSync(join(tmpdir(), 'decoy'), 'x'); } };
`;
const VICTIM = `import { existsSync } from 'node:fs';
export const tests = { 'expects a clean tree': () => { if (existsSync('state/flag')) throw new Error('polluted'); } };
`;

function pollutedProject(): void {
  writeProject(project, {
    '01-a.mjs': STABLE_TEST,
    '02-decoy.mjs': DECOY,
    '03-b.mjs': STABLE_TEST,
    '04-c.mjs': STABLE_TEST,
    '05-polluter.mjs': POLLUTER,
    '06-d.mjs': STABLE_TEST,
    '07-e.mjs': STABLE_TEST,
    '08-victim.mjs': VICTIM,
    '09-after.mjs': STABLE_TEST,
  });
}

const COMMAND = [process.execPath, 'run.mjs', '{tests}'];

describe('findPolluter', () => {
  it('finds the test file that breaks the victim, every trial in a fresh branch', async () => {
    pollutedProject();
    const before = await snapshot(project);
    const report = await findPolluter({ workspace: project, victim: 'tests/08-victim.mjs', command: COMMAND });
    expect(report.status).toBe('found');
    expect(report.polluters).toEqual(['tests/05-polluter.mjs']);
    // Discovered from the full run's report, in order, up to the victim.
    expect(report.candidates).toEqual([
      'tests/01-a.mjs',
      'tests/02-decoy.mjs',
      'tests/03-b.mjs',
      'tests/04-c.mjs',
      'tests/05-polluter.mjs',
      'tests/06-d.mjs',
      'tests/07-e.mjs',
    ]);
    // The first two trials are the victim alone (passes) and everything before it (fails).
    expect(report.trials[0]).toEqual({ tests: ['tests/08-victim.mjs'], victimFailed: false });
    expect(report.trials[1]?.victimFailed).toBe(true);
    // Each trial's verdict is exactly "did the polluter run first": no state leaked between trials.
    for (const trial of report.trials) {
      expect(trial.victimFailed).toBe(trial.tests.includes('tests/05-polluter.mjs'));
      expect(trial.tests.at(-1)).toBe('tests/08-victim.mjs');
    }
    expect(report.trials.length).toBeLessThanOrEqual(10);
    expect(await snapshot(project)).toEqual(before);
  });

  it('works on single tests too, and with explicit candidates', async () => {
    pollutedProject();
    const report = await findPolluter({
      workspace: project,
      victim: 'tests/08-victim.mjs > expects a clean tree',
      granularity: 'test',
      candidates: [
        'tests/02-decoy.mjs > writes elsewhere',
        'tests/05-polluter.mjs > writes state',
        'tests/01-a.mjs > adds',
      ],
      command: COMMAND,
    });
    expect(report.status).toBe('found');
    expect(report.polluters).toEqual(['tests/05-polluter.mjs > writes state']);
  });

  it('says so when the victim fails alone, or is not broken by what runs before it', async () => {
    pollutedProject();
    const alone = await findPolluter({
      workspace: project,
      victim: 'tests/08-victim.mjs',
      candidates: ['tests/01-a.mjs'],
      command: [process.execPath, '-e', 'process.exit(1)', '{tests}'],
      format: 'exit-code',
    });
    expect(alone.status).toBe('victim-fails-alone');
    expect(alone.trials).toHaveLength(1);
    const clean = await findPolluter({ workspace: project, victim: 'tests/07-e.mjs', command: COMMAND });
    expect(clean).toMatchObject({ status: 'not-reproduced', polluters: [] });
  });

  it('rejects a victim the suite does not have, naming it', async () => {
    pollutedProject();
    const err = await findPolluter({ workspace: project, victim: 'tests/nope.mjs', command: COMMAND }).catch((e) => e);
    expect(isBranchingError(err, 'ArgumentError')).toBe(true);
    expect(err.argument).toBe('victim');
    expect(err.message).toContain('tests/01-a.mjs');
  });
});

describe('ddmin', () => {
  it('isolates a single culprit in logarithmically many trials', async () => {
    const calls: number[][] = [];
    const found = await ddmin(32, async (s) => {
      calls.push(s);
      return s.includes(19);
    });
    expect(found).toEqual([19]);
    expect(calls.length).toBeLessThanOrEqual(2 * Math.log2(32) + 2);
  });

  it('keeps every member of an interaction that needs two tests', async () => {
    const found = await ddmin(10, async (s) => s.includes(2) && s.includes(7));
    expect(found).toEqual([2, 7]);
  });
});

describe('expandCommand', () => {
  it('replaces the {tests} argument with the tests, one argument each', () => {
    expect(expandCommand(['node', 'run.mjs', '{tests}', '--x'], ['a b', 'c'])).toEqual([
      'node',
      'run.mjs',
      'a b',
      'c',
      '--x',
    ]);
  });
});
