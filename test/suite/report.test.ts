import { expect, test } from 'vitest';
import { bestOfCommand } from '../../src/cli/commands/speculate.ts';
import { errorDocument } from '../../src/cli/json.ts';
import { speculateReportSchema } from '../../src/suite/report.ts';
import { validate } from '../helpers/json-schema.ts';

const candidate = {
  index: 0,
  name: 'fix.diff',
  kind: 'diff',
  state: 'winner',
  counts: { passed: 2, failed: 0, skipped: 0 },
  regressions: [],
  stillFailing: [],
  fixed: ['t.test.js > x'],
  failures: [],
  changedFiles: ['src/a.js'],
  changedLines: 2,
  durationMs: 12.5,
  score: 2,
  error: null,
  isolation: { sandboxed: true, reason: 'namespaces' },
  branchDir: null,
  stage: 'full',
};
const report = {
  schemaVersion: 2,
  command: 'speculate',
  mode: 'first-wins',
  workspace: '/p',
  cwd: '',
  uncommittedChanges: 0,
  framework: 'vitest',
  dryRun: false,
  committed: true,
  winner: 0,
  mustPass: ['t.test.js > x'],
  baseline: { source: 'run', counts: { passed: 1, failed: 1, skipped: 0 }, failing: ['t.test.js > x'], durationMs: 10 },
  candidates: [candidate],
  timings: { totalMs: 30, firstPassMs: 20, commitMs: 25, losersGoneMs: null },
};

test('the schema accepts a report and an error report, and rejects what a bot could not rely on', () => {
  expect(validate(speculateReportSchema, report)).toEqual([]);
  expect(validate(speculateReportSchema, errorDocument(bestOfCommand, new Error('x')))).toEqual([]);
  const bad = (patch: object) => validate(speculateReportSchema, { ...report, ...patch });
  expect(bad({ winner: '0' })).not.toEqual([]);
  expect(bad({ schemaVersion: 1 })).not.toEqual([]);
  expect(bad({ candidates: [{ ...candidate, state: 'bogus' }] })).not.toEqual([]);
  expect(bad({ candidates: [{ ...candidate, counts: { passed: -1, failed: 0, skipped: 0 } }] })).not.toEqual([]);
  expect(bad({ extra: true })).not.toEqual([]);
  const { timings: _t, ...missing } = report;
  expect(validate(speculateReportSchema, missing)).not.toEqual([]);
});
