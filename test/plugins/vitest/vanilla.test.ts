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

test.skipIf(skip)('a suite that writes nothing gives the same results with the sandbox as without', async () => {
  p = await fixtureProject('plain');
  const vanilla = await runVitest(p, [], { FIXTURE_MODE: 'vanilla' });
  const sandboxed = await runVitest(p);
  expect(Object.keys(vanilla.results)).toHaveLength(14);
  expect(sandboxed.results).toEqual(vanilla.results);
  expect(sandboxed.code).toBe(vanilla.code);
});
