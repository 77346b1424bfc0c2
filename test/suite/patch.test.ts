import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { applyCandidate, gitApply, prepareCandidates } from '../../src/suite/patch.ts';
import { snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  });

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(() => {
  dir = tempDir('branching-patch-');
});
afterEach(() => dir.cleanup());

/**
 * A repository whose second commit adds, deletes, renames, chmods and
 * rewrites a binary file; returns the old tree (as plain files), the new
 * tree, and `git diff --binary -M` between them.
 */
async function gitFormatCase(): Promise<{ oldTree: string; newTree: string; patch: string }> {
  const repo = join(dir.path, 'repo');
  const binary = Buffer.from([0, 1, 2, 3, 255, 254, 0, 10, 13]);
  await writeTree(repo, {
    'keep.txt': 'one\ntwo\nthree\n',
    'gone.txt': 'delete me\n',
    'old-name.txt': 'a file that moves\nwith several lines\nso git sees a rename\n',
    'run.sh': '#!/bin/sh\necho hi\n',
  });
  await fs.writeFile(join(repo, 'blob.bin'), binary);
  git(repo, 'init', '-q');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'old');
  const oldTree = join(dir.path, 'old');
  cpSync(repo, oldTree, { recursive: true, filter: (src) => !src.includes('.git') });
  await fs.writeFile(join(repo, 'keep.txt'), 'one\n2\nthree\n');
  await fs.rm(join(repo, 'gone.txt'));
  await fs.rename(join(repo, 'old-name.txt'), join(repo, 'dir/new-name.txt').replace('dir/', ''));
  await fs.mkdir(join(repo, 'sub'));
  await fs.writeFile(join(repo, 'sub/added.txt'), 'brand new\n');
  await fs.chmod(join(repo, 'run.sh'), 0o755);
  await fs.writeFile(join(repo, 'blob.bin'), Buffer.concat([binary, Buffer.from([7, 7, 0])]));
  git(repo, 'add', '-A');
  const patch = git(repo, 'diff', '--cached', '--binary', '-M');
  expect(patch).toMatch(/rename from old-name.txt/);
  expect(patch).toMatch(/GIT binary patch/);
  expect(patch).toMatch(/deleted file mode/);
  expect(patch).toMatch(/old mode 100644\nnew mode 100755/);
  const newTree = join(dir.path, 'new');
  cpSync(repo, newTree, { recursive: true, filter: (src) => !src.includes('.git') });
  return { oldTree, newTree, patch };
}

describe('diff candidates have git apply semantics', () => {
  test('new, deleted, renamed, binary and mode changes, in a directory that is no repository', async () => {
    const { oldTree, newTree, patch } = await gitFormatCase();
    const [candidate] = prepareCandidates([patch]);
    await applyCandidate(candidate, oldTree);
    expect(await snapshot(oldTree)).toEqual(await snapshot(newTree));
  });

  test('inside a repository that is not the project, paths stay relative to the project', async () => {
    const { oldTree, newTree, patch } = await gitFormatCase();
    // The project sits in a subdirectory of an unrelated repository: git must not apply relative to that root.
    const outer = join(dir.path, 'outer');
    await fs.mkdir(outer);
    git(outer, 'init', '-q');
    const project = join(outer, 'project');
    cpSync(oldTree, project, { recursive: true });
    await gitApply(patch, project, 'nested');
    expect(await snapshot(project)).toEqual(await snapshot(newTree));
  });

  test('a patch that does not apply fails with git message and changes nothing', async () => {
    const { oldTree, patch } = await gitFormatCase();
    await fs.writeFile(join(oldTree, 'keep.txt'), 'something else entirely\n');
    const before = await snapshot(oldTree);
    const [candidate] = prepareCandidates([{ diff: patch, name: 'stale' }]);
    const err = await applyCandidate(candidate, oldTree).catch((e) => e);
    expect(err).toMatchObject({ name: 'PatchError', code: 'ERR_PATCH_APPLY' });
    expect(err.message).toMatch(/^candidate stale: git apply failed: .*keep\.txt/s);
    expect(await snapshot(oldTree)).toEqual(before);
  });

  test('garbage is not a patch', async () => {
    const [candidate] = prepareCandidates(['this is not a diff']);
    await expect(applyCandidate(candidate, dir.path)).rejects.toMatchObject({ code: 'ERR_PATCH_APPLY' });
  });
});

test('file maps write, replace and delete; functions get the directory', async () => {
  await writeTree(dir.path, { 'a.txt': 'a\n', 'old.txt': 'old\n', 'link-target.txt': 'target\n' });
  await fs.symlink('link-target.txt', join(dir.path, 'link.txt'));
  const [map, fn] = prepareCandidates([
    { 'a.txt': 'A\n', 'old.txt': null, 'deep/new.bin': new Uint8Array([0, 1, 2]), 'link.txt': 'now a file\n' },
    async (d: string) => fs.writeFile(join(d, 'from-fn.txt'), 'fn\n'),
  ]);
  expect(map.kind).toBe('files');
  expect(fn.kind).toBe('function');
  await applyCandidate(map, dir.path);
  await applyCandidate(fn, dir.path);
  const snap = await snapshot(dir.path);
  expect(Object.keys(snap).sort()).toEqual([
    'a.txt',
    'deep',
    'deep/new.bin',
    'from-fn.txt',
    'link-target.txt',
    'link.txt',
  ]);
  expect(await fs.readFile(join(dir.path, 'a.txt'), 'utf8')).toBe('A\n');
  // Writing through the symlink would have changed its target: the link is replaced instead.
  expect(await fs.readFile(join(dir.path, 'link-target.txt'), 'utf8')).toBe('target\n');
  expect(snap['link.txt']).toMatch(/^file /);
});
