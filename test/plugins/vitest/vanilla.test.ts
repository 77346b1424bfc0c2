import { afterEach, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { type FixtureProject, fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');

let p: FixtureProject | undefined;
afterEach(async () => {
  await p?.cleanup();
  p = undefined;
});

test.skipIf(skip).each(['node', 'jsdom'])(
  '%s: a suite that writes nothing gives the same results with the sandbox as without',
  async (environment) => {
    p = await fixtureProject('plain');
    const env = { FIXTURE_ENVIRONMENT: environment };
    const vanilla = await runVitest(p, [], { ...env, FIXTURE_MODE: 'vanilla' });
    const sandboxed = await runVitest(p, [], env);
    expect(Object.keys(vanilla.results)).toHaveLength(14);
    expect(sandboxed.results).toEqual(vanilla.results);
    expect(sandboxed.code).toBe(vanilla.code);
  },
);
