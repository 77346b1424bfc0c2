import { mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBranchingError } from '../../src/base/errors.ts';
import { defaultStateRoots, resolveStateDir } from '../../src/core/state.ts';
import { Workspace } from '../../src/core/workspace.ts';
import { tempDir } from '../helpers/tree.ts';

const inside = (path: string, dir: string) => !relative(dir, path).startsWith('..');

describe('where branch state lives', () => {
  let tmp: ReturnType<typeof tempDir>;
  const saved = { ...process.env };
  beforeEach(() => {
    tmp = tempDir('branching-state-');
    process.env.XDG_CACHE_HOME = join(tmp.path, 'cache');
    delete process.env.BRANCHING_STATE_DIR;
  });
  afterEach(async () => {
    process.env = { ...saved };
    await tmp.cleanup();
  });

  it('defaults to the user cache dir, never inside the project or its git work tree (a monorepo package)', () => {
    const repo = join(tmp.path, 'repo');
    const pkg = join(repo, 'packages', 'foo');
    mkdirSync(join(repo, '.git'), { recursive: true });
    mkdirSync(pkg, { recursive: true });
    const dir = resolveStateDir(realpathSync(pkg));
    expect(inside(dir, join(tmp.path, 'cache', 'branching'))).toBe(true);
    expect(inside(dir, repo)).toBe(false);
    expect(readdirSync(repo)).toEqual(['.git', 'packages']);
    expect(readdirSync(join(repo, 'packages'))).toEqual(['foo']);
  });

  it('skips a cache dir that lies inside the project or a git work tree, for $TMPDIR/branching-<uid>', () => {
    const repo = join(tmp.path, 'repo');
    mkdirSync(join(repo, '.git'), { recursive: true });
    process.env.XDG_CACHE_HOME = join(repo, 'cache');
    const roots = defaultStateRoots();
    expect(roots[0]).toBe(join(repo, 'cache', 'branching'));
    const dir = resolveStateDir(realpathSync(repo));
    expect(inside(dir, roots[1])).toBe(true);
    expect(readdirSync(repo)).toEqual(['.git']);
  });

  it('an explicit stateDir is made absolute, and must not lie inside the project or be a non-string', () => {
    const project = join(tmp.path, 'project');
    mkdirSync(project);
    const cwd = process.cwd();
    process.chdir(tmp.path);
    try {
      const ws = new Workspace(project, { stateDir: 'state', backend: 'clone', onNotice: () => {} });
      expect(ws.stateDir.startsWith(join(realpathSync(tmp.path), 'state'))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
    for (const [value, code] of [
      [join(project, 'state'), 'ERR_BRANCHING_STATE_INSIDE'],
      [5, null],
    ] as const) {
      let err: unknown;
      try {
        new Workspace(project, { stateDir: value as string, backend: 'clone', onNotice: () => {} });
      } catch (e) {
        err = e;
      }
      expect(isBranchingError(err, 'ArgumentError')).toBe(true);
      expect(err).toMatchObject({ argument: 'stateDir' });
      if (code) expect(err).toMatchObject({ code });
    }
    expect(readdirSync(project)).toEqual([]);
  });
});
