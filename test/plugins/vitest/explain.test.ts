// A failure that the per-test rollback caused says so, and how to share files between tests.
import { afterEach, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { snapshot } from '../../helpers/tree.ts';
import { type FixtureProject, fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');

let p: FixtureProject | undefined;
afterEach(async () => {
  await p?.cleanup();
  p = undefined;
});

describe.skipIf(skip)('rolled-back files', () => {
  test('a test failing with ENOENT on a file an earlier test wrote is told why', async () => {
    p = await fixtureProject('shared');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/shared.test.js']);
    expect(run.results).toEqual({ 'shared.test.js > writer': 'passed', 'shared.test.js > reader': 'failed' });
    const output = run.stdout + run.stderr;
    expect(output).toContain('ENOENT');
    expect(output).toContain(
      "`shared.txt` was written by test 'writer' of this file and rolled back after it; tests that share files need `perTest: false` (per file: docblock)",
    );
    expect(await snapshot(p.root)).toEqual(before);
  });

  test('the documented docblock form turns per-test branches off for one file', async () => {
    p = await fixtureProject('shared');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/docblock']);
    expect(run.results, run.stdout + run.stderr).toEqual({
      'docblock/docblock.test.js > writer': 'passed',
      'docblock/docblock.test.js > reader': 'passed',
    });
    expect(await snapshot(p.root)).toEqual(before);
  });
});
