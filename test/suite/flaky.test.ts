import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBranchingError } from '../../src/base/errors.ts';
import { isolatedSettled, measureFlakiness } from '../../src/suite/flaky.ts';
import { wilsonInterval } from '../../src/suite/stats.ts';
import { repoRoot } from '../helpers/build.ts';
import { linkNodeModules } from '../helpers/fixture-project.ts';
import { snapshot, tempDir } from '../helpers/tree.ts';
import {
  chance,
  flakyTest,
  PROJECT_CARRYOVER_TEST,
  STABLE_TEST,
  TMPDIR_CARRYOVER_TEST,
  writeFile,
  writeProject,
} from './flaky-fixtures.ts';

const RUNNER = [process.execPath, 'run.mjs'];

let tmp: ReturnType<typeof tempDir>;
let project: string;
beforeEach(() => {
  tmp = tempDir('branching-flaky-t-');
  project = join(tmp.path, 'project');
});
afterEach(() => tmp.cleanup());

const failuresOf = (salt: string, rate: number, indices: number[]) =>
  indices.filter((i) => chance(salt, i) < rate).length;

describe('measureFlakiness', () => {
  it('reports per-test flake rates and tells flaky tests from state-carryover ones', async () => {
    writeProject(project, {
      'a-stable.mjs': STABLE_TEST,
      'b-flaky.mjs': flakyTest('b', 0.3),
      'c-project.mjs': PROJECT_CARRYOVER_TEST,
      'd-tmpdir.mjs': TMPDIR_CARRYOVER_TEST,
    });
    const before = await snapshot(project);
    const runs = 10;
    const expectedFlakes = failuresOf('b', 0.3, [...Array(runs).keys()]);
    // The fixture's seeding must actually produce a flaky outcome for this test to mean anything.
    expect(expectedFlakes).toBeGreaterThan(0);
    expect(expectedFlakes).toBeLessThan(runs);
    const progress: string[] = [];
    const report = await measureFlakiness({
      workspace: project,
      command: RUNNER,
      runs,
      parallel: 2,
      sharedRuns: 3,
      onProgress: (e) => progress.push(`${e.phase}:${e.run.index}`),
    });
    const byId = Object.fromEntries(report.tests.map((t) => [t.id, t]));
    expect(report.format).toBe('json-file');
    expect(report.isolatedRuns).toBe(runs);
    expect(report.sharedRuns).toBe(3);

    const flaky = byId['tests/b-flaky.mjs > sometimes'];
    expect(flaky?.verdict).toBe('flaky');
    expect(flaky?.isolated.failed).toBe(expectedFlakes);
    expect(flaky?.isolated.passed).toBe(runs - expectedFlakes);
    expect(flaky?.isolated.interval).toEqual(wilsonInterval(expectedFlakes, runs));

    // Each isolated run had a fresh project and TMPDIR: the carryover tests never failed there,
    // but in the shared branch every run after the first found the previous run's marker.
    for (const id of ['tests/c-project.mjs > fresh project', 'tests/d-tmpdir.mjs > fresh tmp']) {
      expect(byId[id]?.isolated).toMatchObject({ passed: runs, failed: 0 });
      expect(byId[id]?.shared).toMatchObject({ passed: 1, failed: 2 });
      expect(byId[id]?.verdict).toBe('carryover');
    }
    expect(byId['tests/a-stable.mjs > adds']).toMatchObject({ verdict: 'stable', shared: { passed: 3, failed: 0 } });
    // The run itself never failed beyond its tests.
    expect(byId['(run)']?.verdict).toBe('stable');
    expect(progress.filter((p) => p.startsWith('isolated'))).toHaveLength(runs);
    expect(progress.filter((p) => p.startsWith('shared'))).toEqual(['shared:10', 'shared:11', 'shared:12']);
    // Nothing the runs wrote reached the project.
    expect(await snapshot(project)).toEqual(before);
    expect(existsSync(join(project, '.cache'))).toBe(false);
  });

  it('--until-confident stops at the first run where every verdict is settled', async () => {
    writeProject(project, { 'a-stable.mjs': STABLE_TEST, 'b-flaky.mjs': flakyTest('b', 0.3) });
    const threshold = 0.3;
    const report = await measureFlakiness({
      workspace: project,
      command: RUNNER,
      runs: 40,
      sharedRuns: 40,
      untilConfident: true,
      threshold,
    });
    // The rule, computed independently: stable needs the Wilson upper bound of 0/n below the
    // threshold; flaky needs one pass and one failure.
    let expected = 2;
    while (
      wilsonInterval(0, expected).high >= threshold ||
      failuresOf('b', 0.3, [...Array(expected).keys()]) === 0 ||
      failuresOf('b', 0.3, [...Array(expected).keys()]) === expected
    ) {
      expected++;
    }
    expect(report.isolatedRuns).toBe(expected);
    expect(report.settled).toBe(true);
    expect(report.stoppedEarly).toBe(true);
    expect(report.tests.find((t) => t.id === 'tests/b-flaky.mjs > sometimes')?.verdict).toBe('flaky');
    expect(report.tests.find((t) => t.id === 'tests/a-stable.mjs > adds')).toMatchObject({
      verdict: 'stable',
      settled: true,
    });
    // In the shared series only the clean-in-isolation tests matter: a stable one settles at the same n.
    let sharedExpected = 2;
    while (wilsonInterval(0, sharedExpected).high >= threshold) sharedExpected++;
    expect(report.sharedRuns).toBe(sharedExpected);
  });

  it('treats a plain command exit status as one pseudo-test', async () => {
    writeFile(join(project, 'README'), 'plain\n');
    const script = 'process.exit(Number(process.env.BRANCHING_RUN_INDEX) % 3 === 0 ? 1 : 0)';
    const report = await measureFlakiness({
      workspace: project,
      command: [process.execPath, '-e', script],
      runs: 6,
      sharedRuns: 0,
      format: 'exit-code',
    });
    expect(report.tests).toHaveLength(1);
    expect(report.tests[0]).toMatchObject({ id: '(run)', verdict: 'flaky', isolated: { failed: 2, passed: 4 } });
  });

  it('counts a crash without a report as a failure of the run, not as passing tests', async () => {
    writeFile(join(project, 'crash.mjs'), 'process.exit(3);\n');
    const report = await measureFlakiness({
      workspace: project,
      command: [process.execPath, 'crash.mjs'],
      runs: 2,
      sharedRuns: 0,
      format: 'vitest',
    });
    expect(report.tests).toEqual([expect.objectContaining({ id: '(run)', verdict: 'failing' })]);
  });

  it('runs the real Vitest with its JSON reporter in each branch', async () => {
    writeFile(
      join(project, 'vitest.config.mjs'),
      `import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
export default defineConfig({ cacheDir: join(tmpdir(), 'vite-cache'), test: { include: ['*.test.mjs'] } });
`,
    );
    writeFile(
      join(project, 'odd.test.mjs'),
      `import { expect, test } from 'vitest';
test('stable', () => expect(1).toBe(1));
test('odd runs fail', () => expect(Number(process.env.BRANCHING_RUN_INDEX) % 2).toBe(0));
`,
    );
    linkNodeModules(join(repoRoot, 'node_modules'), join(project, 'node_modules'));
    const report = await measureFlakiness({
      workspace: project,
      command: [process.execPath, join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run'],
      runs: 2,
      sharedRuns: 0,
    });
    expect(report.format).toBe('vitest');
    const byId = Object.fromEntries(report.tests.map((t) => [t.id, t]));
    expect(byId['odd.test.mjs > odd runs fail']).toMatchObject({
      verdict: 'flaky',
      isolated: { failed: 1, passed: 1 },
    });
    expect(byId['odd.test.mjs > stable']).toMatchObject({ verdict: 'stable', isolated: { passed: 2 } });
    expect(byId['(run)']?.isolated.failed).toBe(0);
  });

  it('runs the real Jest with --json --outputFile in each branch', async () => {
    writeFile(join(project, 'package.json'), '{ "name": "jest-fixture", "private": true }\n');
    writeFile(
      join(project, 'odd.test.js'),
      `test('stable', () => expect(1).toBe(1));
test('odd runs fail', () => expect(Number(process.env.BRANCHING_RUN_INDEX) % 2).toBe(0));
`,
    );
    linkNodeModules(join(repoRoot, 'node_modules'), join(project, 'node_modules'));
    const report = await measureFlakiness({
      workspace: project,
      command: [process.execPath, join('node_modules', 'jest', 'bin', 'jest.js'), '--ci'],
      runs: 2,
      sharedRuns: 0,
    });
    expect(report.format).toBe('jest');
    const byId = Object.fromEntries(report.tests.map((t) => [t.id, t]));
    expect(byId['odd.test.js > odd runs fail']).toMatchObject({ verdict: 'flaky', isolated: { failed: 1, passed: 1 } });
    expect(byId['odd.test.js > stable']).toMatchObject({ verdict: 'stable', isolated: { passed: 2 } });
  });

  it('rejects bad input with a typed error naming the argument, before creating anything', async () => {
    writeProject(project, { 'a.mjs': STABLE_TEST });
    const before = await snapshot(tmp.path);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ runs: 0 }, 'runs'],
      [{ runs: 2.5 }, 'runs'],
      [{ parallel: 0 }, 'parallel'],
      [{ threshold: 1 }, 'threshold'],
      [{ command: [] }, 'command'],
      [{ format: 'tap' }, 'format'],
      [{ workspace: join(tmp.path, 'missing') }, 'path'],
    ];
    for (const [override, argument] of cases) {
      const err = await measureFlakiness({ workspace: project, command: RUNNER, ...override } as never).catch((e) => e);
      expect(isBranchingError(err, 'ArgumentError'), String(err)).toBe(true);
      expect(err.argument).toBe(argument);
    }
    expect(await snapshot(tmp.path)).toEqual(before);
  });
});

describe('isolatedSettled', () => {
  it('settles on both outcomes at once, or on a Wilson bound below the threshold', () => {
    expect(isolatedSettled({ passed: 1, failed: 1, skipped: 0 }, 0.1)).toBe(true);
    expect(isolatedSettled({ passed: 34, failed: 0, skipped: 0 }, 0.1)).toBe(false);
    expect(isolatedSettled({ passed: 35, failed: 0, skipped: 0 }, 0.1)).toBe(true);
    expect(isolatedSettled({ passed: 0, failed: 35, skipped: 0 }, 0.1)).toBe(true);
    expect(isolatedSettled({ passed: 0, failed: 0, skipped: 3 }, 0.1)).toBe(false);
  });
});
