import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseMounter, mountsUnder } from '../../src/backends/overlay.ts';
import { ArgumentError, LayerError, LayerStack, removeLayerDir } from '../../src/index.ts';
import { overlayRequiredHere, skipUnless } from '../helpers/backends.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const choice = chooseMounter();
const CYCLES = Number(process.env.BRANCHING_LEAK_CYCLES ?? 200);

const BASE = {
  'a.txt': 'a',
  'keep.txt': 'keep',
  'mode.sh': { content: '#!/bin/sh\n', mode: 0o755 },
  link: { symlink: 'a.txt' },
  'd/x': 'x',
  'd/y': 'y',
  'd/sub/z': 'z',
  empty: null,
};

/** The lowerdir list of the topmost overlay at `target`. */
function lowersOf(target: string): string[] {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === target);
  const options = lines.at(-1)?.split(' - ')[1]?.split(' ')[2] ?? '';
  return (
    options
      .split(',')
      .find((o) => o.startsWith('lowerdir='))
      ?.slice(9)
      .split(':') ?? []
  );
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Every character device (overlayfs whiteout) in a tree. */
function devicesIn(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isCharacterDevice()) out.push(path);
    else if (entry.isDirectory()) out.push(...devicesIn(dir, path));
  }
  return out;
}

describe.skipIf(skipUnless(choice.mounter !== null, 'overlay mounts', choice.reason, overlayRequiredHere()))(
  'LayerStack',
  () => {
    let tmp: ReturnType<typeof tempDir>;
    let target: string;
    let scratch: string;
    let stack: LayerStack;
    let before: Snapshot;

    beforeEach(async () => {
      tmp = tempDir('branching-layer-');
      target = join(tmp.path, 'project');
      scratch = join(tmp.path, 'scratch');
      await fs.mkdir(scratch);
      await writeTree(target, BASE);
      stack = new LayerStack({ target, scratch });
      before = await snapshot(target);
    });

    afterEach(async () => {
      while (stack.depth > 0) stack.pop();
      for (const point of mountsUnder(tmp.path)) choice.mounter!.unmount(point);
      await removeLayerDir(tmp.path);
    });

    it('push/pop round trips restore the tree byte for byte and remove the scratch', async () => {
      const layer = stack.push('test');
      expect(layer).toMatchObject({ name: 'test', depth: 1 });
      expect(stack.top?.name).toBe('test');
      await fs.writeFile(join(target, 'a.txt'), 'changed');
      await fs.writeFile(join(target, 'new.txt'), 'new');
      await fs.rm(join(target, 'keep.txt'));
      await fs.chmod(join(target, 'mode.sh'), 0o600);
      await fs.rm(join(target, 'd'), { recursive: true });
      await fs.symlink('new.txt', join(target, 'link2'));
      expect(await fs.readFile(join(target, 'a.txt'), 'utf8')).toBe('changed');
      expect(await snapshot(target)).not.toEqual(before);

      stack.pop();
      expect(stack.depth).toBe(0);
      expect(stack.top).toBeNull();
      expect(await snapshot(target)).toEqual(before);
      expect(readdirSync(scratch)).toEqual([]);
      expect(mountsUnder(tmp.path)).toEqual([]);
    });

    it('nested layers see the writes of the layers below, deeper than overlayfs stacking allows', async () => {
      const file = stack.push('file');
      await fs.writeFile(join(target, 'one.txt'), '1');
      await fs.writeFile(join(target, 'a.txt'), 'a1');
      const test = stack.push('test');
      expect(await fs.readFile(join(target, 'one.txt'), 'utf8')).toBe('1');
      expect(await fs.readFile(join(target, 'a.txt'), 'utf8')).toBe('a1');
      await fs.writeFile(join(target, 'two.txt'), '2');
      stack.push('inner');
      expect(stack.depth).toBe(3);
      // Three overlays over one path: each one is mounted on the original content, not on the overlay below.
      const lowers = lowersOf(target);
      expect(lowers.slice(0, 2)).toEqual([test.upper, file.upper]);
      expect(lowers).toHaveLength(3);
      expect(lowers[2].startsWith(`${scratch}/`)).toBe(true);
      expect(await fs.readFile(join(target, 'two.txt'), 'utf8')).toBe('2');
      await fs.writeFile(join(target, 'three.txt'), '3');

      stack.pop();
      expect(await fs.readdir(target)).toContain('two.txt');
      expect(await fs.readdir(target)).not.toContain('three.txt');
      stack.pop();
      expect(await fs.readdir(target)).not.toContain('two.txt');
      expect(await fs.readFile(join(target, 'a.txt'), 'utf8')).toBe('a1');
      // Writes between tests land in the file's layer.
      await fs.writeFile(join(target, 'after.txt'), 'after');
      expect(await stack.changes()).toContainEqual({ path: 'after.txt', kind: 'added', type: 'file' });
      stack.pop();
      expect(await snapshot(target)).toEqual(before);
    });

    it("deletes a base file and a lower layer's file, and popping brings both back", async () => {
      stack.push('file');
      await fs.writeFile(join(target, 'lower.txt'), 'from the file layer');
      stack.push('test');
      await fs.rm(join(target, 'keep.txt'));
      await fs.rm(join(target, 'lower.txt'));
      await fs.rm(join(target, 'd', 'sub', 'z'));
      expect(await fs.readdir(target)).not.toContain('keep.txt');
      expect(await fs.readdir(target)).not.toContain('lower.txt');
      expect(await stack.changes()).toEqual([
        { path: 'd/sub/z', kind: 'deleted', type: null },
        { path: 'keep.txt', kind: 'deleted', type: null },
        { path: 'lower.txt', kind: 'deleted', type: null },
      ]);
      stack.pop();
      expect(await fs.readFile(join(target, 'lower.txt'), 'utf8')).toBe('from the file layer');
      expect(await fs.readFile(join(target, 'keep.txt'), 'utf8')).toBe('keep');
      expect(await fs.readFile(join(target, 'd', 'sub', 'z'), 'utf8')).toBe('z');
    });

    it('a directory removed and made again is opaque: nothing below shows through', async () => {
      stack.push('test');
      await fs.rm(join(target, 'd'), { recursive: true });
      await fs.mkdir(join(target, 'd'));
      await fs.writeFile(join(target, 'd', 'fresh'), 'fresh');
      expect(await fs.readdir(join(target, 'd'))).toEqual(['fresh']);
      await fs.writeFile(join(target, 'a.txt'), 'modified');
      await fs.mkdir(join(target, 'newdir'));
      await fs.writeFile(join(target, 'newdir', 'f'), 'f');
      await fs.chmod(join(target, 'empty'), 0o700);
      const changes = await stack.changes();
      expect(changes).toContainEqual({ path: 'd', kind: 'opaque', type: 'dir' });
      expect(changes).toContainEqual({ path: 'a.txt', kind: 'modified', type: 'file' });
      expect(changes).toContainEqual({ path: 'newdir', kind: 'added', type: 'dir' });
      expect(changes).toContainEqual({ path: 'newdir/f', kind: 'added', type: 'file' });
      expect(changes).toContainEqual({ path: 'empty', kind: 'modified', type: 'dir' });
      // What the opaque directory holds now is all new; nothing of what it hides is listed.
      expect(changes.filter((c) => c.path.startsWith('d/'))).toEqual([
        { path: 'd/fresh', kind: 'added', type: 'file' },
      ]);
      expect(changes.filter((c) => c.path === 'd/x' || c.path === 'd/y')).toEqual([]);
      stack.pop();
      expect(await fs.readdir(join(target, 'd'))).toEqual(['sub', 'x', 'y']);
    });

    it('keep() moves the changes out, lists the deletions instead of whiteouts, and pops', async () => {
      const dest = join(tmp.path, 'kept');
      stack.push('file');
      stack.push('failing test');
      await fs.writeFile(join(target, 'a.txt'), 'changed');
      await fs.mkdir(join(target, 'made', 'deep'), { recursive: true });
      await fs.writeFile(join(target, 'made', 'deep', 'f'), 'f');
      await fs.rm(join(target, 'keep.txt'));
      await fs.rm(join(target, 'd', 'x'));
      await fs.rm(join(target, 'd', 'sub'), { recursive: true });
      await fs.mkdir(join(target, 'd', 'sub'));

      const kept = await stack.keep(dest);
      expect(stack.depth).toBe(1);
      expect(kept.changes).toBe(join(dest, 'changes'));
      expect(await fs.readFile(join(dest, 'changes', 'a.txt'), 'utf8')).toBe('changed');
      expect(await fs.readFile(join(dest, 'changes', 'made', 'deep', 'f'), 'utf8')).toBe('f');
      expect(devicesIn(join(dest, 'changes'))).toEqual([]);
      expect(await fs.readFile(join(dest, 'deleted.txt'), 'utf8')).toBe('d/x\nkeep.txt\n');
      expect(kept.deleted).toEqual(['d/x', 'keep.txt']);
      expect(kept.opaque).toEqual(['d/sub']);
      expect(await fs.readFile(join(dest, 'opaque.txt'), 'utf8')).toBe('d/sub\n');
      // The file layer is back, unchanged by the kept test.
      expect(await snapshot(target)).toEqual(before);
      stack.pop();
      expect(readdirSync(scratch)).toEqual([]);
    });
  },
);
