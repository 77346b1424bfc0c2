// Per-test rollback and the options that change it (perTest, commit, keep, docblock), in both modes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, type FixtureProject, fixtureProject, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

const ROLLBACK = '__tests__/rollback.test.js';
const DOCBLOCK = '__tests__/docblock.test.js';

describe.each(MODES)('jest: per-test branches, $label', ({ mode, skip }) => {
  it.skipIf(skip)('rolls back every test (hooks included); a docblock can turn it off for one file', async () => {
    project = fixtureProject('jest-rollback');
    const before = await snapshot(project.root);
    const run = await runJest(project, { mode });
    expect(run.code, explain(run)).toBe(0);
    expect(run.statuses[`${ROLLBACK} > sees a only when branches are shared or committed`]).toBe('passed');
    expect(run.statuses[`${ROLLBACK} > a beforeEach write belongs to the test branch`]).toBe('passed');
    expect(run.statuses[`${ROLLBACK} > [quiet] TMPDIR is empty again`]).toBe('passed');
    expect(run.statuses[`${ROLLBACK} > [quiet] the late write is gone`]).toBe('passed');
    expect(run.statuses[`${DOCBLOCK} > sees c`]).toBe('passed');
    expect(await snapshot(project.root)).toEqual(before);
  });

  it.skipIf(skip)('perTest: false shares the file branch between tests (and still leaves the tree alone)', async () => {
    project = fixtureProject('jest-rollback');
    const before = await snapshot(project.root);
    const run = await runJest(project, {
      mode,
      options: { perTest: false },
      env: { JEST_FIXTURE_SHARED: '1', JEST_FIXTURE_SHARED_TMP: '1' },
      args: [ROLLBACK],
    });
    expect(run.code, explain(run)).toBe(0);
    expect(await snapshot(project.root)).toEqual(before);
  });

  it.skipIf(skip)('commit: true lands the writes of passing tests and of a passing file in the tree', async () => {
    project = fixtureProject('jest-rollback');
    const run = await runJest(project, {
      mode,
      options: { commit: true },
      env: { JEST_FIXTURE_SHARED: '1' },
      args: [ROLLBACK],
    });
    expect(run.code, explain(run)).toBe(0);
    expect(readFileSync(join(project.root, 'a.txt'), 'utf8')).toBe('from the first test');
    expect(readFileSync(join(project.root, 'hooked.txt'), 'utf8')).toBe('hook');
    // A deletion (whiteout) and a deleted-then-recreated directory (opaque) are committed too.
    expect(existsSync(join(project.root, 'gone.txt'))).toBe(false);
    expect(readdirSync(join(project.root, 'swap'))).toEqual(['new.txt']);
  });

  it.skipIf(skip)(
    'commit: true never commits a failing test; keep: on-failure keeps the failing branch and says where',
    async () => {
      project = fixtureProject('jest-rollback');
      const before = await snapshot(project.root);
      const run = await runJest(project, {
        mode,
        options: { commit: true, keep: 'on-failure' },
        env: { JEST_FIXTURE_SHARED: '1', JEST_FIXTURE_FAIL: '1' },
        args: [ROLLBACK],
      });
      expect(run.code).toBe(1);
      expect(run.statuses[`${ROLLBACK} > fails after writing b`]).toBe('failed');
      expect(existsSync(join(project.root, 'b.txt'))).toBe(false);
      const kept = /kept for inspection \(keep: 'on-failure'\): (.*)/.exec(run.stderr)?.[1].split(', ') ?? [];
      expect(kept.length, run.stderr).toBe(2); // the failing test's branch and its file's
      expect(readFileSync(join(kept[0], 'b.txt'), 'utf8')).toBe('evidence');
      if (mode === 'preset') {
        // The sandbox commits a passing test's layer into the project when the test ends (the
        // core's LayerStack.commitTo, through the journal): the failing file's own layer is kept.
        expect(readFileSync(join(project.root, 'a.txt'), 'utf8')).toBe('from the first test');
        expect(existsSync(join(kept[1], 'a.txt'))).toBe(false);
      } else {
        // The fallback commits a passing test into its file's clone, which a failing file never commits.
        expect(await snapshot(project.root)).toEqual(before);
        expect(existsSync(join(kept[1], 'a.txt'))).toBe(true);
      }
    },
  );

  it.skipIf(skip)('rejects a bad option with an error naming it', async () => {
    project = fixtureProject('jest-rollback');
    const run = await runJest(project, { mode, options: { keep: 'always' }, args: [ROLLBACK] });
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr + explain(run)).toContain(
      "testEnvironmentOptions.branching.keep must be 'never' or 'on-failure'; got \"always\"",
    );
  });
});
