import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { snapshot } from '../../helpers/tree.ts';
import { type FixtureProject, fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

// environment: 'branching' alone (no plugin, so no sandbox pool): a clone branch per file. These
// runs need no namespaces, so they run everywhere.
const projects: FixtureProject[] = [];
async function project(name: string) {
  const p = await fixtureProject(name);
  projects.push(p);
  return p;
}
afterEach(async () => {
  for (const p of projects.splice(0)) await p.cleanup();
});

const changedPaths = (before: Record<string, string>, after: Record<string, string>) =>
  [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).sort();

describe("environment: 'branching' alone degrades to a clone branch per file and says so once", () => {
  test('forks: relative writes and TMPDIR are isolated; absolute and __dirname writes are not, as the notice says', async () => {
    const p = await project('writes');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/writes.test.js'], { FIXTURE_MODE: 'env', BRANCHING_QUIET: '' });
    const output = run.stdout + run.stderr;
    expect(output).toContain('NOT isolated: writes to absolute paths, or paths built from __dirname');
    expect(run.results['writes.test.js > leaves files in TMPDIR'], output).toBe('passed');
    const changed = changedPaths(before, await snapshot(p.root));
    expect(changed).not.toContain('out');
    expect(changed).not.toContain('out/relative.txt');
    // Exactly what the notice says is not isolated: absolute and __dirname-based writes.
    expect(changed).toEqual(
      expect.arrayContaining(['absolute.txt', 'test/dirname.txt', 'ignored.txt', 'src/data.txt', '.git/config']),
    );
    expect(readdirSync(p.tmp)).toEqual([]);
  });

  test('the notice comes once per run, and there is no per-test rollback', async () => {
    const p = await project('writes');
    const run = await runVitest(p, ['test/rollback.test.js'], { FIXTURE_MODE: 'env', BRANCHING_QUIET: '' });
    const q = await project('plain');
    const plain = await runVitest(q, [], { FIXTURE_MODE: 'env', BRANCHING_QUIET: '' });
    expect(run.results['rollback.test.js > second does not see the first']).toBe('failed');
    const output = plain.stdout + plain.stderr;
    expect(Object.keys(plain.results)).toHaveLength(14);
    expect(output.match(/branching: no namespace sandbox/g), output).toHaveLength(1);
    expect(output).toContain('No per-test rollback');
  });

  test("keep: 'on-failure' leaves the failing file's clone branch open and prints its path", async () => {
    const p = await project('failing');
    const run = await runVitest(p, [], { FIXTURE_MODE: 'env', FIXTURE_BRANCHING: '{"keep":"on-failure"}' });
    const output = run.stdout + run.stderr;
    const kept = /kept the branch of a failing test file at (\S+)/.exec(output)?.[1];
    expect(kept, output).toBeDefined();
    expect(readFileSync(join(kept!, 'evidence.txt'), 'utf8')).toBe('what the failing test saw');
    expect(existsSync(join(p.root, 'evidence.txt'))).toBe(false);
  });

  test('threads: the notice says that relative writes are not isolated either', async () => {
    const p = await project('plain');
    const run = await runVitest(p, [], { FIXTURE_MODE: 'env', FIXTURE_POOL: 'threads', BRANCHING_QUIET: '' });
    const output = run.stdout + run.stderr;
    expect(output).toContain('worker threads cannot chdir, so relative writes reach the real tree');
    expect(readdirSync(p.tmp)).toEqual([]);
  });

  test('vmThreads and vmForks get a clear error', async () => {
    const p = await project('plain');
    const run = await runVitest(p, [], { FIXTURE_MODE: 'env', FIXTURE_POOL: 'vmForks' });
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('does not support the vmThreads and vmForks pools');
  });
});
