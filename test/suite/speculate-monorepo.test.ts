import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { speculate } from '../../src/suite/speculate.ts';
import { monorepo, topLevelPatch } from '../helpers/fixture-project.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

test('vitest: patches made at the git top level apply in a package workspace', async () => {
  const { repo, cleanup } = monorepo();
  cleanups.push(cleanup);
  const outcome = await speculate({
    workspace: join(repo, 'packages/x'),
    candidates: [topLevelPatch('wrong', 'packages/x'), topLevelPatch('right', 'packages/x')],
    test: { framework: 'vitest' },
    maxParallel: 2,
  });
  expect(outcome.candidates.map((c) => [c.name, c.state, c.error])).toEqual([
    ['wrong (top level)', 'failed', null],
    ['right (top level)', 'winner', null],
  ]);
  expect(readFileSync(join(repo, 'packages/x/src/math.js'), 'utf8')).toContain('return a * b;');
});

test('jest: cwd runs the suite in a package of the workspace, with per-test results', async () => {
  const { repo, cleanup } = monorepo();
  cleanups.push(cleanup);
  const outcome = await speculate({
    workspace: repo,
    cwd: 'packages/y',
    candidates: [topLevelPatch('right', 'packages/y')],
    test: { framework: 'auto', command: ['npx', 'jest'] },
    maxParallel: 2,
  });
  expect(outcome).toMatchObject({ framework: 'jest', cwd: 'packages/y', committed: true });
  expect(outcome.baseline.failing).toEqual(['test/mul.test.js > multiplies']);
  expect(outcome.winner).toMatchObject({
    fixed: ['test/mul.test.js > multiplies'],
    changedFiles: ['packages/y/src/math.js'],
  });
  expect(readFileSync(join(repo, 'packages/y/src/math.js'), 'utf8')).toContain('return a * b;');
});
