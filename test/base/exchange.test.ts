// exchangeTrees swaps two trees' contents with renames; the directories on a kept path stay the
// same inodes (a process's cwd inside them stays valid) while their contents swap too.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exchangeTrees } from '../../src/base/fsutil.ts';
import { snapshot, tempDir, writeTree } from '../helpers/tree.ts';

let dir: ReturnType<typeof tempDir> | undefined;
afterEach(async () => {
  await dir?.cleanup();
  dir = undefined;
});

describe('exchangeTrees', () => {
  it('swaps contents, keeping the inodes of the kept directories', async () => {
    dir = tempDir('branching-exchange-');
    const a = join(dir.path, 'a');
    const b = join(dir.path, 'b');
    await writeTree(a, { 'pkg/x/only-a.txt': 'a\n', 'pkg/same.txt': 'from a\n', 'top-a.txt': 'A\n' });
    await writeTree(b, { 'pkg/x/only-b.txt': 'b\n', 'pkg/same.txt': 'from b\n', 'dir-b/f.txt': 'B\n' });
    const [snapA, snapB] = [await snapshot(a), await snapshot(b)];
    const keptInode = statSync(join(a, 'pkg/x')).ino;
    exchangeTrees(a, b, new Set(['pkg', 'pkg/x']));
    expect(await snapshot(a)).toEqual(snapB);
    expect(await snapshot(b)).toEqual(snapA);
    expect(statSync(join(a, 'pkg/x')).ino).toBe(keptInode);
  });
});
