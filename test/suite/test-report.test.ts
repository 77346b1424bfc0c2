import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { collectResults } from '../../src/suite/flaky-results.ts';
import { outcomesOf } from '../../src/suite/suite-run.ts';
import {
  detectFramework,
  frameworkOfCommand,
  parseJestReport,
  readJestReport,
  reporterArgs,
} from '../../src/suite/test-report.ts';
import { copyFixture, repoRoot } from '../helpers/fixture-project.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

test('Jest-shaped reports: ids relative to the project, and a file that failed to load is a failing entry', () => {
  const report = {
    testResults: [
      {
        name: '/p/test/ok.test.js',
        status: 'passed',
        assertionResults: [
          { ancestorTitles: ['math'], title: 'adds', status: 'passed', fullName: 'math adds' },
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
  const { tests, counts } = outcomesOf(parseJestReport(report, '/p', 'test'));
  expect(counts).toEqual({ passed: 1, failed: 0, skipped: 1 });
  expect(tests.get('test/ok.test.js > math > adds')?.status).toBe('passed');
  expect(tests.get('test/broken.test.js')).toMatchObject({
    status: 'failed',
    kind: 'file',
    message: 'SyntaxError: Unexpected token',
  });
  expect(tests.get('test/ok.test.js')).toMatchObject({ status: 'passed', kind: 'file' });
  expect(() => parseJestReport({ numTotalTests: 1 }, '/p', 'baseline')).toThrow(/no testResults array/);
});

test('one framework detector: the command first, then the project', () => {
  expect(frameworkOfCommand(['npx', 'vitest', 'run'])).toBe('vitest');
  expect(frameworkOfCommand(['node', 'node_modules/jest/bin/jest.js'])).toBe('jest');
  expect(frameworkOfCommand(['node', 'vitest.mjs'])).toBe('vitest');
  expect(frameworkOfCommand(['npm', 'test'])).toBeNull();
  const jest = copyFixture('jest-project');
  cleanups.push(jest.cleanup);
  expect(detectFramework(jest.path)).toBe('jest');
  expect(detectFramework(jest.path, ['npx', 'vitest'])).toBe('vitest');
  expect(detectFramework(repoRoot, ['make', 'test'])).toBe('vitest');
});

const bins = {
  vitest: [join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run'],
  jest: [join(repoRoot, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci'],
};

describe.each(['vitest', 'jest'] as const)('%s: one test id in every tool', (framework) => {
  test('flaky and speculate read the same ids from a real report: file > describe > ... > test', async () => {
    const project = copyFixture(`nested-${framework}`);
    cleanups.push(project.cleanup);
    const reportFile = join(project.path, '..', 'report.json');
    const run = spawnSync(process.execPath, [...bins[framework], ...reporterArgs(framework, reportFile)], {
      cwd: project.path,
      env: { ...process.env, CI: '1' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    const entries = (await readJestReport(reportFile, project.path, framework))!;
    const speculateIds = [...outcomesOf(entries).tests.values()].filter((t) => t.kind === 'test').map((t) => t.id);
    expect(speculateIds.sort()).toEqual([
      'test/nested.test.js > outer > inner > fails',
      'test/nested.test.js > outer > inner > passes',
    ]);
    const flaky = await collectResults(framework, reportFile, project.path, { exitCode: 1, timedOut: false });
    expect(flaky.tests.map((t) => t.id).sort()).toEqual(['(run)', ...speculateIds]);
    expect(flaky.tests.find((t) => t.id.endsWith('fails'))?.status).toBe('failed');
  });
});
