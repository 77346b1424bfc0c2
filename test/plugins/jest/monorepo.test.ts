// A Jest project that is a package of a monorepo: by default the git work tree's top is branched,
// so `.git` and the sibling packages are in the branch and git works from the package.
import { isAbsolute, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { explain, type FixtureProject, fixtureProject, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the sandbox launcher', probe.reason ?? '');

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

describe.skipIf(skip)('jest: a package of a monorepo', () => {
  it('git status and rev-parse give what vanilla Jest gives, and the repository is unchanged', async () => {
    project = fixtureProject('jest-monorepo', { git: true });
    const before = await snapshot(project.root);
    const run = await runJest(project, { mode: 'preset', cwd: 'packages/foo' });
    expect(run.code, explain(run)).toBe(0);
    expect(await snapshot(project.root)).toEqual(before);
    const tmpdir = run.reported.find((l) => l.startsWith('tmpdir '))!.slice(7);
    const rel = relative(project.root, tmpdir);
    expect(rel.startsWith('..') || isAbsolute(rel), `TMPDIR ${tmpdir} is inside the work tree`).toBe(true);

    const vanilla = await runJest(project, { mode: 'vanilla', cwd: 'packages/foo' });
    expect(vanilla.code, explain(vanilla)).toBe(0);
    const withoutTmp = (lines: string[]) => lines.filter((l) => !l.startsWith('tmpdir '));
    expect(withoutTmp(run.reported)).toEqual(withoutTmp(vanilla.reported));
    expect(run.reported).toContain(`toplevel ${project.root}`);
    expect(run.reported).toContain('status after "?? packages/bar/touched.txt\\n?? packages/foo/out.txt"');
  });

  it('the root option still narrows the branch to the package', async () => {
    project = fixtureProject('jest-monorepo', { git: true });
    const run = await runJest(project, { mode: 'preset', cwd: 'packages/foo', options: { root: '.' } });
    expect(run.code).toBe(1);
    expect(explain(run)).toMatch(/not a git repository/);
  });
});
