// What real suites hit: a temp dir cached at first use, hooks whose writes outlive a test, and a
// test that depends on an earlier test's file (which per-test rollback removes).
import { afterEach, describe, expect, it } from 'vitest';
import { explain, type FixtureProject, fixtureProject, type JestMajor, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

describe.each(MODES)('jest: lifetimes, $label', ({ mode, skip }) => {
  it.skipIf(skip).each([30, 28] as JestMajor[])(
    'Jest %i: a temp dir cached at first use stays valid for later tests, and its content still rolls back',
    async (jest) => {
      project = fixtureProject('jest-tmpdir');
      const before = await snapshot(project.root);
      const run = await runJest(project, { mode, jest });
      expect(run.statuses, explain(run)).toEqual({
        '__tests__/cached.test.js > A writes into the cached temp dir': 'passed',
        '__tests__/cached.test.js > B writes and reads there: no ENOENT, and A is rolled back': 'passed',
      });
      expect(await snapshot(project.root)).toEqual(before);
    },
  );

  it.skipIf(skip)('beforeAll/afterAll writes belong to the file branch, whatever the tests write', async () => {
    project = fixtureProject('jest-hooks');
    const before = await snapshot(project.root);
    const run = await runJest(project, { mode, args: ['__tests__/hooks.test.js'] });
    expect(run.code, explain(run)).toBe(0);
    expect(Object.values(run.statuses)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(await snapshot(project.root)).toEqual(before);
  });

  it.skipIf(skip)(
    'tests that write nothing share one mount; a beforeAll after them still writes into the file branch',
    async () => {
      project = fixtureProject('jest-hooks');
      const before = await snapshot(project.root);
      const run = await runJest(project, { mode, args: ['__tests__/spare.test.js'] });
      if (mode === 'environment') {
        // The clone fallback hands each test a fresh copy, so a descriptor opened before the test
        // writes into the file's copy, which the test does not see (its notice says so).
        expect(Object.values(run.statuses)).toEqual(['passed', 'passed', 'passed', 'failed']);
        expect(run.stderr.replace(/\s+/g, ' ')).toContain('files that code outside a test keeps open');
      } else {
        expect(run.code, explain(run)).toBe(0);
        expect(Object.values(run.statuses)).toEqual(['passed', 'passed', 'passed', 'passed']);
      }
      expect(await snapshot(project.root)).toEqual(before);
    },
  );

  it.skipIf(skip)('concurrent tests share the file branch, and a notice says so', async () => {
    project = fixtureProject('jest-hooks');
    const before = await snapshot(project.root);
    const run = await runJest(project, { mode, args: ['__tests__/concurrent.test.js'] });
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr).toContain(
      `jest-environment-branching: the test.concurrent tests of ${project.root}/__tests__/concurrent.test.js share its file's branch`,
    );
    expect(await snapshot(project.root)).toEqual(before);
  });

  it.skipIf(skip)('a test failing on a file an earlier test wrote is told about the rollback', async () => {
    project = fixtureProject('jest-shared-files');
    const run = await runJest(project, { mode });
    expect(run.code).toBe(1);
    const [a, b] = run.results[0].assertionResults;
    expect(a.status).toBe('passed');
    expect(b.status).toBe('failed');
    expect(b.failureMessages.join('\n')).toContain('ENOENT');
    const hint =
      "`out/shared.json` was written by test 'A writes the fixture' of this file and rolled back after it; tests that share files need `perTest: false` (per file: docblock)";
    expect(b.failureMessages.join('\n')).toContain(hint);
    // With shared branches the same suite passes.
    const shared = await runJest(project, { mode, options: { perTest: false } });
    expect(shared.code, explain(shared)).toBe(0);
  });
});
