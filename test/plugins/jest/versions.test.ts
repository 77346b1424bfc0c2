// The supported Jest range is what is tested (28, 29, 30); anything else is refused at startup with
// its version named, never run wrongly (Jest 27 with the runner used to run nothing and exit 0).
// And a run told never to fall back refuses to run unsandboxed.
import { afterEach, describe, expect, it } from 'vitest';
import pluginPackage from '../../../plugins/jest/package.json' with { type: 'json' };
import { explain, type FixtureProject, fixtureProject, type JestMode, runJest } from '../../helpers/jest.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

const REFUSAL = 'jest-environment-branching supports Jest 28, 29, 30 (>=28.0.0 <31.0.0); this is Jest 27.5.1';

describe('jest: versions', () => {
  it('the peer range is the tested one', () => {
    expect(pluginPackage.peerDependencies.jest).toBe('>=28.0.0 <31.0.0');
  });

  it.each(['preset', 'environment'] as JestMode[])(
    'Jest 27 (%s) is refused by name, with a failing exit',
    async (mode) => {
      project = fixtureProject('jest-writes');
      const run = await runJest(project, { jest: 27, mode });
      expect(run.code).not.toBe(0);
      expect(run.stdout + run.stderr + explain(run)).toContain(REFUSAL);
    },
  );
});

describe('jest: never unsandboxed when told so', () => {
  it('BRANCHING_NO_FALLBACK=1: the runner refuses instead of handing the run to Jest’s runner', async () => {
    project = fixtureProject('jest-writes');
    const run = await runJest(project, {
      mode: 'preset',
      env: { BRANCHING_JEST_NO_SANDBOX: '1', BRANCHING_NO_FALLBACK: '1' },
    });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(
      'jest-environment-branching/runner: refusing to run unsandboxed (BRANCHING_NO_FALLBACK=1): BRANCHING_JEST_NO_SANDBOX=1',
    );
    expect(Object.keys(run.statuses)).toEqual([]);
  });

  it('fallback: false: the environment alone refuses to run in a clone', async () => {
    project = fixtureProject('jest-writes');
    const run = await runJest(project, { mode: 'environment', options: { fallback: false } });
    expect(run.code).not.toBe(0);
    expect(explain(run)).toContain(
      'jest-environment-branching: refusing to run unsandboxed (testEnvironmentOptions.branching.fallback is false)',
    );
    expect(Object.values(run.statuses).filter((s) => s === 'passed')).toEqual([]);
  });

  it('a bad fallback value is an ArgumentError naming the option', async () => {
    project = fixtureProject('jest-writes');
    const run = await runJest(project, { mode: 'environment', options: { fallback: 'no' } });
    expect(run.code).toBe(1);
    expect(explain(run)).toContain('testEnvironmentOptions.branching.fallback must be true or false; got "no"');
  });
});
