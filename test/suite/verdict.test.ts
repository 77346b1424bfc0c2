import { expect, test } from 'vitest';
import { parseJestShapedReport, type TestOutcome } from '../../src/suite/test-runner.ts';
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

test('Jest-shaped reports: ids relative to the project, and a file that failed to load is a failing entry', () => {
  const report = {
    testResults: [
      {
        name: '/p/test/ok.test.js',
        status: 'passed',
        assertionResults: [
          { ancestorTitles: ['math'], title: 'adds', status: 'passed' },
          { title: 'later', status: 'todo' },
        ],
      },
      {
        name: '/p/test/broken.test.js',
        status: 'failed',
        message: 'SyntaxError: Unexpected token',
        assertionResults: [],
      },
    ],
  };
  const { tests, counts } = parseJestShapedReport(report, '/p', 'test');
  expect(counts).toEqual({ passed: 1, failed: 0, skipped: 1 });
  expect(tests.get('test/ok.test.js > math > adds')?.status).toBe('passed');
  expect(tests.get('test/broken.test.js')).toMatchObject({
    status: 'failed',
    kind: 'file',
    message: 'SyntaxError: Unexpected token',
  });
  expect(tests.get('test/ok.test.js')).toMatchObject({ status: 'passed', kind: 'file' });
  expect(() => parseJestShapedReport({ numTotalTests: 1 }, '/p', 'baseline')).toThrow(/no testResults array/);
});
