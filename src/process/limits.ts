/**
 * Memory and pids limits through cgroup v2, where the cgroup this process
 * lives in has those controllers delegated (e.g. a systemd user service with
 * Delegate=yes). Elsewhere the limits are reported as unavailable, never
 * silently ignored: `ctx.limits` says which and why.
 *
 * The child joins its cgroup before it runs anything: it is started as
 * `sh -c 'echo $$ > cgroup.procs && exec …'`, so no fork can slip out.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResourceLimits } from './options.ts';

export interface LimitsReport {
  requested: ResourceLimits | null;
  /** True when the limits are enforced. */
  applied: boolean;
  /** Why they are not, or null. */
  reason: string | null;
  /** The cgroup the child runs in, when applied. */
  cgroup: string | null;
}

export interface PreparedLimits {
  report: LimitsReport;
  cgroup: string | null;
}

function cgroup2Mount(): string | null {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [before, after] = line.split(' - ');
      if (after?.startsWith('cgroup2 ')) return before.split(' ')[4];
    }
  } catch {
    // not Linux
  }
  return null;
}

function ownCgroup(): string | null {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

/** Where a child cgroup with these controllers could be made, or why not. */
export function probeLimits(controllers: string[] = ['memory', 'pids']): { dir: string | null; reason: string | null } {
  if (process.platform !== 'linux') return { dir: null, reason: 'cgroups are Linux-only' };
  const mount = cgroup2Mount();
  if (!mount) return { dir: null, reason: 'no cgroup v2 hierarchy is mounted' };
  const own = ownCgroup();
  if (own === null) return { dir: null, reason: 'this process is not in a cgroup v2 group' };
  const dir = join(mount, own);
  let enabled: string[];
  try {
    enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
  } catch {
    return { dir: null, reason: `cannot read ${join(dir, 'cgroup.subtree_control')}` };
  }
  const missing = controllers.filter((c) => !enabled.includes(c));
  if (missing.length > 0) {
    return { dir: null, reason: `cgroup v2 controllers not delegated to ${dir}: ${missing.join(', ')}` };
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return { dir: null, reason: `cannot create cgroups under ${dir} (not delegated to this user)` };
  }
  return { dir, reason: null };
}

export function prepareLimits(limits: ResourceLimits | undefined, id: string): PreparedLimits {
  if (!limits || (limits.memory === undefined && limits.pids === undefined)) {
    return { report: { requested: null, applied: false, reason: null, cgroup: null }, cgroup: null };
  }
  const wanted = [limits.memory !== undefined ? 'memory' : '', limits.pids !== undefined ? 'pids' : ''].filter(Boolean);
  const probe = probeLimits(wanted);
  if (!probe.dir)
    return { report: { requested: limits, applied: false, reason: probe.reason, cgroup: null }, cgroup: null };
  const cgroup = join(probe.dir, `branching-${id}`);
  try {
    mkdirSync(cgroup);
    if (limits.memory !== undefined) {
      writeFileSync(join(cgroup, 'memory.max'), String(limits.memory));
      if (existsSync(join(cgroup, 'memory.swap.max'))) writeFileSync(join(cgroup, 'memory.swap.max'), '0');
    }
    if (limits.pids !== undefined) writeFileSync(join(cgroup, 'pids.max'), String(limits.pids));
  } catch (err) {
    removeCgroup(cgroup);
    const reason = `cannot set up cgroup ${cgroup}: ${(err as Error).message}`;
    return { report: { requested: limits, applied: false, reason, cgroup: null }, cgroup: null };
  }
  return { report: { requested: limits, applied: true, reason: null, cgroup }, cgroup };
}

/** The command that moves itself into the cgroup and then becomes `program`. */
export function wrapInCgroup(
  cgroup: string | null,
  program: string,
  args: string[],
): { program: string; args: string[] } {
  if (!cgroup) return { program, args };
  const script = 'echo $$ > "$0/cgroup.procs" && exec "$@"';
  return { program: '/bin/sh', args: ['-c', script, cgroup, program, ...args] };
}

export function removeCgroup(cgroup: string | null): void {
  if (!cgroup) return;
  try {
    rmdirSync(cgroup); // empty once every process in it is gone
  } catch {
    // still busy or already gone
  }
}
