// A ts-jest project (its own preset) adds one line, the runner, and keeps vanilla's results: typed
// tests, git in temp repositories, writes into the project; afterwards the tree is as before.
import { afterEach, describe, expect, it } from 'vitest';
import { type FixtureProject, fixtureProject, type JestMode, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

// The sandbox comes with the runner; the environment alone is the clone fallback.
const CASES: Array<{ mode: JestMode; label: string; skip: boolean }> = MODES.map((m) => ({
  ...m,
  ...(m.mode === 'preset' ? { mode: 'runner' as const, label: 'sandbox (the runner line)' } : {}),
}));

describe('jest: a ts-jest project', () => {
  for (const { mode, label, skip } of CASES) {
    it.skipIf(skip)(`gives vanilla's results and leaves the tree as it was: ${label}`, async () => {
      project = fixtureProject('jest-tsjest', { git: true });
      const vanilla = await runJest(project, { mode: 'vanilla' });
      expect(vanilla.code, vanilla.stderr).toBe(1); // one test fails on purpose
      expect(Object.keys(vanilla.statuses)).toHaveLength(5);
      await project.cleanup();
      project = fixtureProject('jest-tsjest', { git: true });
      const before = await snapshot(project.root);
      const run = await runJest(project, { mode });
      expect(run.statuses, run.stderr).toEqual(vanilla.statuses);
      expect(run.code).toBe(vanilla.code);
      expect(await snapshot(project.root)).toEqual(before);
    });
  }
});
