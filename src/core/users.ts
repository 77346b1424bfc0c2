/**
 * What still runs in a dead owner's branch. A sandbox dies with its parent
 * (the launcher's parent-death signal), but a process the owner started
 * outside any sandbox (a detached child, a daemon of `branching run`) can
 * outlive it and keep using the branch. gc kills those before it reclaims the
 * branch, so it never pulls a tree from under a running process.
 *
 * A process uses a branch directory D when its cwd or root lies below D (or
 * below a directory mounted there), or when its cwd, root or an open file is
 * on a mount made from D (an overlay whose upper dir is in D, a bind of D) in
 * its own mount namespace.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface Ident {
  dev: number;
  ino: number;
}

function identOf(path: string): Ident | null {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

const same = (a: Ident, b: Ident) => a.dev === b.dev && a.ino === b.ino;

/** D itself and each directory inside it (a mount root there has an identity of its own); never through a symlink. */
function identitiesOf(dir: string): Ident[] {
  const found = [identOf(dir)];
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) found.push(identOf(join(dir, entry.name)));
    }
  } catch {
    // gone already
  }
  return found.filter((i): i is Ident => i !== null);
}

/** Walks up from a /proc magic link (cwd, root) through `..`, up to the process's root. */
function walksInto(link: string, targets: Ident[]): boolean {
  let path = link;
  let previous: Ident | null = null;
  for (let depth = 0; depth < 256; depth++, path += '/..') {
    const here = identOf(path);
    if (!here || (previous && same(here, previous))) return false;
    if (targets.some((t) => same(t, here))) return true;
    previous = here;
  }
  return false;
}

/** dev_t from a mountinfo "major:minor" field, as stat reports it (glibc's makedev). */
function makedev(field: string): number {
  const [major, minor] = field.split(':').map(Number);
  return (major & 0xfff) * 256 + (minor & 0xff) + (minor & ~0xff) * 4096 + (major & ~0xfff) * 2 ** 32;
}

/**
 * The devices of the mounts, in the mount namespace of `pid`, that were made
 * from one of `dirs` (an overlay whose upper dir is there, a bind of it). A
 * namespace that merely copied such a mount (made later, elsewhere) holds it
 * too, so only processes that actually sit on one of these devices use it.
 */
function branchDevicesSeenBy(pid: number, dirs: string[]): Set<number> {
  const devices = new Set<number>();
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return devices;
  }
  for (const line of text.split('\n')) {
    if (dirs.some((d) => line.includes(`${d}/`) || line.includes(`${d} `))) devices.add(makedev(line.split(' ')[2]));
  }
  return devices;
}

/** Whether the cwd, root or an open descriptor of `pid` is on one of `devices`. */
function sitsOn(pid: number, devices: Set<number>): boolean {
  if (devices.size === 0) return false;
  const on = (path: string) => {
    try {
      return devices.has(statSync(path).dev);
    } catch {
      return false;
    }
  };
  if (on(`/proc/${pid}/cwd`) || on(`/proc/${pid}/root`)) return true;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => on(`/proc/${pid}/fd/${fd}`));
  } catch {
    return false;
  }
}

function livePids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((pid) => pid !== process.pid && pid !== process.ppid);
  } catch {
    return []; // not Linux: nothing to scan
  }
}

/**
 * Processes whose cwd or root is in one of `dirs`, or whose cwd, root or an
 * open descriptor is on a mount made from one of them (seen in their own
 * mount namespace, e.g. inside a dead owner's `branching run`).
 */
export function processesUsing(dirs: string[]): number[] {
  if (dirs.length === 0) return [];
  const targets = dirs.flatMap(identitiesOf);
  const devicesByNs = new Map<string, Set<number>>();
  const users: number[] = [];
  for (const pid of livePids()) {
    if (walksInto(`/proc/${pid}/cwd`, targets) || walksInto(`/proc/${pid}/root`, targets)) {
      users.push(pid);
      continue;
    }
    const ns = nsOf(pid);
    if (ns === null) continue;
    if (!devicesByNs.has(ns)) devicesByNs.set(ns, branchDevicesSeenBy(pid, dirs));
    if (sitsOn(pid, devicesByNs.get(ns) as Set<number>)) users.push(pid);
  }
  return users;
}

function nsOf(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return null;
  }
}

function isGone(pid: number): boolean {
  try {
    // a zombie has released everything it held: as good as gone
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

/**
 * SIGKILLs every process using one of `dirs` and waits (bounded) until they
 * are gone. Returns the pids killed; a process we may not signal is left, and
 * returned in `refused`.
 */
export async function killProcessesUsing(
  dirs: string[],
  { deadlineMs = 5000 } = {},
): Promise<{ killed: number[]; refused: number[] }> {
  const killed: number[] = [];
  const refused: number[] = [];
  for (const pid of processesUsing(dirs)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') refused.push(pid);
    }
  }
  const until = Date.now() + deadlineMs;
  while (killed.some((pid) => !isGone(pid)) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { killed, refused };
}
