import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

describe.skipIf(skip)('snapshots written by the sandboxed worker reach the real tree', () => {
  test('vitest -u rewrites the real snapshot file and the inline snapshot, and nothing else', async () => {
    p = await fixtureProject('snapshots');
    const before = await snapshot(p.root);
    const snapFile = join(p.root, 'test', '__snapshots__', 'snap.test.js.snap');
    const testFile = join(p.root, 'test', 'snap.test.js');

    const mismatch = await runVitest(p, [], { SNAP_VALUE: 'two' });
    expect(mismatch.results).toEqual({
      'snap.test.js > file snapshot': 'failed',
      'snap.test.js > inline snapshot': 'failed',
    });
    expect(await snapshot(p.root)).toEqual(before);

    const update = await runVitest(p, ['-u'], { SNAP_VALUE: 'two' });
    expect(update.code, update.stdout + update.stderr).toBe(0);
    expect(readFileSync(snapFile, 'utf8')).toContain('"value": "two"');
    expect(readFileSync(testFile, 'utf8')).toContain('toMatchInlineSnapshot(`"two"`)');
    const after = await snapshot(p.root);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed.sort()).toEqual(['test/__snapshots__/snap.test.js.snap', 'test/snap.test.js']);

    const again = await runVitest(p, [], { SNAP_VALUE: 'two' });
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });
});

describe.skipIf(skip)('coverage written by Vitest reaches the real tree', () => {
  test('the v8 coverage report of a sandboxed run is in the real tree and equals the vanilla one', async () => {
    p = await fixtureProject('coverage');
    const before = await snapshot(p.root);
    const args = [
      '--coverage.enabled',
      '--coverage.provider=v8',
      '--coverage.reporter=json',
      '--coverage.include=src/**',
    ];
    const report = join(p.root, 'coverage', 'coverage-final.json');
    const counts = () => {
      const json = JSON.parse(readFileSync(report, 'utf8')) as Record<string, { f: Record<string, number> }>;
      return Object.fromEntries(Object.entries(json).map(([file, data]) => [file, data.f]));
    };

    const sandboxed = await runVitest(p, args);
    expect(sandboxed.code, sandboxed.stdout + sandboxed.stderr).toBe(0);
    const fromSandbox = counts();
    expect(fromSandbox[join(p.root, 'src', 'math.js')]).toEqual({ 0: 1, 1: 0 });
    const after = await snapshot(p.root);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed.sort()).toEqual(['coverage', 'coverage/coverage-final.json']);

    const vanilla = await runVitest(p, args, { FIXTURE_MODE: 'vanilla' });
    expect(vanilla.code).toBe(0);
    expect(counts()).toEqual(fromSandbox);
  });
});
