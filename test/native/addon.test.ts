import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/addon.ts';
import { requireFeature } from '../helpers/require-feature.ts';

const { binding, reason } = loadNative();
const hasAddon = requireFeature('the native addon', binding !== null, reason);
const n = binding!;
const addonFile = loadNative().file ?? 'branching.node';

function expectSystemError(fn: () => unknown, code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(Error);
  const err = caught as NodeJS.ErrnoException;
  expect(err.code).toBe(code);
  expect(err.syscall).toBe(syscall);
  expect(typeof err.errno).toBe('number');
  expect(err.errno).toBeLessThan(0);
  if (path !== undefined) expect(err.path).toBe(path);
  expect(err.message).toContain(code);
  return err;
}

describe.skipIf(!hasAddon)('native addon', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'branching-native-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('maps errno to Node-style errors (code, negative errno, syscall, path)', () => {
    const missing = join(dir, 'missing');
    const err = expectSystemError(() => n.getxattr(missing, 'user.x'), 'ENOENT', 'lgetxattr', missing);
    expect(err.errno).toBe(-2);
    // not a mount point (root: EINVAL), or not allowed to unmount at all (EPERM)
    expectSystemError(() => n.umount2(dir, 0), process.getuid?.() === 0 ? 'EINVAL' : 'EPERM', 'umount2', dir);
    expectSystemError(
      () => n.mount('none', dir, 'no-such-fs', 0, null),
      process.getuid?.() === 0 ? 'ENODEV' : 'EPERM',
      'mount',
      dir,
    );
    expectSystemError(() => n.listxattr(missing), 'ENOENT', 'llistxattr', missing);
    expect(() => n.mount(1 as unknown as string, dir, null, 0, null)).toThrow(TypeError);
  });

  it('exposes the Linux constants', () => {
    expect(n.constants.MS_BIND).toBe(4096);
    expect(n.constants.MS_REC).toBe(16384);
    expect(n.constants.MNT_DETACH).toBe(2);
    expect(n.constants.RENAME_NOREPLACE).toBe(1);
    expect(n.constants.RENAME_EXCHANGE).toBe(2);
    expect(n.constants.RENAME_WHITEOUT).toBe(4);
    expect(n.constants.XATTR_CREATE).toBe(1);
    expect(Object.isFrozen(n.constants)).toBe(true);
  });

  it('round-trips user.* xattrs without following symlinks', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    expect(n.getxattr(file, 'user.branching.test')).toBeNull();
    n.setxattr(file, 'user.branching.test', Buffer.from([0, 1, 2, 255]), 0);
    expect([...n.getxattr(file, 'user.branching.test')!]).toEqual([0, 1, 2, 255]);
    n.setxattr(file, 'user.branching.s', 'y', n.constants.XATTR_CREATE);
    expectSystemError(
      () => n.setxattr(file, 'user.branching.s', 'z', n.constants.XATTR_CREATE),
      'EEXIST',
      'lsetxattr',
      file,
    );
    expect(n.listxattr(file).sort()).toEqual(['user.branching.s', 'user.branching.test']);
    n.removexattr(file, 'user.branching.test');
    expect(n.getxattr(file, 'user.branching.test')).toBeNull();
    expectSystemError(() => n.removexattr(file, 'user.branching.test'), 'ENODATA', 'lremovexattr', file);
  });

  it('cloneFile clones with the source mode, or fails cleanly with EOPNOTSUPP/EXDEV/EINVAL', () => {
    const src = join(dir, 'src');
    const dest = join(dir, 'dest');
    writeFileSync(src, 'hello', { mode: 0o640 });
    try {
      n.cloneFile(src, dest);
      expect(readFileSync(dest, 'utf8')).toBe('hello');
      expect(statSync(dest).mode & 0o7777).toBe(0o640);
      expectSystemError(() => n.cloneFile(src, dest), 'EEXIST', 'open', dest);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      expect(['EOPNOTSUPP', 'EXDEV', 'EINVAL']).toContain(e.code);
      expect(e.syscall).toBe('ioctl_ficlone');
      expect(e.path).toBe(src);
      expect(existsSync(dest)).toBe(false); // no half-made destination left behind
    }
    expectSystemError(() => n.cloneFile(join(dir, 'nope'), dest), 'ENOENT', 'open', join(dir, 'nope'));
  });

  it('renameat2 honours NOREPLACE and EXCHANGE', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'A');
    writeFileSync(b, 'B');
    expectSystemError(() => n.renameat2(a, b, n.constants.RENAME_NOREPLACE), 'EEXIST', 'renameat2', a);
    n.renameat2(a, b, n.constants.RENAME_EXCHANGE);
    expect(readFileSync(a, 'utf8')).toBe('B');
    expect(readFileSync(b, 'utf8')).toBe('A');
  });

  it('mknodWhiteout creates a 0/0 character device', () => {
    const w = join(dir, 'w');
    n.mknodWhiteout(w);
    const st = statSync(w);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expectSystemError(() => n.mknodWhiteout(w), 'EEXIST', 'mknod', w);
  });

  it('flock: a lock held by another process blocks a non-blocking attempt until released', async () => {
    const lockFile = join(dir, 'lock');
    writeFileSync(lockFile, '');
    // The other process takes the lock, says so, and releases it when told to (stdin line).
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const n = require(${JSON.stringify(addonFile)});
         const fd = require('fs').openSync(${JSON.stringify(lockFile)}, 'r');
         n.flock(fd, 'exclusive', false);
         process.stdout.write('locked\\n');
         process.stdin.once('data', () => { n.flock(fd, 'unlock', false); process.stdout.write('unlocked\\n'); process.exit(0); });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: holder.stdout! })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('locked');
    const fd = openSync(lockFile, 'r');
    try {
      expect(n.flock(fd, 'exclusive', true)).toBe(false);
      expect(n.flock(fd, 'shared', true)).toBe(false);
      holder.stdin!.write('go\n');
      expect((await lines.next()).value).toBe('unlocked');
      expect(n.flock(fd, 'exclusive', true)).toBe(true);
      n.flock(fd, 'unlock', false);
    } finally {
      closeSync(fd);
    }
    expectSystemError(() => n.flock(1_000_000, 'shared', true), 'EBADF', 'flock');
  });
});
