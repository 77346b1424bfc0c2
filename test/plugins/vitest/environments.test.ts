// Any test environment: isolation is the pool's and the setup file's job, so a jsdom project keeps
// its DOM and still gets a branch per test; TMPDIR keeps one path per worker, its contents roll back.
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { snapshot } from '../../helpers/tree.ts';
import { type FixtureProject, fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');

const projects: FixtureProject[] = [];
async function project(name: string) {
  const p = await fixtureProject(name);
  projects.push(p);
  return p;
}
afterEach(async () => {
  for (const p of projects.splice(0)) await p.cleanup();
});

describe.skipIf(skip)('the project keeps its own test environment', () => {
  test('jsdom: the tests see the DOM, and each test rolls back its file writes', async () => {
    const p = await project('jsdom');
    const before = await snapshot(p.root);
    const run = await runVitest(p);
    expect(run.results, run.stdout + run.stderr).toEqual({
      'dom.test.js > the DOM is there, and a write lands in the branch': 'passed',
      "dom.test.js > the next test does not see the first one's writes": 'passed',
    });
    expect(run.code).toBe(0);
    expect(await snapshot(p.root)).toEqual(before);
  });

  test('jsdom without the plugin: the same tests, but the first leaks and the second fails (the fixture is a real probe)', async () => {
    const p = await project('jsdom');
    const run = await runVitest(p, [], { FIXTURE_MODE: 'vanilla' });
    expect(run.results['dom.test.js > the DOM is there, and a write lands in the branch']).toBe('passed');
    expect(run.results["dom.test.js > the next test does not see the first one's writes"]).toBe('failed');
  });
});

describe.skipIf(skip)('TMPDIR', () => {
  test('one path for the worker, whose contents roll back after each test (a cached os.tmpdir() keeps working)', async () => {
    const p = await project('tmpdir');
    const run = await runVitest(p);
    expect(run.results, run.stdout + run.stderr).toEqual({
      'tmpdir.test.js > A writes into TMPDIR': 'passed',
      'tmpdir.test.js > B does not see what A left in TMPDIR, and the cached path still works': 'passed',
    });
    expect(readdirSync(p.tmp)).toEqual([]);
  });

  test('without the plugin B sees what A left (the fixture is a real probe)', async () => {
    const p = await project('tmpdir');
    const run = await runVitest(p, [], { FIXTURE_MODE: 'vanilla' });
    expect(run.results['tmpdir.test.js > B does not see what A left in TMPDIR, and the cached path still works']).toBe(
      'failed',
    );
  });
});
