/** The addon's file-tree primitives: a hole-keeping copy, and an rm -rf that any depth and any mode can't stop. */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
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
});
