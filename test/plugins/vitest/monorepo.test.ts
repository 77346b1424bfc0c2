// A package of a monorepo: by default the branch is the git work tree's top, so .git and the
// sibling packages are in it and git works from the package, with results as in a vanilla run.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { snapshot } from '../../helpers/tree.ts';
import { type FixtureProject, fixtureProject, git, runVitest } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');

const projects: FixtureProject[] = [];
async function project() {
  const p = await fixtureProject('monorepo');
  projects.push(p);
  return p;
}
afterEach(async () => {
  for (const p of projects.splice(0)) await p.cleanup();
});

const PASSING = {
  'git.test.js > git sees the repository from the package': 'passed',
  'git.test.js > a write shows in git status, and git can commit it': 'passed',
  'git.test.js > the next test starts from the clean tree again': 'passed',
};

describe.skipIf(skip)('monorepo: Vitest run in packages/foo of a git repository', () => {
  test('git finds the repository and sees the writes; the tree and its history are unchanged afterwards', async () => {
    const p = await project();
    const pkg = join(p.root, 'packages', 'foo');
    const env = { FIXTURE_TOP: realpathSync(p.root) };
    const before = await snapshot(p.root);
    const head = await git(p, ['rev-parse', 'HEAD']);
    const run = await runVitest(p, [], env, { cwd: pkg });
    expect(run.results, run.stdout + run.stderr).toEqual(PASSING);
    expect(await snapshot(p.root)).toEqual(before);
    expect(await git(p, ['rev-parse', 'HEAD'])).toBe(head);
    expect(await git(p, ['status', '--porcelain'])).toBe('');

    const q = await project();
    const vanilla = await runVitest(
      q,
      [],
      { ...env, FIXTURE_TOP: realpathSync(q.root), FIXTURE_MODE: 'vanilla' },
      {
        cwd: join(q.root, 'packages', 'foo'),
      },
    );
    expect(vanilla.results).toEqual(run.results);
  });

  test('root: the package alone is branched when the option says so (git then stops at the branch)', async () => {
    const p = await project();
    const pkg = join(p.root, 'packages', 'foo');
    const run = await runVitest(p, [], { FIXTURE_BRANCHING: JSON.stringify({ root: pkg }) }, { cwd: pkg });
    expect(run.results['git.test.js > git sees the repository from the package'], run.stdout + run.stderr).toBe(
      'failed',
    );
    expect(run.stdout + run.stderr).toContain('not a git repository');
  });
});
