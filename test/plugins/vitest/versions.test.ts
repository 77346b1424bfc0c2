// The Vitest versions the plugin supports (peer range >=3.2.0 <6) run; any other is refused at
// startup with a message naming it: never a crash, never a run without isolation. The matrix
// (scripts/vitest-matrix.mjs) runs this file on Vitest 3.2, 4.0, 4.1 and 5.
import { afterEach, describe, expect, test } from 'vitest';
import { checkVitestVersion, poolApiOf, SUPPORTED_VITEST } from '../../../plugins/vitest/src/version.ts';
import { isBranchingError } from '../../../src/base/errors.ts';
import { type FixtureProject, fixtureProject, fixtureVitestVersion, runVitest } from '../../helpers/vitest-project.ts';

let p: FixtureProject | undefined;
afterEach(async () => {
  await p?.cleanup();
  p = undefined;
});

const supported = (version: string) => poolApiOf(version) !== null;

describe('Vitest versions', () => {
  test.each(['3.1.4', '3.0.9', '6.0.0', '2.1.9'])('%s is refused with an ArgumentError naming it', (version) => {
    let error: unknown;
    try {
      checkVitestVersion(version);
    } catch (err) {
      error = err;
    }
    expect(isBranchingError(error, 'ArgumentError')).toBe(true);
    expect((error as Error).message).toContain(`this is Vitest ${version}`);
    expect((error as Error).message).toContain(SUPPORTED_VITEST);
  });

  test.each([
    ['3.2.0', 'v3'],
    ['3.2.7', 'v3'],
    ['4.0.0', 'v4'],
    ['4.0.18', 'v4'],
    ['4.1.12', 'v4'],
    ['5.1.1', 'v4'],
  ])('%s is accepted, with the pool API %s', (version, api) => {
    expect(checkVitestVersion(version)).toBe(api);
  });

  test(`the fixtures' Vitest (${fixtureVitestVersion}) runs with the plugin, or is refused at startup naming it`, async () => {
    p = await fixtureProject('plain');
    const run = await runVitest(p);
    const output = run.stdout + run.stderr;
    if (supported(fixtureVitestVersion)) {
      expect(output).not.toContain('vitest-environment-branching supports Vitest');
      expect(Object.keys(run.results), output).toHaveLength(14);
      expect(run.results['plain.test.js > reads the project']).toBe('passed');
    } else {
      expect(run.code).not.toBe(0);
      expect(output).toContain(`this is Vitest ${fixtureVitestVersion}: upgrade Vitest, or remove the plugin`);
      expect(run.results).toEqual({});
    }
  });
});
