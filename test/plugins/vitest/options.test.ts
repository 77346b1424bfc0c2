import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { resolveOptions } from '../../../plugins/vitest/src/options.ts';
import { isBranchingError } from '../../../src/base/errors.ts';
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

const keptPaths = (stderr: string) => [...stderr.matchAll(/the files it wrote are in ([^\s,]+)/g)].map((m) => m[1]);

describe.skipIf(skip)('keep and commit', () => {
  test("keep: 'on-failure' keeps only the failing test's branch, prints its path, and leaves the tree alone", async () => {
    const p = await project('failing');
    const before = await snapshot(p.root);
    const run = await runVitest(p, [], { FIXTURE_BRANCHING: '{"keep":"on-failure"}' });
    expect(run.results['failing.test.js > fails after writing']).toBe('failed');
    const output = run.stdout + run.stderr;
    const kept = keptPaths(output);
    expect(kept, output).toHaveLength(1);
    expect(readdirSync(kept[0])).toEqual(['evidence.txt']);
    expect(readFileSync(join(kept[0], 'evidence.txt'), 'utf8')).toBe('what the failing test saw');
    expect(readFileSync(join(kept[0], '..', 'deleted.txt'), 'utf8')).toBe('.gitignore\n');
    expect(await snapshot(p.root)).toEqual(before);
  });

  test("keep: 'on-failure' with perTest: false keeps the file's branch once the worker has exited", async () => {
    const p = await project('failing');
    const before = await snapshot(p.root);
    const run = await runVitest(p, [], { FIXTURE_BRANCHING: '{"keep":"on-failure","perTest":false}' });
    const output = run.stdout + run.stderr;
    const kept = [...output.matchAll(/the files its tests wrote are in (\S+)/g)].map((m) => m[1]);
    expect(kept, output).toHaveLength(1);
    expect(readdirSync(kept[0]).sort()).toEqual(['evidence.txt', 'generated.txt', 'landed.txt']);
    expect(readFileSync(join(kept[0], '..', 'deleted.txt'), 'utf8')).toBe('.gitignore\n');
    expect(await snapshot(p.root)).toEqual(before);
  });

  test("keep: 'never' (the default) keeps nothing", async () => {
    const p = await project('failing');
    const run = await runVitest(p);
    expect(run.results['failing.test.js > fails after writing']).toBe('failed');
    expect(keptPaths(run.stdout + run.stderr)).toEqual([]);
  });

  test('commit: true lands the writes of passing tests in the real tree, not those of failing ones', async () => {
    const p = await project('failing');
    const before = await snapshot(p.root);
    await runVitest(p, [], { FIXTURE_BRANCHING: '{"commit":true}' });
    const after = await snapshot(p.root);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed.sort()).toEqual(['generated.txt', 'landed.txt']);
    expect(readFileSync(join(p.root, 'landed.txt'), 'utf8')).toBe('committed');
  });

  test('currentBranch().commit() lands only the current test', async () => {
    const p = await project('failing');
    const before = await snapshot(p.root);
    await runVitest(p, [], { FIXTURE_COMMIT_ONE: '1' });
    const after = await snapshot(p.root);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed).toEqual(['landed.txt']);
  });
});

describe.skipIf(skip)('network', () => {
  test('network: false gives the workers their own network namespace with only loopback; the default keeps the network', async () => {
    const p = await project('network');
    const env = { OUTER_NETNS: readlinkSync('/proc/self/ns/net') };
    const off = await runVitest(p, [], { ...env, EXPECT_ISOLATED: '1', FIXTURE_BRANCHING: '{"network":false}' });
    expect(off.results, off.stdout + off.stderr).toEqual({
      'network.test.js > network namespace as configured': 'passed',
    });
    const on = await runVitest(p, [], { ...env, EXPECT_ISOLATED: '0' });
    expect(on.results, on.stdout + on.stderr).toEqual({
      'network.test.js > network namespace as configured': 'passed',
    });
  });
});

describe('options are validated', () => {
  test('defaults', () => {
    expect(resolveOptions(undefined)).toEqual({
      root: undefined,
      perTest: true,
      keep: 'never',
      commit: false,
      network: true,
      fallback: true,
    });
  });

  test.each([
    [{ keep: 'always' }, 'branching.keep'],
    [{ perTest: 'yes' }, 'branching.perTest'],
    [{ root: 'relative/dir' }, 'branching.root'],
    [{ comit: true }, 'branching.comit'],
    ['string', 'branching'],
  ])('%j is an ArgumentError naming %s', (raw, argument) => {
    let error: unknown;
    try {
      resolveOptions(raw);
    } catch (err) {
      error = err;
    }
    expect(isBranchingError(error, 'ArgumentError')).toBe(true);
    expect((error as { argument: string }).argument).toBe(argument);
  });

  test('a bad option fails the run with a message naming it', async () => {
    const p = await project('plain');
    const run = await runVitest(p, [], { FIXTURE_BRANCHING: '{"keep":"sometimes"}' });
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('branching.keep');
  });
});
