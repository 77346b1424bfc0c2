/** The addon's file-tree primitives: a hole-keeping copy, and an rm -rf that any depth and any mode can't stop. */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/addon.ts';
import { Workspace } from '../../src/index.ts';
import { requireFeature } from '../helpers/require-feature.ts';

const { binding, reason } = loadNative();
const hasAddon = requireFeature(
  'the native addon',
  binding !== null && process.platform === 'linux',
  reason ?? 'not Linux',
);
const n = binding!;
const GB = 1024 ** 3;

/** A sparse file: `size` bytes, data only at the start and the end. */
function sparseFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  writeSync(fd, 'head');
  writeSync(fd, 'tail', size - 4);
  closeSync(fd);
}

/** A chain of `depth` nested directories named `d`, built with relative paths (the whole path exceeds PATH_MAX). */
function deepTree(root: string, depth: number): void {
  mkdirSync(root, { recursive: true });
  // a child process: chdir step by step is the only way down, and it must not move this worker's cwd
  const script = `const fs = require('fs'); process.chdir(process.argv[1]);
    for (let i = 0; i < ${depth}; i++) { fs.mkdirSync('d'); process.chdir('d'); }
    fs.writeFileSync('leaf', 'x');`;
  const r = spawnSync(process.execPath, ['-e', script, root]);
  expect(r.status, r.stderr.toString()).toBe(0);
}

describe.skipIf(!hasAddon)('native tree primitives', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'branching-tree-'));
  });
  afterEach(() => {
    if (existsSync(dir)) n.removeTree(dir);
  });

  it('copyFile keeps holes: a 1 GB sparse file copies in well under a second and allocates almost nothing', () => {
    const src = join(dir, 'sparse.bin');
    sparseFile(src, GB);
    chmodSync(src, 0o640);
    utimesSync(src, 1_000_000, 2_000_000);
    const started = process.hrtime.bigint();
    n.copyFile(src, join(dir, 'copy.bin'));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const st = statSync(join(dir, 'copy.bin'));
    expect(st.size).toBe(GB);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    expect(ms).toBeLessThan(1000); // the bound the copy is specified to meet, not a timing of the suite
    expect(st.mode & 0o777).toBe(0o640);
    expect(Math.round(st.mtimeMs / 1000)).toBe(2_000_000);
    const fd = openSync(join(dir, 'copy.bin'), 'r');
    const tail = Buffer.alloc(4);
    readSync(fd, tail, 0, 4, GB - 4);
    closeSync(fd);
    expect(tail.toString()).toBe('tail');
    const head = Buffer.alloc(4);
    const again = openSync(join(dir, 'copy.bin'), 'r');
    readSync(again, head, 0, 4, 0);
    closeSync(again);
    expect(head.toString()).toBe('head');
  });

  it('copyFile refuses an existing destination and a non-file source, with code, syscall and path', () => {
    writeFileSync(join(dir, 'a'), 'a');
    writeFileSync(join(dir, 'b'), 'b');
    expect(() => n.copyFile(join(dir, 'a'), join(dir, 'b'))).toThrow(
      expect.objectContaining({ code: 'EEXIST', syscall: 'open', path: join(dir, 'b') }),
    );
    expect(() => n.copyFile(dir, join(dir, 'c'))).toThrow(expect.objectContaining({ code: 'EINVAL', path: dir }));
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('b');
    expect(existsSync(join(dir, 'c'))).toBe(false);
  });

  it('removeTree removes a 10,000-deep tree (paths past PATH_MAX), mode-000 and read-only dirs, never through a symlink', () => {
    const victim = join(dir, 'victim');
    deepTree(victim, 10_000);
    mkdirSync(join(victim, 'locked', 'inner'), { recursive: true });
    writeFileSync(join(victim, 'locked', 'inner', 'f'), 'f');
    chmodSync(join(victim, 'locked', 'inner'), 0o000);
    chmodSync(join(victim, 'locked'), 0o555);
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'keep');
    symlinkSync(outside, join(victim, 'link-out'));
    n.removeTree(victim);
    expect(existsSync(victim)).toBe(false);
    expect(readFileSync(join(outside, 'keep.txt'), 'utf8')).toBe('keep');
    n.removeTree(victim); // a missing path is fine
  });

  it('a clone branch of a project holding a 1 GB sparse file is cheap, and aborting a deep branch leaves nothing', async () => {
    const project = join(dir, 'project');
    mkdirSync(project);
    sparseFile(join(project, 'disk.img'), GB);
    const ws = new Workspace(project, { backend: 'clone', stateDir: join(dir, 'state'), onNotice: () => {} });
    const b = await ws.branch('sparse');
    const st = statSync(join(b.path, 'disk.img'));
    expect(st.size).toBe(GB);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    deepTree(b.path, 3000);
    await b.abort();
    expect(existsSync(b.path)).toBe(false);
    await ws.close();
  });

  /** Every entry below `root` as [rel, kind, mode, mtime s, content or link target], for comparing trees. */
  function describeTree(root: string, rel = ''): Array<[string, string, number, number, string]> {
    const out: Array<[string, string, number, number, string]> = [];
    for (const name of readdirSync(join(root, rel)).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, child));
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
      const body =
        kind === 'file'
          ? readFileSync(join(root, child), 'utf8')
          : kind === 'link'
            ? readlinkSync(join(root, child))
            : '';
      out.push([
        child,
        kind,
        st.mode & 0o7777,
        Math.round(st.mtimeMs / 1000),
        kind === 'file' && st.size > 1e6 ? `${st.size}` : body,
      ]);
      if (kind === 'dir' && (st.mode & 0o500) === 0o500) out.push(...describeTree(root, child));
    }
    return out;
  }

  it('copyTree copies like cp -a (modes, times, read-only dirs, symlinks, empty dirs, holes) and lists the copy', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'locked'), { recursive: true });
    mkdirSync(join(src, 'empty'));
    writeFileSync(join(src, 'locked', 'inner.txt'), 'inner');
    writeFileSync(join(src, 'plain.txt'), 'plain');
    chmodSync(join(src, 'plain.txt'), 0o640);
    utimesSync(join(src, 'plain.txt'), 1_000_000, 2_000_000);
    symlinkSync('does/not/exist', join(src, 'dangling'));
    sparseFile(join(src, 'sparse.bin'), 64 * 1024 * 1024);
    expect(spawnSync('mkfifo', [join(src, 'pipe')]).status).toBe(0);
    chmodSync(join(src, 'locked'), 0o555);
    const dest = join(dir, 'dest');
    const copied = await n.copyTree(src, dest, 4, [], '');
    const expected = describeTree(src).filter(([rel]) => rel !== 'pipe');
    expect(describeTree(dest)).toEqual(expected);
    expect(copied.skipped).toEqual(['pipe']);
    expect(statSync(join(dest, 'sparse.bin')).blocks * 512).toBeLessThan(1024 * 1024);
    // the listing describes the copy itself: its inodes and modes, each entry once, the root last
    expect([...copied.paths].sort()).toEqual(['', ...expected.map(([rel]) => rel)].sort());
    expect(copied.paths.at(-1)).toBe('');
    const stats = new BigUint64Array(copied.stats);
    copied.paths.forEach((rel, i) => {
      const st = lstatSync(join(dest, rel), { bigint: true });
      expect([rel, stats[i * 5], Number(stats[i * 5 + 4])]).toEqual([rel, st.ino, Number(st.mode & 0o7777n)]);
      expect(copied.kinds[i]).toBe(st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f');
    });
    chmodSync(join(src, 'locked'), 0o755);
  });

  it('copyTree links shared directories at any depth, hard-links files when asked, and refuses a bad destination', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'packages', 'a', 'node_modules', 'dep'), { recursive: true });
    writeFileSync(join(src, 'packages', 'a', 'node_modules', 'dep', 'index.js'), '');
    writeFileSync(join(src, 'file.txt'), 'x');
    await n.copyTree(src, join(dir, 'linked'), 2, ['node_modules'], '/the/workspace');
    expect(readlinkSync(join(dir, 'linked', 'packages', 'a', 'node_modules'))).toBe(
      '/the/workspace/packages/a/node_modules',
    );
    expect(statSync(join(dir, 'linked', 'file.txt')).ino).toBe(statSync(join(src, 'file.txt')).ino);
    await expect(n.copyTree(src, join(dir, 'linked'), 0, [], '')).rejects.toMatchObject({
      code: 'EEXIST',
      syscall: 'mkdir',
      path: join(dir, 'linked'),
    });
    await expect(n.copyTree(join(dir, 'missing'), join(dir, 'x'), 0, [], '')).rejects.toMatchObject({
      code: 'ENOENT',
      path: join(dir, 'missing'),
    });
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it('a clone branch of a project holding a tree deeper than PATH_MAX is created, scanned, committed and aborted', async () => {
    const project = join(dir, 'project');
    deepTree(join(project, 'deep'), 3000);
    writeFileSync(join(project, 'top.txt'), 'old');
    const listed = await n.scanTree(project);
    expect(listed.paths).toHaveLength(3000 + 3); // deep, 3000 dirs below it, the leaf, top.txt
    expect(listed.paths.indexOf('deep')).toBeLessThan(listed.paths.indexOf('deep/d'));
    const ws = new Workspace(project, { backend: 'clone', stateDir: join(dir, 'state'), onNotice: () => {} });
    const b = await ws.branch('deep');
    const inBranch = await n.scanTree(b.path);
    expect([...inBranch.paths].sort()).toEqual([...listed.paths].sort());
    writeFileSync(join(b.path, 'top.txt'), 'new');
    await b.commit();
    expect(readFileSync(join(project, 'top.txt'), 'utf8')).toBe('new');
    const again = await ws.branch('again');
    await again.abort();
    expect(existsSync(again.path)).toBe(false);
    await ws.close();
    expect(readdirSync(join(dir, 'state')).flatMap((d) => readdirSync(join(dir, 'state', d, 'branches')))).toEqual([]);
  });
});
