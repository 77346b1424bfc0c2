// The cwd a test file captured at collection stays valid for all its tests, in the sandbox and in
// the fallback, from the project root and from a subdirectory; per-test rollback still holds there.
import { afterEach, describe, expect, it } from 'vitest';
import { type FixtureProject, fixtureProject, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

const EXPECTED = {
  '__tests__/cwd.test.js > the cwd is the one seen at collection, and a write through it lands': 'passed',
  '__tests__/cwd.test.js > the next test has the same cwd, and the write of the one before is rolled back': 'passed',
};

describe('jest: the cwd of a test file', () => {
  for (const { mode, label, skip } of MODES) {
    it.skipIf(skip)(`stays the collected one for every test, with per-test rollback: ${label}`, async () => {
      project = fixtureProject('jest-cwd');
      const before = await snapshot(project.root);
      const run = await runJest(project, { mode });
      expect(run.statuses, run.stderr).toEqual(EXPECTED);
      expect(await snapshot(project.root)).toEqual(before);
    });
  }
});
