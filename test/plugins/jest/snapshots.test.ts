// Snapshot files written under `jest -u` (and new snapshots) and coverage reports must reach the
// real tree, although everything else the tests write is rolled back.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, type FixtureProject, fixtureProject, runJest } from '../../helpers/jest.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

describe.each(MODES)('jest: snapshots and coverage, $label', ({ mode, skip }) => {
  it.skipIf(skip)('new snapshots, `-u` updates and coverage land in the real tree', async () => {
    project = fixtureProject('jest-snapshots');
    const snap = join(project.root, '__tests__', '__snapshots__', 'snap.test.js.snap');

    const first = await runJest(project, {
      mode,
      args: ['--ci=false', '--coverage', '--coverageReporters=json-summary'],
    });
    expect(first.code, explain(first)).toBe(0);
    expect(readFileSync(snap, 'utf8')).toContain('"value": "one"');
    expect(readFileSync(join(project.root, '__tests__', 'inline.test.js'), 'utf8')).toContain('"inline": true');
    const summary = JSON.parse(readFileSync(join(project.root, 'coverage', 'coverage-summary.json'), 'utf8'));
    const sum = Object.entries(summary).find(([file]) => file.endsWith('sum.js'))?.[1] as any;
    expect(sum.lines.covered).toBeGreaterThan(0);
    expect(sum.lines.covered).toBeLessThan(sum.lines.total);

    const changed = await runJest(project, { mode, args: ['--ci'], env: { JEST_FIXTURE_VALUE: 'two' } });
    expect(changed.code).toBe(1);
    expect(changed.statuses['__tests__/inline.test.js > an inline snapshot']).toBe('passed');
    expect(readFileSync(snap, 'utf8')).toContain('"value": "one"');

    const updated = await runJest(project, { mode, args: ['-u'], env: { JEST_FIXTURE_VALUE: 'two' } });
    expect(updated.code, explain(updated)).toBe(0);
    expect(readFileSync(snap, 'utf8')).toContain('"value": "two"');
    expect(existsSync(snap)).toBe(true);
  });
});
