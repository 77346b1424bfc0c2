import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, lstatSync, mkdtempSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseMounter, mountsUnder } from '../../src/backends/overlay.ts';
import { resolveStateDir } from '../../src/core/state.ts';
import { ArgumentError, LayerError, LayerStack, MountError, removeLayerDir, Workspace } from '../../src/index.ts';
import { overlayRequiredHere, skipUnless } from '../helpers/backends.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { requireFeature } from '../helpers/require-feature.ts';
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

/**
 * A temp dir the mounter may mount in: inside `branching run` without
 * `--allow $TMPDIR`, the helper only mounts under its roots, one of which
 * (the state root) is writable.
 */
function mountableTempDir(): ReturnType<typeof tempDir> {
  const roots = process.env.BRANCHING_HELPER_ROOTS?.split(':').filter(Boolean);
  const tmp = realpathSync(tmpdir());
  if (!roots || roots.some((r) => tmp === r || tmp.startsWith(`${r}/`))) return tempDir('branching-layer-');
  for (const root of roots) {
    try {
      const path = mkdtempSync(join(root, 'branching-layer-'));
      return { path, cleanup: () => fs.rm(path, { recursive: true, force: true }) };
    } catch {
      // not writable by us: try the next root
    }
  }
  return tempDir('branching-layer-');
}

function canWrite(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
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
      tmp = mountableTempDir();
      target = join(tmp.path, 'project');
      scratch = join(tmp.path, 'scratch');
      await fs.mkdir(scratch);
      await writeTree(target, BASE);
      stack = new LayerStack({ target, scratch });
      before = await snapshot(target);
    });

    afterEach(async () => {
      try {
        while (stack.depth > 0) stack.pop();
      } finally {
        for (const point of mountsUnder(tmp.path)) choice.mounter!.unmount(point);
      }
      await stack.settled().catch(() => {});
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
      await stack.settled();
      expect(readdirSync(scratch)).toEqual([]);
      expect(mountsUnder(tmp.path)).toEqual([]);
    });

    it('pop() leaves removing the scratch to the background, and settled() waits for it', async () => {
      stack.push('file');
      const { upper } = stack.push('test');
      await fs.writeFile(join(target, 'big.bin'), Buffer.alloc(1 << 20));
      stack.pop();
      // Removal starts after the caller's synchronous code: the popped layer's files are still there.
      expect(lstatSync(join(upper, 'big.bin')).size).toBe(1 << 20);
      await stack.settled();
      expect(lstatSync(upper, { throwIfNoEntry: false })).toBeUndefined();
      stack.pop();
      await stack.settled();
      expect(readdirSync(scratch)).toEqual([]);
    });

    it('settled() rejects with a removal that failed, and then resolves again', async () => {
      const { upper } = stack.push('test');
      const other = join(tmp.path, 'other');
      await fs.mkdir(other);
      stack.pop();
      // Something mounted in the popped layer's dir before its removal ran: removing would delete through it.
      choice.mounter!.bind(other, upper);
      await expect(stack.settled()).rejects.toMatchObject({ name: 'MountError', code: 'ERR_BRANCHING_STILL_MOUNTED' });
      choice.mounter!.unmount(upper);
      await expect(stack.settled()).resolves.toBeUndefined();
      expect(readdirSync(other)).toEqual([]);
    });

    describe('over an empty directory', () => {
      let empty: string;
      let emptyStack: LayerStack;
      beforeEach(async () => {
        empty = join(tmp.path, 'empty');
        await fs.mkdir(empty, { mode: 0o755 });
        emptyStack = new LayerStack({ target: empty, scratch });
      });
      afterEach(async () => {
        while (emptyStack.depth > 0) emptyStack.pop();
        await emptyStack.settled();
      });

      it('a layer needs no mount: its writes land in the directory, and ending it empties it again', async () => {
        const layer = emptyStack.push('file');
        expect(layer).toEqual({ name: 'file', depth: 1, upper: empty });
        expect(mountsUnder(empty)).toEqual([]);
        await fs.mkdir(join(empty, 'repo', '.git'), { recursive: true });
        await fs.writeFile(join(empty, 'repo', '.git', 'HEAD'), 'ref');
        await fs.chmod(join(empty, 'repo'), 0o555);
        await fs.chmod(empty, 0o700);
        expect((await emptyStack.changes()).map((c) => `${c.kind} ${c.path}`)).toEqual([
          'added repo',
          'added repo/.git',
          'added repo/.git/HEAD',
        ]);
        // A test layer over it sees the file layer's writes, keeps its own, and rolls them back.
        emptyStack.push('test');
        expect(mountsUnder(empty).length).toBe(1);
        await fs.writeFile(join(empty, 'test.txt'), 'test');
        expect(await fs.readFile(join(empty, 'repo', '.git', 'HEAD'), 'utf8')).toBe('ref');
        emptyStack.pop();
        expect(await fs.readdir(empty)).toEqual(['repo']);
        emptyStack.pop();
        expect(await fs.readdir(empty)).toEqual([]);
        expect(lstatSync(empty).mode & 0o7777).toBe(0o755);
        await emptyStack.settled();
        expect(mountsUnder(tmp.path)).toEqual([]);
        expect(readdirSync(scratch)).toEqual([]);
      });

      it('keep() copies what the layer holds out and empties the directory', async () => {
        emptyStack.push('test');
        await fs.mkdir(join(empty, 'd'));
        await fs.writeFile(join(empty, 'd', 'f'), 'f');
        await fs.symlink('d/f', join(empty, 'link'));
        const kept = await emptyStack.keep(join(tmp.path, 'kept'));
        expect(kept.deleted).toEqual([]);
        expect(await fs.readFile(join(kept.changes, 'd', 'f'), 'utf8')).toBe('f');
        expect(await fs.readlink(join(kept.changes, 'link'))).toBe('d/f');
        expect(await fs.readFile(kept.deletedList, 'utf8')).toBe('');
        expect(emptyStack.depth).toBe(0);
        expect(await fs.readdir(empty)).toEqual([]);
      });

      it('the cwd, in a directory the layer made, moves up to the target when it ends', async () => {
        const cwd = process.cwd();
        try {
          emptyStack.push('test');
          await fs.mkdir(join(empty, 'a', 'b'), { recursive: true });
          process.chdir(join(empty, 'a', 'b'));
          emptyStack.pop();
          expect(process.cwd()).toBe(realpathSync(empty));
        } finally {
          process.chdir(cwd);
        }
      });

      it('a view emptied by the layer below takes a layer without a mount too', async () => {
        stack.push('file');
        for (const name of await fs.readdir(target)) await fs.rm(join(target, name), { recursive: true });
        const mounts = mountsUnder(target).length;
        stack.push('test');
        expect(mountsUnder(target).length).toBe(mounts);
        await fs.writeFile(join(target, 'new.txt'), 'new');
        stack.pop();
        expect(await fs.readdir(target)).toEqual([]);
        stack.pop();
        expect(await snapshot(target)).toEqual(before);
      });
    });

    describe('popToSpare()', () => {
      const mountsAt = () => mountsUnder(target).length;

      it('a layer that changed nothing stays mounted, and the next push() takes it over without a mount', async () => {
        stack.push('file');
        const first = stack.push('test 1');
        await fs.readFile(join(target, 'a.txt'));
        const mounted = mountsAt();
        stack.popToSpare();
        expect(stack.depth).toBe(1);
        expect(stack.top?.name).toBe('file');
        expect(mountsAt()).toBe(mounted);
        const second = stack.push('test 2');
        expect(second).toEqual({ name: 'test 2', depth: 2, upper: first.upper });
        expect(mountsAt()).toBe(mounted);
        // Taken over, it is a layer like any other: its writes roll back with it.
        await fs.writeFile(join(target, 'a.txt'), 'changed');
        stack.popToSpare();
        expect(mountsAt()).toBe(mounted - 1);
        expect(await snapshot(target)).toEqual(before);
        const third = stack.push('test 3');
        expect(third.upper).not.toBe(first.upper);
        stack.pop();
        stack.pop();
        await stack.settled();
        expect(mountsUnder(tmp.path)).toEqual([]);
        expect(readdirSync(scratch)).toEqual([]);
      });

      it('what is written while the spare is up lands in the layer below, and rolls back with it', async () => {
        stack.push('file');
        stack.push('test 1');
        stack.popToSpare();
        // Code between two tests (an afterAll, a timer) writes, deletes and makes a directory.
        await fs.writeFile(join(target, 'a.txt'), 'between tests');
        await fs.rm(join(target, 'keep.txt'));
        await fs.mkdir(join(target, 'd', 'new'));
        await fs.writeFile(join(target, 'd', 'new', 'f'), 'f');
        stack.push('test 2');
        expect(await fs.readFile(join(target, 'a.txt'), 'utf8')).toBe('between tests');
        await fs.writeFile(join(target, 'a.txt'), 'test 2');
        stack.pop();
        expect(await fs.readFile(join(target, 'a.txt'), 'utf8')).toBe('between tests');
        expect(lstatSync(join(target, 'keep.txt'), { throwIfNoEntry: false })).toBeUndefined();
        expect(await fs.readFile(join(target, 'd', 'new', 'f'), 'utf8')).toBe('f');
        const changes = (await stack.changes()).map((c) => `${c.kind} ${c.path}`).sort();
        expect(changes).toEqual(['added d/new', 'added d/new/f', 'deleted keep.txt', 'modified a.txt']);
        stack.pop();
        expect(await snapshot(target)).toEqual(before);
      });

      it('pop(), changes(), keep() and commit see the layer below once the spare is settled', async () => {
        stack.push('file');
        stack.push('test');
        stack.popToSpare();
        await fs.writeFile(join(target, 'late.txt'), 'late');
        expect((await stack.changes()).map((c) => c.path)).toEqual(['late.txt']);
        expect(mountsUnder(target).length).toBe(1);
        stack.popToSpare();
        expect(mountsUnder(target).length).toBe(0);
        expect(await snapshot(target)).toEqual(before);
        await stack.settled();
        expect(readdirSync(scratch)).toEqual([]);
      });
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
      await stack.settled();
      expect(readdirSync(scratch)).toEqual([]);
    });

    it('relative paths follow the layers: the cwd is re-entered at every push and pop', async () => {
      const cwd = process.cwd();
      try {
        process.chdir(join(target, 'd'));
        stack.push('test');
        await fs.writeFile('relative.txt', 'through the cwd');
        await fs.mkdir('made');
        process.chdir('made');
        expect(await stack.changes()).toContainEqual({ path: 'd/relative.txt', kind: 'added', type: 'file' });
        stack.pop();
        // The cwd was made in the layer: the nearest directory that still exists takes over.
        expect(process.cwd()).toBe(join(target, 'd'));
        expect(await fs.readdir('.')).toEqual(['sub', 'x', 'y']);
      } finally {
        process.chdir(cwd);
      }
      expect(await snapshot(target)).toEqual(before);
    });

    it('keep() copies the changes out when the destination is on another filesystem', async (ctx) => {
      const shm = '/dev/shm';
      const otherFs = lstatSync(shm, { throwIfNoEntry: false })?.dev !== lstatSync(scratch).dev;
      if (!requireFeature('a writable /dev/shm on another filesystem', otherFs && canWrite(shm), null, false)) {
        ctx.skip();
      }
      const dest = mkdtempSync(join(shm, 'branching-kept-'));
      try {
        stack.push('test');
        await fs.writeFile(join(target, 'a.txt'), 'changed');
        await fs.rm(join(target, 'keep.txt'));
        await fs.rm(join(target, 'd'), { recursive: true });
        await fs.mkdir(join(target, 'd'));
        const kept = await stack.keep(dest);
        expect(lstatSync(kept.changes).dev).not.toBe(lstatSync(scratch).dev);
        expect(await fs.readFile(join(kept.changes, 'a.txt'), 'utf8')).toBe('changed');
        expect(devicesIn(kept.changes)).toEqual([]);
        expect(kept.deleted).toEqual(['keep.txt']);
        expect(await fs.readFile(join(dest, 'opaque.txt'), 'utf8')).toBe('d\n');
        await stack.settled();
        expect(readdirSync(scratch)).toEqual([]);
      } finally {
        await fs.rm(dest, { recursive: true, force: true });
      }
    });

    describe('commitTo()', () => {
      let real: string;
      let view: string;

      /** The layers go over `view`, a bind of the real tree: the real tree stays reachable at `real`. */
      beforeEach(async () => {
        real = target;
        view = join(tmp.path, 'view');
        await fs.mkdir(view);
        choice.mounter!.bind(real, view);
        stack = new LayerStack({ target: view, scratch });
      });

      it('lands modifications, new files, deletions and file<->dir swaps: the real tree equals the merged view', async () => {
        stack.push('test');
        await fs.writeFile(join(view, 'a.txt'), 'modified');
        await fs.mkdir(join(view, 'n', 'deep'), { recursive: true });
        await fs.writeFile(join(view, 'n', 'deep', 'new.txt'), 'new');
        await fs.rm(join(view, 'keep.txt'));
        await fs.rm(join(view, 'd', 'x'));
        // file -> dir
        await fs.rm(join(view, 'mode.sh'));
        await fs.mkdir(join(view, 'mode.sh'));
        await fs.writeFile(join(view, 'mode.sh', 'inner'), 'inner');
        // dir -> file
        await fs.rm(join(view, 'd', 'sub'), { recursive: true });
        await fs.writeFile(join(view, 'd', 'sub'), 'now a file');
        await fs.rm(join(view, 'link'));
        await fs.symlink('n/deep/new.txt', join(view, 'link'));
        const merged = await snapshot(view);
        expect(await snapshot(real)).toEqual(before);

        await stack.commitTo(real);
        expect(stack.depth).toBe(0);
        expect(await snapshot(real)).toEqual(merged);
        // With the layer gone the view shows the real tree: the same.
        expect(await snapshot(view)).toEqual(merged);
        await stack.settled();
        expect(readdirSync(scratch)).toEqual([]);
        // The journal finished: nothing is left to replay.
        const stateDir = resolveStateDir(realpathSync(real));
        expect(readdirSync(join(stateDir, 'txn'))).toEqual([]);
        expect(readFileSync(join(stateDir, 'main.version'), 'utf8')).toBe('1');
      });

      it("commits only the top layer's changes: the file layer's stay in the file layer", async () => {
        stack.push('file');
        await fs.writeFile(join(view, 'setup.txt'), 'from beforeAll');
        stack.push('test');
        await fs.writeFile(join(view, 'test.txt'), 'from the test');
        await stack.commitTo(real);
        expect(stack.depth).toBe(1);
        expect(await fs.readFile(join(real, 'test.txt'), 'utf8')).toBe('from the test');
        expect(await fs.readdir(real)).not.toContain('setup.txt');
        expect(await fs.readdir(view)).toEqual(expect.arrayContaining(['setup.txt', 'test.txt']));
        stack.pop();
        expect(await fs.readdir(view)).not.toContain('setup.txt');
      });

      it('refuses the target itself (or a path in it) as the workspace, changing nothing', async () => {
        stack.push('test');
        await fs.writeFile(join(view, 'a.txt'), 'modified');
        const merged = await snapshot(view);
        for (const bad of [view, join(view, 'd')]) {
          const err = await stack.commitTo(bad).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ArgumentError);
          expect(err).toMatchObject({ argument: 'workspaceRoot', code: 'ERR_BRANCHING_LAYER_COMMIT_INSIDE' });
        }
        const relative = await stack.commitTo('real').catch((e: unknown) => e);
        expect(relative).toMatchObject({ name: 'ArgumentError', argument: 'workspaceRoot' });
        expect(stack.depth).toBe(1);
        expect(await snapshot(view)).toEqual(merged);
        expect(await snapshot(real)).toEqual(before);
      });
    });

    describe('commitTo() SIGKILLed at any step', () => {
      const CHILD = join(repoRoot, 'test/fixtures/scripts/layer-commit-child.mjs');
      const TREE = {
        'mod.txt': 'original\n',
        'gone.txt': 'delete me\n',
        'was-file': 'file\n',
        'was-dir/inner.txt': 'inner\n',
        'mode.sh': { content: '#!/bin/sh\n', mode: 0o644 },
      };

      /** A real tree, a bind of it to mount the layers over, and a child that commits a layer into it. */
      async function trial(name: string, crashAt: number | null) {
        const dir = join(tmp.path, name);
        const [real, view, childScratch, stateDir] = ['real', 'view', 'scratch', 'state'].map((d) => join(dir, d));
        await writeTree(real, TREE);
        await Promise.all([view, childScratch, stateDir].map((d) => fs.mkdir(d)));
        choice.mounter!.bind(real, view);
        const env = { ...process.env };
        if (crashAt === null) delete env.BRANCHING_TEST_CRASH_AT_STEP;
        else env.BRANCHING_TEST_CRASH_AT_STEP = String(crashAt);
        const child = spawn(process.execPath, [CHILD, real, view, childScratch, stateDir], {
          env,
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
        // The child's mounts outlive it (this mount namespace is not its own).
        for (const point of mountsUnder(dir)) choice.mounter!.unmount(point);
        return { real, stateDir, code, signal };
      }

      it('leaves the old or the new tree once recovered, and the kill points straddle the commit point', async () => {
        assertBuilt();
        const old = await snapshot(
          await (async () => {
            const dir = join(tmp.path, 'old');
            await writeTree(dir, TREE);
            return dir;
          })(),
        );
        const reference = await trial('reference', null);
        expect(reference.code).toBe(0);
        const committed = await snapshot(reference.real);
        expect(committed).not.toEqual(old);
        const seen = { old: 0, new: 0 };
        let crashAt = 0;
        for (; crashAt < 100; crashAt++) {
          const run = await trial(`crash-${crashAt}`, crashAt);
          if (run.signal === null) break; // past the last step: the commit finished
          expect(run.signal).toBe('SIGKILL');
          // Opening the workspace replays (or discards) the interrupted journal.
          const ws = await Workspace.open(run.real, { stateDir: run.stateDir, onNotice: () => {} });
          const now = await snapshot(run.real);
          const which = JSON.stringify(now) === JSON.stringify(committed) ? 'new' : 'old';
          expect(now, `killed at step ${crashAt}: neither the old nor the new tree`).toEqual(
            which === 'new' ? committed : old,
          );
          seen[which]++;
          await ws.close();
        }
        expect(crashAt).toBeLessThan(100);
        expect(seen.old).toBeGreaterThan(0);
        expect(seen.new).toBeGreaterThan(0);
      });
    });

    describe('bad input', () => {
      /** Nothing changed: the tree, the scratch dir and the mount table are as before. */
      async function expectUntouched(mounts: string[]): Promise<void> {
        expect(await snapshot(target)).toEqual(before);
        await stack.settled();
        expect(readdirSync(scratch)).toEqual([]);
        expect(mountsUnder(tmp.path)).toEqual(mounts);
      }

      it('rejects a target that is not an absolute path to a directory', async () => {
        for (const [bad, code] of [
          ['project', 'ERR_BRANCHING_ARGUMENT'],
          ['', 'ERR_BRANCHING_ARGUMENT'],
          [join(tmp.path, 'missing'), 'ERR_BRANCHING_ARGUMENT'],
          [join(target, 'a.txt'), 'ERR_BRANCHING_ARGUMENT'],
        ] as const) {
          const err = (() => {
            try {
              new LayerStack({ target: bad, scratch });
            } catch (e) {
              return e;
            }
          })();
          expect(err).toBeInstanceOf(ArgumentError);
          expect(err).toMatchObject({ argument: 'target', code });
        }
        await expectUntouched([]);
      });

      it('rejects a scratch dir inside the target, or a path overlay options cannot carry', async () => {
        const inside = join(target, 'd');
        expect(() => new LayerStack({ target, scratch: inside })).toThrow(
          expect.objectContaining({
            name: 'ArgumentError',
            argument: 'scratch',
            code: 'ERR_BRANCHING_LAYER_SCRATCH_INSIDE',
          }),
        );
        expect(() => new LayerStack({ target, scratch: target })).toThrow(
          expect.objectContaining({ argument: 'scratch', code: 'ERR_BRANCHING_LAYER_SCRATCH_INSIDE' }),
        );
        const comma = join(tmp.path, 'a,b');
        await fs.mkdir(comma);
        expect(() => new LayerStack({ target, scratch: comma })).toThrow(
          expect.objectContaining({ argument: 'scratch', code: 'ERR_BRANCHING_UNSAFE_PATH' }),
        );
        await fs.rmdir(comma);
        await expectUntouched([]);
      });

      it('pop(), changes(), keep() and commitTo() on an empty stack throw a LayerError', async () => {
        expect(() => stack.pop()).toThrow(LayerError);
        expect(() => stack.pop()).toThrow(expect.objectContaining({ code: 'ERR_BRANCHING_LAYER_EMPTY', path: target }));
        for (const call of [
          () => stack.changes(),
          () => stack.keep(join(tmp.path, 'kept')),
          () => stack.commitTo(tmp.path),
        ]) {
          const err = await call().catch((e: unknown) => e);
          expect(err).toBeInstanceOf(LayerError);
          expect(err).toMatchObject({ code: 'ERR_BRANCHING_LAYER_EMPTY' });
        }
        expect(() => stack.push('')).toThrow(expect.objectContaining({ name: 'ArgumentError', argument: 'name' }));
        expect(stack.depth).toBe(0);
        await expectUntouched([]);
        expect(await fs.readdir(tmp.path)).toEqual(['project', 'scratch']);
      });

      it('keep() refuses a destination inside the target or an earlier kept layer, leaving the layer mounted', async () => {
        stack.push('test');
        await fs.writeFile(join(target, 'a.txt'), 'changed');
        const merged = await snapshot(target);
        const mounts = mountsUnder(tmp.path);
        await fs.symlink(join(target, 'd'), join(tmp.path, 'into-target'));
        for (const bad of [join(target, 'kept'), join(tmp.path, 'into-target', 'new', 'kept')]) {
          const inside = await stack.keep(bad).catch((e: unknown) => e);
          expect(inside).toBeInstanceOf(ArgumentError);
          expect(inside).toMatchObject({ argument: 'dest', code: 'ERR_BRANCHING_LAYER_DEST_INSIDE' });
        }
        const relative = await stack.keep('kept').catch((e: unknown) => e);
        expect(relative).toMatchObject({ name: 'ArgumentError', argument: 'dest' });
        const taken = join(tmp.path, 'taken');
        await fs.mkdir(join(taken, 'changes'), { recursive: true });
        const twice = await stack.keep(taken).catch((e: unknown) => e);
        expect(twice).toMatchObject({
          name: 'ArgumentError',
          argument: 'dest',
          code: 'ERR_BRANCHING_LAYER_DEST_TAKEN',
        });
        expect(stack.depth).toBe(1);
        expect(await snapshot(target)).toEqual(merged);
        expect(mountsUnder(tmp.path)).toEqual(mounts);
        stack.pop();
        await expectUntouched([]);
      });

      it('a push the kernel refuses (too many layers for one page of mount options) throws a MountError and leaves the stack as it was', async () => {
        let failure: unknown = null;
        while (stack.depth < 300 && failure === null) {
          const mounts = mountsUnder(tmp.path).length;
          const depth = stack.depth;
          const layerDirs = stack.depth === 0 ? [] : readdirSync(join(stack.top!.upper, '..', '..')).sort();
          try {
            stack.push();
          } catch (err) {
            failure = err;
            expect(stack.depth).toBe(depth);
            expect(mountsUnder(tmp.path)).toHaveLength(mounts);
            expect(readdirSync(join(stack.top!.upper, '..', '..')).sort()).toEqual(layerDirs);
          }
        }
        expect(failure).toBeInstanceOf(MountError);
        expect(failure, String((failure as Error).message)).toMatchObject({
          path: target,
          message: expect.stringContaining('one page mount options'),
        });
        expect(stack.depth).toBeGreaterThan(10);
        while (stack.depth > 0) stack.pop();
        await expectUntouched([]);
      });

      it('pop() refuses to unmount a mount that is not its layer', async () => {
        stack.push('test');
        const other = join(tmp.path, 'other');
        await fs.mkdir(other);
        await fs.writeFile(join(other, 'other.txt'), 'other');
        choice.mounter!.bind(other, target);
        expect(() => stack.pop()).toThrow(
          expect.objectContaining({ name: 'LayerError', code: 'ERR_BRANCHING_LAYER_COVERED' }),
        );
        expect(stack.depth).toBe(1);
        expect(await fs.readdir(target)).toEqual(['other.txt']);
        choice.mounter!.unmount(target);
        stack.pop();
        await expectUntouched([]);
      });
    });

    it(`${CYCLES} file/test push-pop cycles leave no mount, scratch dir or descriptor behind`, async () => {
      const cycle = async (i: number) => {
        stack.push('file');
        stack.push(`test ${i}`);
        await fs.writeFile(join(target, 'a.txt'), String(i));
        await fs.rm(join(target, 'd'), { recursive: true });
        stack.pop();
        stack.pop();
      };
      await cycle(-1); // warm up: lazily opened descriptors (the mount helper's, the addon's) count as before
      const fds = openFds();
      for (let i = 0; i < CYCLES; i++) await cycle(i);
      await stack.settled();
      expect(mountsUnder(target)).toEqual([]);
      expect(mountsUnder(scratch)).toEqual([]);
      expect(readdirSync(scratch)).toEqual([]);
      expect(openFds()).toBe(fds);
      expect(await snapshot(target)).toEqual(before);
    });
  },
);
