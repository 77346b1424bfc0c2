// BRANCHING_NO_FALLBACK=1 and `fallback: false`: no sandbox, no run (never an unisolated green).
import { afterEach, describe, expect, test } from 'vitest';
import { snapshot } from '../../helpers/tree.ts';
import { type FixtureProject, fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

let p: FixtureProject | undefined;
afterEach(async () => {
  await p?.cleanup();
  p = undefined;
});

// A launcher that does not exist makes the sandbox unavailable on any machine.
const NO_LAUNCHER = { BRANCHING_LAUNCHER: '/nonexistent/branching-launcher' };

describe('refusing to run without the sandbox', () => {
  test.each([
    ['BRANCHING_NO_FALLBACK=1', { BRANCHING_NO_FALLBACK: '1' }],
    ['fallback: false', { FIXTURE_BRANCHING: '{"fallback":false}' }],
  ])('%s: the run fails, naming the reason, and no test runs', async (_label, env) => {
    p = await fixtureProject('writes');
    const before = await snapshot(p.root);
    const run = await runVitest(p, [], { ...NO_LAUNCHER, ...env });
    const output = run.stdout + run.stderr;
    expect(run.code).not.toBe(0);
    expect(output).toContain('refusing to run without the sandbox');
    expect(output).toContain('BRANCHING_LAUNCHER=/nonexistent/branching-launcher does not exist');
    expect(Object.values(run.results).filter((s) => s === 'passed')).toEqual([]);
    expect(await snapshot(p.root)).toEqual(before);
  });

  test('by default the same run falls back to clone branches and says so', async () => {
    p = await fixtureProject('plain');
    const run = await runVitest(p, [], { ...NO_LAUNCHER, BRANCHING_QUIET: '' });
    const output = run.stdout + run.stderr;
    expect(output).toContain('branching: no namespace sandbox (the namespace sandbox is unavailable');
    expect(run.results['plain.test.js > reads the project']).toBe('passed');
  });

  test.each(['threads', 'vmThreads', 'vmForks'])(
    'pool %s cannot be sandboxed: it says so, falls back to clone branches (and refuses under BRANCHING_NO_FALLBACK=1)',
    async (pool) => {
      p = await fixtureProject('plain');
      const run = await runVitest(p, [`--pool=${pool}`], { BRANCHING_QUIET: '' });
      const output = run.stdout + run.stderr;
      expect(output).toContain(`branching: pool '${pool}' runs test files in`);
      expect(output).toContain(`branching: no namespace sandbox (pool '${pool}' runs test files in`);
      expect(run.results['plain.test.js > reads the project'], output).toBe('passed');
      const refused = await runVitest(p, [`--pool=${pool}`], { BRANCHING_NO_FALLBACK: '1' });
      expect(refused.code).not.toBe(0);
      expect(refused.stdout + refused.stderr).toContain('refusing to run without the sandbox');
      expect(refused.results['plain.test.js > reads the project']).toBeUndefined();
    },
  );
});
