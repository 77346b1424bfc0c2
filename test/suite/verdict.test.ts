import { expect, test } from 'vitest';
import type { TestOutcome } from '../../src/suite/suite-run.ts';
import { failingAtBaseline, judge } from '../../src/suite/verdict.ts';

const run = (entries: Record<string, TestOutcome['status']>) =>
  new Map(Object.entries(entries).map(([id, status]) => [id, { id, status, kind: 'test' as const }]));

const baseline = run({ 'a.test.js > keeps': 'passed', 'a.test.js > fixes': 'failed', 'b.test.js > other': 'passed' });

test('passes when the failing tests pass and nothing that passed regresses', () => {
  const mustPass = failingAtBaseline(baseline);
  expect(mustPass).toEqual(['a.test.js > fixes']);
  const v = judge(
    baseline,
    run({ 'a.test.js > keeps': 'passed', 'a.test.js > fixes': 'passed', 'b.test.js > other': 'passed' }),
    mustPass,
  );
  expect(v).toEqual({ passed: true, regressions: [], stillFailing: [], fixed: ['a.test.js > fixes'] });
});

test('a vanished or skipped test counts as a regression; a missing mustPass test is still failing', () => {
  const v = judge(baseline, run({ 'a.test.js > keeps': 'skipped', 'a.test.js > fixes': 'passed' }), [
    'fixes',
    'new test',
  ]);
  expect(v.passed).toBe(false);
  expect(v.regressions).toEqual(['a.test.js > keeps', 'b.test.js > other']);
  expect(v.stillFailing).toEqual(['new test']);
});

test('mustPass entries match a whole id or its trailing names', () => {
  const now = run({ 'a.test.js > keeps': 'passed', 'a.test.js > fixes': 'failed', 'b.test.js > other': 'passed' });
  expect(judge(baseline, now, ['other']).passed).toBe(true);
  expect(judge(baseline, now, ['a.test.js > fixes']).stillFailing).toEqual(['a.test.js > fixes']);
  expect(judge(baseline, now, ['ixes']).stillFailing).toEqual(['ixes']);
});
