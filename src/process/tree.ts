/**
 * Finding and killing every process a BranchContext started.
 *
 * A process group alone is not enough: a `setsid()` grandchild leaves it, and
 * a double-forked daemon is reparented away from us. So every process of a
 * context also carries a marker in its environment (inherited by everything
 * it starts), and a scan of /proc finds them all. In the sandbox the PID
 * namespace does this job for real: killing its init kills everything in it;
 * the marker is the best effort for the plain (downgraded) mode, where a
 * process that scrubs its environment *and* leaves the group can escape.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Environment variable naming the context a process belongs to. */
export const CONTEXT_MARKER = 'BRANCHING_CONTEXT_ID';

function numericEntries(dir: string): number[] {
  try {
    return readdirSync(dir)
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return []; // no /proc (not Linux): the process group is all we have
  }
}

/**
 * Live (non-zombie) processes whose CONTEXT_MARKER holds `id`. The value is a
 * ':'-separated chain, so a context started inside another one stays findable by both.
 */
export function markedProcesses(id: string): number[] {
  const prefix = Buffer.from(`\0${CONTEXT_MARKER}=`);
  const found: number[] = [];
  for (const pid of numericEntries('/proc')) {
    if (pid === process.pid) continue;
    let environ: Buffer;
    try {
      environ = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${pid}/environ`)]);
    } catch {
      continue; // gone, or not ours to read
    }
    const at = environ.indexOf(prefix);
    if (at < 0) continue;
    const start = at + prefix.length;
    const end = environ.indexOf(0, start);
    const chain = environ.subarray(start, end < 0 ? undefined : end).toString('utf8');
    if (chain.split(':').includes(id)) found.push(pid);
  }
  return found;
}

/** The marker value for a new context: the parent's chain plus its own id. */
export function markerFor(id: string, inherited: string | undefined): string {
  return inherited ? `${inherited}:${id}` : id;
}

interface ProcStat {
  state: string;
  ppid: number;
}

/** State letter and parent of a process, or null when it no longer exists. */
export function procStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: parse after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

/** Direct children of `pid`. */
export function childrenOf(pid: number): number[] {
  return numericEntries('/proc').filter((p) => procStat(p)?.ppid === pid);
}

/** Gone, or a zombie (dead, only waiting for its parent to reap it). */
export function isDead(pid: number): boolean {
  const stat = procStat(pid);
  return stat === null || stat.state === 'Z' || stat.state === 'X';
}

export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone (ESRCH), or not ours (EPERM): nothing more we can do
  }
}

/** Polls until every pid is dead; the processes have been SIGKILLed, so this is short. */
export async function waitUntilDead(pids: number[], limitMs = 5000): Promise<number[]> {
  const deadline = Date.now() + limitMs;
  let alive = pids.filter((p) => !isDead(p));
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    alive = alive.filter((p) => !isDead(p));
  }
  return alive;
}
