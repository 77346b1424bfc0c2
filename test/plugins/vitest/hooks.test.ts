// beforeAll/afterAll at any depth belong to the file's branch: every test sees beforeAll's writes,
// afterAll's deletions stick for the later tests of the file, and the tree is untouched afterwards.
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
  'hooks.test.js > a describe block with its own hooks its only test writes nothing and sees the flag': 'passed',
  'hooks.test.js > a describe block with its own hooks nested deeper sees both beforeAll writes': 'passed',
  'hooks.test.js > a test that writes': 'passed',
  "hooks.test.js > the flag afterAll deleted stays gone, and the earlier test's write is rolled back": 'passed',
};

const SPARE_PASS = {
  'spare.test.js > writes nothing': 'passed',
  'spare.test.js > writes nothing either, and sees the same mount': 'passed',
  'spare.test.js > a log opened by a beforeAll right after a test that wrote nothing appends through the descriptor and reads it back by path':
    'passed',
  'spare.test.js > a log opened by a beforeAll right after a test that wrote nothing the next test sees both lines':
    'passed',
};

describe.skipIf(skip)('hooks', () => {
  test.each([
    ['per-test branches', '{}'],
    ['perTest: false', '{"perTest":false}'],
  ])('%s: beforeAll writes are seen by all tests, afterAll deletions stick', async (_label, options) => {
    p = await fixtureProject('hooks');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/hooks.test.js'], { FIXTURE_BRANCHING: options });
    const expected = { ...ALL_PASS };
    // Without per-test branches the write of 'a test that writes' is still there for the last test.
    if (options !== '{}') {
      expected["hooks.test.js > the flag afterAll deleted stays gone, and the earlier test's write is rolled back"] =
        'failed';
    }
    expect(run.results, run.stdout + run.stderr).toEqual(expected);
    expect(await snapshot(p.root)).toEqual(before);
  });

  test('tests that write nothing share one mount; a beforeAll after them still writes into the file branch', async () => {
    p = await fixtureProject('hooks');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/spare.test.js']);
    expect(run.results, run.stdout + run.stderr).toEqual(SPARE_PASS);
    expect(await snapshot(p.root)).toEqual(before);
  });

  test('isolate: false: the next file in the same worker sees none of the hook writes of the one before', async () => {
    p = await fixtureProject('hooks');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['--no-isolate', '--maxWorkers=1', '--sequence.shuffle=false']);
    expect(run.results, run.stdout + run.stderr).toEqual({
      ...ALL_PASS,
      ...SPARE_PASS,
      "second.test.js > another file in the same worker sees none of the first file's hook writes": 'passed',
    });
    expect(await snapshot(p.root)).toEqual(before);
  });
});
