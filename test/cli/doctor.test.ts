import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatReport, reportJson } from '../../src/cli/commands/doctor.ts';
import { landlockCheck, restrictionCheck, seccompCheck } from '../../src/cli/commands/doctor-checks.ts';
import { detectUsernsRestriction } from '../../src/sandbox/apparmor.ts';
import { probeSandbox } from '../../src/sandbox/launcher.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { validate } from '../helpers/json-schema.ts';
import { requireFeature } from '../helpers/require-feature.ts';
import { tempDir } from '../helpers/tree.ts';

const CLI = join(repoRoot, 'dist', 'cli.js');
const probe = probeSandbox();
const sandboxHere = requireFeature('the namespace sandbox', probe.available, probe.reason);

function doctor(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base: NodeJS.ProcessEnv = { ...process.env, BRANCHING_QUIET: '1' };
  delete base.BRANCHING_LAUNCHER;
  delete base.BRANCHING_JEST_NO_SANDBOX;
  const r = spawnSync(process.execPath, [CLI, 'doctor', ...args], {
    encoding: 'utf8',
    cwd: repoRoot,
    env: { ...base, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const CHECK_IDS = [
  'native-addon',
  'launcher',
  'userns',
  'overlay-userns',
  'pidns',
  'netns',
  'userns-restriction',
  'cgroup',
  'seccomp',
  'landlock',
  'backend',
  'root',
];

const SCHEMA = {
  type: 'object',
  required: ['schemaVersion', 'command', 'checks', 'modes', 'reasons', 'sandbox'],
  additionalProperties: false,
  properties: {
    schemaVersion: { const: 1 },
    command: { const: 'doctor' },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'ok', 'detail'],
        additionalProperties: false,
        properties: {
          id: { enum: CHECK_IDS },
          ok: { type: 'boolean' },
          detail: { type: 'string' },
          fixes: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    modes: {
      type: 'object',
      required: ['vitest', 'jest', 'branchContext'],
      additionalProperties: false,
      properties: {
        vitest: { enum: ['sandbox', 'clone fallback'] },
        jest: { enum: ['sandbox', 'clone fallback'] },
        branchContext: { enum: ['sandbox', 'plain process'] },
      },
    },
    reasons: {
      type: 'object',
      required: ['vitest', 'jest', 'branchContext'],
      additionalProperties: false,
      properties: { vitest: { type: 'string' }, jest: { type: 'string' }, branchContext: { type: 'string' } },
    },
    sandbox: { type: 'boolean' },
  },
};

type Doc = {
  checks: { id: string; ok: boolean; detail: string; fixes?: string[] }[];
  modes: Record<string, string>;
  reasons: Record<string, string>;
  sandbox: boolean;
};
const byId = (doc: Doc, id: string) => doc.checks.find((c) => c.id === id)!;

beforeAll(() => assertBuilt());

describe('branching doctor (the built CLI)', () => {
  it('--json prints one document of every check, in the documented shape, agreeing with probeSandbox', () => {
    const r = doctor(['--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(validate(SCHEMA, doc)).toEqual([]);
    expect(doc.checks.map((c) => c.id)).toEqual(CHECK_IDS);
    for (const c of doc.checks) expect(c.detail, c.id).toMatch(/\S/);
    expect(doc.sandbox).toBe(probe.available);
    expect(byId(doc, 'launcher')).toMatchObject({ ok: true, detail: probe.launcher });
    expect(byId(doc, 'overlay-userns').ok).toBe(probe.overlay);
    expect(byId(doc, 'root').detail).toMatch(process.getuid?.() === 0 ? /^yes/ : /^no/);
  });

  it.skipIf(!sandboxHere)('reports the sandbox here, and --strict exits 0', () => {
    const r = doctor(['--json', '--strict']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.sandbox).toBe(true);
    expect(doc.modes).toEqual({ vitest: 'sandbox', jest: 'sandbox', branchContext: 'sandbox' });
    expect(r.stderr).toBe('');
  });

  it('without a launcher: missing lines, clone fallback modes, and --strict exits 1 with the reason', () => {
    const env = { BRANCHING_LAUNCHER: '/nonexistent/branching-launcher' };
    const doc = JSON.parse(doctor(['--json'], env).stdout) as Doc;
    expect(doc.sandbox).toBe(false);
    expect(doc.modes).toEqual({ vitest: 'clone fallback', jest: 'clone fallback', branchContext: 'plain process' });
    expect(byId(doc, 'launcher')).toEqual({
      id: 'launcher',
      ok: false,
      detail: 'BRANCHING_LAUNCHER=/nonexistent/branching-launcher does not exist',
    });
    expect(doc.reasons.vitest).toContain('/nonexistent/branching-launcher');

    const strict = doctor(['--strict'], env);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain(
      'the namespace sandbox is unavailable here: BRANCHING_LAUNCHER=/nonexistent/branching-launcher does not exist',
    );
    expect(strict.stdout).toMatch(/^missing +sandbox launcher +BRANCHING_LAUNCHER=/m);
    expect(doctor([], env).code).toBe(0);
  });

  it.skipIf(!sandboxHere)('a launcher whose network namespaces fail: only netns is missing, and named', () => {
    // As where a seccomp policy forbids CLONE_NEWNET: the probe's one launch with every feature
    // fails, and the launch per feature has to say which one.
    const tmp = tempDir('branching-doctor-nonet-');
    try {
      const fake = join(tmp.path, 'launcher');
      const failure = '{"ok":false,"op":"netns","code":"EPERM","message":"Operation not permitted"}';
      writeFileSync(
        fake,
        `#!/bin/sh\nif printf '%s\\n' "$BRANCHING_LAUNCH_SPEC" | grep -qx netns; then echo '${failure}' >&3; exit 1; fi\nexec ${probe.launcher} "$@"\n`,
        { mode: 0o755 },
      );
      const doc = JSON.parse(doctor(['--json'], { BRANCHING_LAUNCHER: fake }).stdout) as Doc;
      expect(doc.sandbox).toBe(true);
      for (const id of ['userns', 'overlay-userns', 'pidns']) expect(byId(doc, id).ok, id).toBe(true);
      expect(byId(doc, 'netns')).toMatchObject({ ok: false });
      expect(byId(doc, 'netns').detail).toBe(
        'network namespaces are unavailable: netns failed with EPERM (Operation not permitted)',
      );
    } finally {
      tmp.cleanup();
    }
  });

  it.skipIf(!sandboxHere || process.getuid?.() !== 0)('as root, user namespaces are used, without capabilities', () => {
    const doc = JSON.parse(doctor(['--json']).stdout) as Doc;
    expect(byId(doc, 'userns')).toMatchObject({ ok: true });
    expect(byId(doc, 'userns').detail).toContain('holds no capabilities');
  });

  it('BRANCHING_JEST_NO_SANDBOX=1 turns only the Jest mode into the fallback', () => {
    const doc = JSON.parse(doctor(['--json'], { BRANCHING_JEST_NO_SANDBOX: '1' }).stdout) as Doc;
    expect(doc.modes.jest).toBe('clone fallback');
    expect(doc.reasons.jest).toBe('BRANCHING_JEST_NO_SANDBOX=1');
    expect(doc.modes.vitest).toBe(probe.available ? 'sandbox' : 'clone fallback');
  });

  it('prints one line per check, then the modes; -h and --help list the options; a bad option exits 2', () => {
    const r = doctor([]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => /^(ok|missing|unknown|info) {2,}\S/.test(l))).toHaveLength(CHECK_IDS.length);
    expect(r.stdout).toMatch(/^Modes here:\n {2}Vitest plugin +(sandbox|clone fallback): /m);
    for (const flag of ['-h', '--help']) {
      const help = doctor([flag]);
      expect(help.code).toBe(0);
      for (const option of ['--json', '--strict', '-h, --help'])
        expect(help.stdout).toMatch(new RegExp(`^ +${option} `, 'm'));
    }
    const bad = doctor(['--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--bogus'");
  });
});

describe('doctor checks on fake /proc and /sys trees', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir('branching-doctor-');
  });
  afterEach(() => tmp.cleanup());

  function roots(files: Record<string, string>) {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(tmp.path, path, '..'), { recursive: true });
      writeFileSync(join(tmp.path, path), content);
    }
    return { procRoot: join(tmp.path, 'proc'), sysRoot: join(tmp.path, 'sys') };
  }

  it('a restricted, unprivileged user gets the AppArmor profile for the launcher and the sysctl fix', () => {
    const restriction = detectUsernsRestriction({
      ...roots({ 'proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1\n' }),
      launcher: '/opt/b/branching-launcher',
    });
    const failing = { ...probe, root: false, userns: false, overlay: false, available: false, restriction };
    const c = restrictionCheck(failing);
    expect(c.status).toBe('missing');
    expect(c.detail).toContain('kernel.apparmor_restrict_unprivileged_userns=1');
    const text = formatReport({
      checks: [c],
      modes: { vitest: 'clone fallback', jest: 'clone fallback', branchContext: 'plain process' },
      reasons: { vitest: 'x', jest: 'x', branchContext: 'x' },
      sandbox: false,
      sandboxReason: 'x',
    });
    expect(text).toContain('profile branching-launcher /opt/b/branching-launcher flags=(unconfined) {');
    expect(text).toContain('sudo apparmor_parser -r /etc/apparmor.d/branching-launcher');
    expect(text).toContain('sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0');
    expect(restrictionCheck({ ...failing, userns: true, overlay: true }).status).toBe('ok');
    expect(restrictionCheck({ ...failing, root: true }).status).toBe('ok');
    const json = reportJson({
      checks: [c],
      modes: {} as never,
      reasons: {} as never,
      sandbox: false,
      sandboxReason: null,
    });
    expect((json as Doc).checks[0]).toMatchObject({ id: 'userns-restriction', ok: false, fixes: restriction.fixes });
  });

  it('Landlock: active, not active, unknown when securityfs is unreadable', () => {
    expect(landlockCheck(roots({ 'sys/kernel/security/lsm': 'lockdown,capability,landlock,yama\n' })).status).toBe(
      'ok',
    );
    expect(landlockCheck(roots({ 'sys/kernel/security/lsm': 'capability,apparmor\n' }))).toMatchObject({
      status: 'missing',
      detail: expect.stringContaining('capability, apparmor'),
    });
    expect(landlockCheck({ procRoot: tmp.path, sysRoot: join(tmp.path, 'none') }).status).toBe('unknown');
  });

  it('seccomp: the Seccomp: field of /proc/self/status says the kernel has it', () => {
    const filtered = roots({ 'proc/self/status': 'Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t1\n' });
    expect(seccompCheck(filtered)).toMatchObject({ status: 'ok', detail: expect.stringContaining('mode 2') });
    expect(seccompCheck(roots({ 'proc/self/status': 'Name:\tnode\n' })).status).toBe('missing');
  });
});
