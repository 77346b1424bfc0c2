import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commonAncestor, gitWorkTreeTop, isInside, outermostWorkTree } from '../../src/core/worktree.ts';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'branching-worktree-')));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('git work trees', () => {
  it('finds the nearest .git (dir or file) upwards, the outermost one, or null outside git', () => {
    const repo = join(root, 'repo');
    const pkg = join(repo, 'packages', 'foo', 'src');
    const sub = join(repo, 'vendor', 'lib');
    mkdirSync(join(repo, '.git'), { recursive: true });
    mkdirSync(pkg, { recursive: true });
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, '.git'), 'gitdir: ../../.git/modules/lib\n');
    const outside = join(root, 'plain');
    mkdirSync(outside);
    expect(gitWorkTreeTop(pkg)).toBe(repo);
    expect(gitWorkTreeTop(sub)).toBe(sub);
    expect(outermostWorkTree(sub)).toBe(repo);
    expect(outermostWorkTree(pkg)).toBe(repo);
    expect(gitWorkTreeTop(outside)).toBeNull();
    expect(outermostWorkTree(outside)).toBeNull();
  });

  it('isInside: the dir itself and below, not siblings sharing a prefix', () => {
    expect(isInside('/a/b', '/a/b')).toBe(true);
    expect(isInside('/a/b/c', '/a/b')).toBe(true);
    expect(isInside('/a/bc', '/a/b')).toBe(false);
    expect(isInside('/a', '/a/b')).toBe(false);
  });

  it('commonAncestor: the nearest directory holding both, / when they share nothing else', () => {
    expect(commonAncestor('/a/b/c', '/a/b/d/e')).toBe('/a/b');
    expect(commonAncestor('/a/b', '/a/b/c')).toBe('/a/b');
    expect(commonAncestor('/a/bc', '/a/b')).toBe('/a');
    expect(commonAncestor('/x', '/y')).toBe('/');
  });
});
