import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  APPARMOR_PROFILE_FILE,
  APPARMOR_REASON,
  apparmorProfileFor,
  blameRestriction,
  detectUsernsRestriction,
} from '../../src/sandbox/apparmor.ts';
import { tempDir } from '../helpers/tree.ts';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir('branching-apparmor-');
});
afterEach(() => tmp.cleanup());

/** A fake /proc and /sys with these files (paths relative to the roots). */
function fakeTree(files: Record<string, string>): { procRoot: string; sysRoot: string } {
  const procRoot = join(tmp.path, 'proc');
  const sysRoot = join(tmp.path, 'sys');
  mkdirSync(procRoot);
  mkdirSync(sysRoot);
  for (const [path, content] of Object.entries(files)) {
    const file = join(tmp.path, path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content);
  }
  return { procRoot, sysRoot };
}

const APPARMOR = 'proc/sys/kernel/apparmor_restrict_unprivileged_userns';
const DEBIAN = 'proc/sys/kernel/unprivileged_userns_clone';
const MAX = 'proc/sys/user/max_user_namespaces';
const LAUNCHER = '/opt/branching/native/build/Release/branching-launcher';

describe('detectUsernsRestriction', () => {
  it("names Ubuntu's AppArmor restriction and gives the profile and the sysctl fixes", () => {
    const roots = fakeTree({ [APPARMOR]: '1\n', [MAX]: '63304\n', 'sys/module/apparmor/parameters/enabled': 'Y\n' });
    const r = detectUsernsRestriction({ ...roots, launcher: LAUNCHER });
    expect(r.restricted).toBe(true);
    expect(r.sysctl).toBe('kernel.apparmor_restrict_unprivileged_userns=1');
    expect(r.reason).toBe(
      "Ubuntu's AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)",
    );
    expect(r.fixes).toHaveLength(2);
    expect(r.fixes[0]).toContain(`profile branching-launcher ${LAUNCHER} flags=(unconfined) {`);
    expect(r.fixes[0]).toContain(`sudo apparmor_parser -r ${APPARMOR_PROFILE_FILE}`);
    expect(r.fixes[1]).toContain('sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0');
    expect(r.fixes[1]).toMatch(/\/etc\/sysctl\.d\/\S+\.conf/);
  });

  it('is not restricted when the AppArmor sysctl is 0', () => {
    const r = detectUsernsRestriction(fakeTree({ [APPARMOR]: '0\n', [MAX]: '63304\n' }));
    expect(r).toEqual({
      restricted: false,
      sysctl: 'kernel.apparmor_restrict_unprivileged_userns=0',
      reason: expect.stringContaining('no kernel setting restricts'),
      fixes: [],
    });
  });

  it('is not restricted when the sysctls are absent (no AppArmor, not Debian)', () => {
    const r = detectUsernsRestriction(fakeTree({}));
    expect(r.restricted).toBe(false);
    expect(r.sysctl).toBeNull();
    expect(r.fixes).toEqual([]);
  });

  it('ignores the AppArmor sysctl when AppArmor is disabled at boot', () => {
    const r = detectUsernsRestriction(fakeTree({ [APPARMOR]: '1\n', 'sys/module/apparmor/parameters/enabled': 'N\n' }));
    expect(r.restricted).toBe(false);
  });

  it("names Debian's unprivileged_userns_clone=0", () => {
    const r = detectUsernsRestriction(fakeTree({ [DEBIAN]: '0\n', [MAX]: '63304\n' }));
    expect(r.restricted).toBe(true);
    expect(r.sysctl).toBe('kernel.unprivileged_userns_clone=0');
    expect(r.reason).toMatch(/Debian.*kernel\.unprivileged_userns_clone=0/);
    expect(r.fixes).toEqual([expect.stringContaining('sudo sysctl -w kernel.unprivileged_userns_clone=1')]);
  });

  it('is not restricted by unprivileged_userns_clone=1', () => {
    expect(detectUsernsRestriction(fakeTree({ [DEBIAN]: '1\n' })).restricted).toBe(false);
  });

  it('names max_user_namespaces=0 first when several settings restrict', () => {
    const r = detectUsernsRestriction(fakeTree({ [MAX]: '0\n', [APPARMOR]: '1\n' }));
    expect(r.restricted).toBe(true);
    expect(r.sysctl).toBe('user.max_user_namespaces=0');
    expect(r.reason).toContain('user.max_user_namespaces=0');
    expect(r.reason).toContain(APPARMOR_REASON);
    expect(r.fixes[0]).toContain('sudo sysctl -w user.max_user_namespaces=');
    expect(r.fixes.length).toBe(3);
  });
});

describe('apparmorProfileFor', () => {
  it('is the documented profile for the absolute, symlink-resolved launcher path', () => {
    const real = join(tmp.path, 'real-launcher');
    writeFileSync(real, '');
    const link = join(tmp.path, 'link');
    symlinkSync(real, link);
    const p = apparmorProfileFor(link);
    expect(p.text).toBe(
      [
        'abi <abi/4.0>,',
        'include <tunables/global>',
        `profile branching-launcher ${real} flags=(unconfined) {`,
        '  userns,',
        '  include if exists <local/branching-launcher>',
        '}',
        '',
      ].join('\n'),
    );
    expect(p.file).toBe('/etc/apparmor.d/branching-launcher');
    expect(p.load).toBe('sudo apparmor_parser -r /etc/apparmor.d/branching-launcher');
    expect(p.install).toContain(`sudo tee /etc/apparmor.d/branching-launcher`);
    expect(p.install).toContain(p.text);
    expect(p.install.endsWith(p.load)).toBe(true);
  });

  it('makes a relative path absolute and quotes one with a space', () => {
    expect(apparmorProfileFor('rel/launcher').text).toContain(`${join(process.cwd(), 'rel/launcher')} flags=`);
    expect(apparmorProfileFor('/opt/my tools/launcher').text).toContain('"/opt/my tools/launcher" flags=');
  });
});

describe('blameRestriction', () => {
  const none = detectUsernsRestriction({ procRoot: '/nonexistent', sysRoot: '/nonexistent' });
  it('leaves the failure alone when nothing restricts user namespaces, or as root', () => {
    expect(blameRestriction('mount failed with EPERM', none, false)).toBe('mount failed with EPERM');
    const apparmor = { restricted: true, sysctl: 'x=1', reason: APPARMOR_REASON, fixes: [] };
    expect(blameRestriction('mount failed with EPERM', apparmor, true)).toBe('mount failed with EPERM');
    expect(blameRestriction('mount failed with EPERM', apparmor, false)).toMatch(
      new RegExp(`^${APPARMOR_REASON.replace(/[()]/g, '\\$&')}.*branching doctor.*mount failed with EPERM`),
    );
  });
});
