/**
 * What `branching doctor` checks: each feature the library can use here, and
 * why one is missing. Reading only: no check mounts, writes a state dir or
 * changes a setting.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '../../addon.ts';
import { parseBackendChoice, probeBackend, selectBackend } from '../../backends/factory.ts';
import { probeLimits } from '../../process/limits.ts';
import { locateLauncher, type SandboxProbe } from '../../sandbox/launcher.ts';

/** `info` reports a fact rather than a feature (e.g. running as root); it counts as ok. */
export type CheckStatus = 'ok' | 'missing' | 'unknown' | 'info';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** Commands that would turn a missing feature on. */
  fixes?: string[];
}

export interface Roots {
  procRoot: string;
  sysRoot: string;
}

const check = (id: string, title: string, status: CheckStatus, detail: string, fixes?: string[]): Check =>
  fixes && fixes.length > 0 ? { id, title, status, detail, fixes } : { id, title, status, detail };

export function nativeAddonCheck(): Check {
  const { binding, reason, file, source } = loadNative();
  if (binding) return check('native-addon', 'native addon', 'ok', `loaded ${file} (${source})`);
  return check('native-addon', 'native addon', 'missing', reason ?? 'not loaded');
}

export function launcherCheck(): Check {
  const { path, reason } = locateLauncher();
  if (path) return check('launcher', 'sandbox launcher', 'ok', path);
  return check('launcher', 'sandbox launcher', 'missing', reason ?? 'not found');
}

/** The probe keeps one reason: the first failure. A feature it does not explain gets a pointer. */
function namespaceDetail(probe: SandboxProbe, works: boolean, prefix: string, needs: string): string {
  if (works) return 'works';
  if (!probe.launcher) return `not tried: ${probe.reason}`;
  if (probe.reason?.startsWith(prefix) || !probe.userns || probe.restriction.restricted) {
    return probe.reason ?? 'unavailable';
  }
  return `unavailable (the launcher could not create one; ${needs})`;
}

export function namespaceChecks(probe: SandboxProbe): Check[] {
  const status = (works: boolean): CheckStatus => (works ? 'ok' : 'missing');
  const userns =
    probe.root && probe.userns
      ? 'works (as real root too: every uid maps onto itself, and the sandboxed process holds no capabilities)'
      : null;
  return [
    check(
      'userns',
      'user namespaces',
      status(probe.userns),
      userns ?? namespaceDetail(probe, probe.userns, 'user and mount', 'the sandbox needs it'),
    ),
    check(
      'overlay-userns',
      'overlayfs in a user namespace',
      status(probe.overlay),
      namespaceDetail(probe, probe.overlay, 'overlayfs', 'the sandbox needs it'),
    ),
    check(
      'pidns',
      'PID namespaces',
      status(probe.pidns),
      namespaceDetail(probe, probe.pidns, 'PID', 'BranchContext needs it to reach every process on abort'),
    ),
    check(
      'netns',
      'network namespaces',
      status(probe.netns),
      namespaceDetail(probe, probe.netns, 'network', '`network: false` needs it'),
    ),
  ];
}

export function restrictionCheck(probe: SandboxProbe): Check {
  const r = probe.restriction;
  const title = 'user namespace restrictions';
  if (!r.restricted) return check('userns-restriction', title, 'ok', r.reason);
  if (probe.root) {
    return check('userns-restriction', title, 'ok', `${r.reason}: not for real root, only other users`, r.fixes);
  }
  if (probe.userns && probe.overlay) {
    return check('userns-restriction', title, 'ok', `${r.reason}, but the launcher is allowed (a profile lets it)`);
  }
  return check('userns-restriction', title, 'missing', r.reason, r.fixes);
}

/** The filesystem type mounted last at `mountPoint`, from mountinfo. */
function mountTypeAt(mountPoint: string, procRoot: string): string | null {
  let type: string | null = null;
  try {
    for (const line of readFileSync(join(procRoot, 'self', 'mountinfo'), 'utf8').split('\n')) {
      const [before, after] = line.split(' - ');
      if (after && before.split(' ')[4] === mountPoint) type = after.split(' ')[0];
    }
  } catch {
    // no mountinfo: reported as not mounted
  }
  return type;
}

/** What process/limits.ts needs for BranchContext's memory and pids limits. */
export function cgroupCheck({ procRoot }: Roots): Check {
  const title = 'cgroup v2 delegation';
  const { dir, reason } = probeLimits(['memory', 'pids']);
  if (dir)
    return check('cgroup', title, 'ok', `memory and pids delegated to ${dir}: BranchContext limits are enforced`);
  const type = mountTypeAt('/sys/fs/cgroup', procRoot);
  const layout =
    type === 'cgroup2' ? '' : `; /sys/fs/cgroup is ${type ? `a ${type} mount (cgroup v1 or hybrid)` : 'not mounted'}`;
  return check('cgroup', title, 'missing', `${reason}${layout}: BranchContext memory/pids limits are not applied`);
}

const SECCOMP_MODES: Record<string, string> = {
  '0': 'this process is not filtered',
  '1': 'this process runs in strict mode',
  '2': 'this process already runs under a filter (e.g. from a container runtime)',
};

export function seccompCheck({ procRoot }: Roots): Check {
  let status: string;
  try {
    status = readFileSync(join(procRoot, 'self', 'status'), 'utf8');
  } catch {
    return check('seccomp', 'seccomp', 'unknown', `unknown: cannot read ${join(procRoot, 'self', 'status')}`);
  }
  const mode = /^Seccomp:\s*(\d+)/m.exec(status)?.[1];
  if (mode === undefined)
    return check('seccomp', 'seccomp', 'missing', 'the kernel has no seccomp (no Seccomp: field)');
  return check('seccomp', 'seccomp', 'ok', `available (mode ${mode}: ${SECCOMP_MODES[mode] ?? 'unknown mode'})`);
}

/** Probing Landlock takes a syscall; the list of active LSMs is the next best thing. */
export function landlockCheck({ sysRoot }: Roots): Check {
  const file = join(sysRoot, 'kernel', 'security', 'lsm');
  let lsms: string[];
  try {
    lsms = readFileSync(file, 'utf8').trim().split(',').filter(Boolean);
  } catch {
    return check('landlock', 'Landlock', 'unknown', `unknown: ${file} is not readable (securityfs not mounted here)`);
  }
  if (lsms.includes('landlock')) return check('landlock', 'Landlock', 'ok', `active (LSMs: ${lsms.join(', ')})`);
  return check('landlock', 'Landlock', 'missing', `not among the active LSMs (${lsms.join(', ') || 'none'})`);
}

/** The backend `new Workspace(cwd)` would choose, through the same factory, without making a state dir. */
export function backendCheck(cwd: string): Check {
  const title = 'workspace backend';
  try {
    const workspace = realpathSync(cwd);
    const choice = parseBackendChoice(process.env.BRANCHING_BACKEND, 'BRANCHING_BACKEND');
    const allowFallback = process.env.BRANCHING_NO_FALLBACK !== '1';
    const { backend, fallbackNotice } = selectBackend(workspace, choice, { allowFallback });
    if (fallbackNotice) {
      return check('backend', title, 'missing', fallbackNotice.replace(/^branching: /, ''));
    }
    return check(
      'backend',
      title,
      'ok',
      `${backend.kind} for ${workspace}: ${probeBackend(backend.kind, workspace).reason}`,
    );
  } catch (err) {
    return check('backend', title, 'missing', (err as Error).message);
  }
}

export function rootCheck(): Check {
  const uid = process.getuid?.();
  if (uid === 0)
    return check('root', 'running as root', 'info', "yes (uid 0): the launcher keeps real root's capabilities");
  return check('root', 'running as root', 'info', `no (uid ${uid}): mounts go through user namespaces`);
}
