/**
 * Kernel settings that keep unprivileged processes from using user
 * namespaces, and how to lift them for the sandbox launcher.
 *
 * The one users meet most: Ubuntu 23.10+ (and the hosted CI images built on
 * it) set kernel.apparmor_restrict_unprivileged_userns=1. `unshare` still
 * succeeds, but the new namespace has no capabilities, so writing uid_map or
 * mounting fails with EPERM; without naming the setting, that looks like a
 * kernel without user namespaces. Debian's kernel.unprivileged_userns_clone=0
 * and user.max_user_namespaces=0 refuse the namespace outright.
 *
 * The readers take the proc and sys roots as parameters so that tests can
 * point them at a fake tree.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const APPARMOR_SYSCTL = 'kernel.apparmor_restrict_unprivileged_userns';
export const APPARMOR_REASON = `Ubuntu's AppArmor restricts unprivileged user namespaces (${APPARMOR_SYSCTL}=1)`;
export const APPARMOR_PROFILE_FILE = '/etc/apparmor.d/branching-launcher';
const SYSCTL_CONF = '/etc/sysctl.d/60-branching-userns.conf';

export interface UsernsRestriction {
  /** Unprivileged processes cannot have a user namespace with capabilities here. */
  restricted: boolean;
  /** The deciding setting as `name=value`; null when none of the settings exists. */
  sysctl: string | null;
  /** What restricts user namespaces, or why nothing does. */
  reason: string;
  /** Commands that lift the restriction, best first; empty when not restricted. */
  fixes: string[];
}

export interface RestrictionOptions {
  procRoot?: string;
  sysRoot?: string;
  /** The launcher to write an AppArmor profile for; the fix names a placeholder without it. */
  launcher?: string | null;
}

interface Finding {
  sysctl: string;
  reason: string;
  fixes: string[];
}

/** The trimmed content of a sysctl file, or null when it does not exist or cannot be read. */
function readSetting(root: string, ...path: string[]): string | null {
  try {
    return readFileSync(join(root, ...path), 'utf8').trim();
  } catch {
    return null;
  }
}

/** How to set a sysctl now and at every boot. */
function sysctlFix(name: string, value: string): string {
  return `sudo sysctl -w ${name}=${value}  # now; at every boot: echo '${name}=${value}' | sudo tee ${SYSCTL_CONF}`;
}

function apparmorFinding(value: string | null, sysRoot: string, launcher: string | null | undefined): Finding | null {
  if (value === null || value === '0') return null;
  // The sysctl exists whenever AppArmor is built in; it only bites when the LSM is enabled.
  if (readSetting(sysRoot, 'module', 'apparmor', 'parameters', 'enabled') === 'N') return null;
  const profile = apparmorProfileFor(launcher ?? '/path/to/node_modules/@branching/linux-x64-gnu/branching-launcher');
  return {
    sysctl: `${APPARMOR_SYSCTL}=${value}`,
    reason: APPARMOR_REASON,
    fixes: [
      `allow user namespaces for the launcher only (recommended):\n${profile.install}`,
      `or lift the restriction for every program (weaker): ${sysctlFix(APPARMOR_SYSCTL, '0')}`,
    ],
  };
}

/** Which kernel setting, if any, keeps unprivileged processes from using user namespaces. */
export function detectUsernsRestriction({
  procRoot = '/proc',
  sysRoot = '/sys',
  launcher,
}: RestrictionOptions = {}): UsernsRestriction {
  const max = readSetting(procRoot, 'sys', 'user', 'max_user_namespaces');
  const debian = readSetting(procRoot, 'sys', 'kernel', 'unprivileged_userns_clone');
  const apparmor = readSetting(procRoot, 'sys', 'kernel', 'apparmor_restrict_unprivileged_userns');
  const findings: Finding[] = [];
  if (max === '0') {
    findings.push({
      sysctl: 'user.max_user_namespaces=0',
      reason: 'user namespaces are disabled (user.max_user_namespaces=0)',
      fixes: [sysctlFix('user.max_user_namespaces', '65536')],
    });
  }
  if (debian === '0') {
    findings.push({
      sysctl: 'kernel.unprivileged_userns_clone=0',
      reason: "Debian's kernel forbids unprivileged user namespaces (kernel.unprivileged_userns_clone=0)",
      fixes: [sysctlFix('kernel.unprivileged_userns_clone', '1')],
    });
  }
  const restrictedByAppArmor = apparmorFinding(apparmor, sysRoot, launcher);
  if (restrictedByAppArmor) findings.push(restrictedByAppArmor);
  if (findings.length > 0) {
    return {
      restricted: true,
      sysctl: findings[0].sysctl,
      reason: findings.map((f) => f.reason).join('; '),
      fixes: findings.flatMap((f) => f.fixes),
    };
  }
  return unrestricted(apparmor, debian, max);
}

function unrestricted(apparmor: string | null, debian: string | null, max: string | null): UsernsRestriction {
  const sysctl =
    apparmor !== null
      ? `${APPARMOR_SYSCTL}=${apparmor}`
      : debian !== null
        ? `kernel.unprivileged_userns_clone=${debian}`
        : max !== null
          ? `user.max_user_namespaces=${max}`
          : null;
  const reason = sysctl
    ? `no kernel setting restricts unprivileged user namespaces (${sysctl})`
    : 'no kernel setting restricts unprivileged user namespaces (none of the known sysctls exists)';
  return { restricted: false, sysctl, reason, fixes: [] };
}

export interface AppArmorProfile {
  /** The profile, in the form Ubuntu documents for programs that need user namespaces. */
  text: string;
  /** Where it goes. */
  file: string;
  /** Loads (or reloads) it. */
  load: string;
  /** A copy-pasteable shell snippet: write the file, then load it. */
  install: string;
}

/**
 * AppArmor attaches a profile by the executable's real path, so the launcher
 * path is made absolute and its symlinks resolved; a path with spaces is quoted.
 */
export function apparmorProfileFor(launcherPath: string): AppArmorProfile {
  let path = resolve(launcherPath);
  try {
    path = realpathSync(path);
  } catch {
    // not installed yet: the profile names the path as given
  }
  const attachment = /[\s"]/.test(path) ? `"${path.replaceAll('"', '\\"')}"` : path;
  const text = [
    'abi <abi/4.0>,',
    'include <tunables/global>',
    `profile branching-launcher ${attachment} flags=(unconfined) {`,
    '  userns,',
    '  include if exists <local/branching-launcher>',
    '}',
    '',
  ].join('\n');
  const load = `sudo apparmor_parser -r ${APPARMOR_PROFILE_FILE}`;
  const install = `sudo tee ${APPARMOR_PROFILE_FILE} >/dev/null <<'EOF'\n${text}EOF\n${load}`;
  return { text, file: APPARMOR_PROFILE_FILE, load, install };
}

/**
 * A namespace failure, blamed on the restriction when one is in force: only
 * unprivileged processes are restricted, so real root's failures stay as they are.
 */
export function blameRestriction(failure: string, restriction: UsernsRestriction, root: boolean): string {
  if (root || !restriction.restricted) return failure;
  return `${restriction.reason}; run \`branching doctor\` for the fix (${failure})`;
}
