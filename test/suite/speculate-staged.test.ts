import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { bestOf, type CandidateResult, speculate } from '../../src/suite/speculate.ts';
import { copyFixture, patchFile } from '../helpers/fixture-project.ts';
import { snapshot } from '../helpers/tree.ts';

const byName = (results: CandidateResult[], name: string) => results.find((r) => r.name === name)!;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Fixes `mul`, and changes the data file that test/greeting.test.js reads: no module graph relates the two. */
function fixAndBreak(path: string) {
  const math = readFileSync(join(path, 'src/math.js'), 'utf8').replace(
    'return a + b;\n}\n\n//',
    'return a * b;\n}\n\n//',
  );
  return { name: 'fixes mul, breaks greeting', files: { 'src/math.js': math, 'data/greeting.txt': 'bye\n' } };
}

describe.each(['vitest', 'jest'] as const)('staged evaluation (%s)', (framework) => {
  test('a candidate that fixes the failing test but breaks an unrelated file is never committed', async () => {
    const p = copyFixture(`staged-${framework}`);
    cleanups.push(p.cleanup);
    const before = await snapshot(p.path);
    const outcome = await speculate({
      workspace: p.path,
      candidates: [fixAndBreak(p.path)],
      test: { framework },
      maxParallel: 2,
    });
    const [candidate] = outcome.candidates;
    // The related stage (add and mul) passed; only the full suite saw the broken greeting.
    expect(candidate).toMatchObject({
      state: 'failed',
      stage: 'full',
      regressions: ['test/greeting.test.js > greets'],
      fixed: ['test/mul.test.js > multiplies'],
    });
    expect(outcome.committed).toBe(false);
    expect(await snapshot(p.path)).toEqual(before);
  });
});

// Jest's related stage rejecting early is in speculate.test.ts (wrong, partial, breaking).
test('stage 1 rejects a candidate on its related tests; --best ranks the survivors on the full suite', async () => {
  const p = copyFixture('staged-vitest');
  cleanups.push(p.cleanup);
  const outcome = await bestOf({
    workspace: p.path,
    candidates: [{ patchFile: patchFile('wrong') }, fixAndBreak(p.path), { patchFile: patchFile('right') }],
    test: { framework: 'vitest' },
    maxParallel: 2,
  });
  const c = outcome.candidates;
  // Rejected on the related tests alone: mul still fails, and the greeting test never ran.
  expect(byName(c, 'wrong.diff')).toMatchObject({
    state: 'failed',
    stage: 'related',
    stillFailing: ['test/mul.test.js > multiplies'],
    counts: { passed: 1, failed: 1, skipped: 0 },
  });
  expect(byName(c, 'fixes mul, breaks greeting')).toMatchObject({ state: 'failed', stage: 'full' });
  expect(byName(c, 'right.diff')).toMatchObject({
    state: 'winner',
    stage: 'full',
    counts: { passed: 3, failed: 0, skipped: 0 },
  });
  expect(readFileSync(join(p.path, 'src/math.js'), 'utf8')).toContain('return a * b;');
});
