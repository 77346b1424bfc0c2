/** src/base/layer-dir.ts: the one forced removal of overlay scratch, and the mount-table parsing it relies on. */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mountsUnder, removeLayerDir, removeLayerDirSync, unescapeMountPath } from '../../src/base/layer-dir.ts';

/** A layer dir as overlayfs leaves it: a mode-000 work/work, and an upper holding a read-only dir a test made. */
function lockedLayerDir(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'branching-layer-dir-')));
  mkdirSync(join(dir, 'work', 'work', 'incompat', 'volatile'), { recursive: true });
  mkdirSync(join(dir, 'upper', 'readonly', 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'upper', 'readonly', 'deeper', 'file'), 'x');
  chmodSync(join(dir, 'work', 'work', 'incompat', 'volatile'), 0);
  chmodSync(join(dir, 'work', 'work', 'incompat'), 0);
  chmodSync(join(dir, 'work', 'work'), 0);
  chmodSync(join(dir, 'upper', 'readonly', 'deeper'), 0o555);
  chmodSync(join(dir, 'upper', 'readonly'), 0o555);
  return dir;
}

describe('removeLayerDir / removeLayerDirSync', () => {
  it.each([
    ['removeLayerDirSync', async (dir: string) => removeLayerDirSync(dir)],
    ['removeLayerDir', (dir: string) => removeLayerDir(dir)],
  ])('%s removes mode-000 work dirs and read-only dirs, as any user', async (_name, remove) => {
    const dir = lockedLayerDir();
    await remove(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it('a dir that is already gone is not an error', async () => {
    const gone = join(tmpdir(), `branching-layer-dir-gone-${process.pid}`);
    expect(() => removeLayerDirSync(gone)).not.toThrow();
    await expect(removeLayerDir(gone)).resolves.toBeUndefined();
  });
});

describe('mountsUnder', () => {
  const line = (point: string) => `36 35 98:0 / ${point} rw,noatime master:1 - ext3 /dev/root rw`;
  it('lists the mount points at or under a dir, deepest first, unescaping mountinfo octal escapes', () => {
    const info = [line('/'), line('/a'), line('/a/b\\040c'), line('/a/b\\040c/d'), line('/ab')].join('\n');
    expect(mountsUnder('/a', info)).toEqual(['/a/b c/d', '/a/b c', '/a']);
    expect(mountsUnder('/elsewhere', info)).toEqual([]);
  });

  it('unescapes space, tab, newline and backslash', () => {
    expect(unescapeMountPath('/x\\040y\\011z\\012w\\134v')).toBe('/x y\tz\nw\\v');
  });
});
