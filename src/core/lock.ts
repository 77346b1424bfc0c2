import {
  closeSync,
  constants as fsc,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { native } from '../addon.ts';
import { hasErrno } from '../base/errors.ts';

/**
 * Cross-process exclusive locks. With the native addon they are flock(2)
 * locks, which the kernel drops when their holder dies, so a SIGKILLed
 * committer never wedges the workspace. Without it, a directory made with
 * mkdir(2) (atomic) holds the owner's pid, and a lock whose owner is gone is
 * taken over. Waiting polls with a short backoff rather than blocking the
 * event loop, since other branches of the same process may hold the lock.
 */
export interface HeldLock {
  release(): Promise<void>;
}

const POLL_MIN_MS = 1;
const POLL_MAX_MS = 25;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `shared` holders exclude `exclusive` ones (branch creation reads a tree
 * that a commit must not be rewriting). Without the addon every lock is
 * exclusive.
 */
export async function acquireLock(file: string, mode: 'shared' | 'exclusive' = 'exclusive'): Promise<HeldLock> {
  const binding = native();
  return binding ? acquireFlock(file, binding, mode) : acquireMkdirLock(`${file}.d`);
}

/** An exclusive lock, taken synchronously (Workspace construction recovers under it). */
export function acquireLockSync(file: string): { release(): void } {
  const binding = native();
  if (binding) {
    const fd = openSync(file, fsc.O_RDWR | fsc.O_CREAT, 0o600);
    try {
      binding.flock(fd, 'exclusive', false); // blocking: commits hold it for milliseconds
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return { release: () => closeSync(fd) };
  }
  return acquireMkdirLockSync(`${file}.d`);
}

function acquireMkdirLockSync(dir: string): { release(): void } {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = POLL_MIN_MS; ; wait = Math.min(wait * 2, POLL_MAX_MS)) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'owner'), String(process.pid));
      return { release: () => rmSync(dir, { recursive: true, force: true }) };
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(join(dir, 'owner'), 'utf8'));
    } catch {
      // being written, or released meanwhile
    }
    if (owner > 0 && !isProcessAlive(owner)) {
      const aside = `${dir}.stale-${process.pid}-${Date.now()}`;
      try {
        renameSync(dir, aside);
        rmSync(aside, { recursive: true, force: true });
      } catch {
        // another waiter took it over first
      }
      continue;
    }
    Atomics.wait(pause, 0, 0, wait);
  }
}

async function acquireFlock(
  file: string,
  binding: NonNullable<ReturnType<typeof native>>,
  mode: 'shared' | 'exclusive',
): Promise<HeldLock> {
  // Synchronous open/flock/close: each is a few µs, while a threadpool round trip costs far more,
  // and branch creation takes this lock every time.
  const fd = openSync(file, fsc.O_RDWR | fsc.O_CREAT, 0o600);
  try {
    for (let wait = POLL_MIN_MS; !binding.flock(fd, mode, true); wait = Math.min(wait * 2, POLL_MAX_MS)) {
      await delay(wait);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return {
    async release() {
      // Closing the descriptor drops the flock.
      closeSync(fd);
    },
  };
}

async function acquireMkdirLock(dir: string): Promise<HeldLock> {
  for (let wait = POLL_MIN_MS; ; wait = Math.min(wait * 2, POLL_MAX_MS)) {
    try {
      await fs.mkdir(dir);
      await fs.writeFile(join(dir, 'owner'), String(process.pid));
      return { release: () => fs.rm(dir, { recursive: true, force: true }) };
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
    }
    const owner = Number(await fs.readFile(join(dir, 'owner'), 'utf8').catch(() => ''));
    if (owner > 0 && !isProcessAlive(owner)) {
      // Move the stale lock aside atomically so that only one waiter takes it over.
      const aside = `${dir}.stale-${process.pid}-${Date.now()}`;
      if (
        await fs.rename(dir, aside).then(
          () => true,
          () => false,
        )
      )
        await fs.rm(aside, { recursive: true, force: true });
      continue;
    }
    await delay(wait);
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return hasErrno(err, 'EPERM');
  }
}

/**
 * A lease says "this process is alive". A process holds one exclusive flock
 * on its lease file for as long as it lives; anyone can test whether the
 * owner is gone by trying to take the lock. This works across PID
 * namespaces, where pids mean nothing. Without the addon it falls back to a
 * pid check.
 */
export class Lease {
  /**
   * One lease per process and state directory, shared by every Workspace
   * object that opens it (reference-counted). It is a raw descriptor, not a
   * FileHandle: a FileHandle is closed when garbage-collected, which would
   * drop the flock and make this live process look dead to others.
   */
  private static readonly shared = new Map<string, Lease>();
  private refs = 1;

  private constructor(
    readonly file: string,
    private readonly dir: string,
    private fd: number | null,
  ) {}

  static async take(dir: string): Promise<Lease> {
    const existing = Lease.shared.get(dir);
    if (existing) {
      existing.refs++;
      return existing;
    }
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    const binding = native();
    const fd = openSync(file, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    writeSync(fd, String(process.pid));
    let lease: Lease;
    if (binding) {
      binding.flock(fd, 'exclusive', true);
      lease = new Lease(file, dir, fd);
    } else {
      closeSync(fd);
      lease = new Lease(file, dir, null);
    }
    Lease.shared.set(dir, lease);
    return lease;
  }

  /** Is the process that took the lease `file` still alive? */
  static async isAlive(file: string): Promise<boolean> {
    const binding = native();
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, fsc.O_RDWR);
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return false;
      throw err;
    }
    try {
      if (binding) return !binding.flock(handle.fd, 'shared', true);
      const pid = Number(await handle.readFile('utf8'));
      return pid > 0 && isProcessAlive(pid);
    } finally {
      await handle.close();
    }
  }

  async release(): Promise<void> {
    if (--this.refs > 0) return;
    Lease.shared.delete(this.dir);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    await fs.rm(this.file, { force: true });
  }
}
