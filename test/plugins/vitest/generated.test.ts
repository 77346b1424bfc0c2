// Modules a test writes and then imports (config loaders, code generators) load as they do without
// the plugin, although Vitest's module server runs in the main process, outside the sandbox, and
// cannot see the worker's layers: in TMPDIR and in the project, JavaScript and TypeScript, with
// relative imports between generated files, and a broken one fails rather than hanging.
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

const ALL_PASS = {
  'generated.test.js > a module written to TMPDIR, importing a sibling, loads': 'passed',
  'generated.test.js > a TypeScript module written into the project loads, transformed': 'passed',
  'generated.test.js > a broken generated module fails with its parse error, not a hang': 'passed',
};

describe.skipIf(skip)('modules written by tests', () => {
  test('load in the sandbox as in vanilla Vitest, and leave nothing behind', async () => {
    p = await fixtureProject('generated');
    const vanilla = await runVitest(p, [], { FIXTURE_MODE: 'vanilla' });
    expect(vanilla.results, vanilla.stdout + vanilla.stderr).toEqual(ALL_PASS);
    await p.cleanup();
    p = await fixtureProject('generated');
    const before = await snapshot(p.root);
    const run = await runVitest(p);
    expect(run.results, run.stdout + run.stderr).toEqual(ALL_PASS);
    expect(await snapshot(p.root)).toEqual(before);
  });
});
