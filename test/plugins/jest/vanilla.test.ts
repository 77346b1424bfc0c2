// A suite that writes nothing gives exactly the results of vanilla Jest, in every mode.
import { afterEach, describe, expect, it } from 'vitest';
import { type FixtureProject, fixtureProject, type JestRun, runJest } from '../../helpers/jest.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

/** What must not differ: every test's status and first failure line, and the exit code. */
function outcome(run: JestRun) {
  return {
    code: run.code,
    tests: run.results
      .flatMap((r) =>
        r.assertionResults.map((a) => `${a.fullName}: ${a.status} ${a.failureMessages[0]?.split('\n')[0] ?? ''}`),
      )
      .sort(),
  };
}

describe('jest: a non-writing suite', () => {
  for (const { mode, label, skip } of MODES) {
    it.skipIf(skip)(`gives the same results as vanilla Jest: ${label}`, async () => {
      project = fixtureProject('jest-pure');
      const vanilla = outcome(await runJest(project, { mode: 'vanilla' }));
      expect(vanilla.code).toBe(1); // one test fails on purpose
      expect(vanilla.tests).toHaveLength(8);
      expect(outcome(await runJest(project, { mode }))).toEqual(vanilla);
    });
  }

  for (const { mode, label, skip } of MODES.filter((m) => m.mode === 'preset')) {
    it.skipIf(skip)(`gives the same results as vanilla Jest under jest-environment-jsdom: ${label}`, async () => {
      project = fixtureProject('jest-pure');
      const args = ['--testEnvironment=jsdom'];
      const vanilla = outcome(await runJest(project, { mode: 'vanilla', args }));
      expect(vanilla.code).toBe(1);
      expect(vanilla.tests).toHaveLength(8);
      expect(outcome(await runJest(project, { mode, args }))).toEqual(vanilla);
    });
  }
});
