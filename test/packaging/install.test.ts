/**
 * The packages as users get them. The prebuilt binaries are built from the current sources
 * (scripts/build-prebuilt.mjs: this host's natively, the others cross-compiled), everything is
 * packed (scripts/pack.mjs), and the tarballs are installed with --ignore-scripts into fresh
 * projects whose paths hold a space and a non-ASCII character, under npm, pnpm 10 and yarn 1.
 * There the addon and the launcher must come from the platform package, and the sandbox must
 * work: no compiler, no install script.
 */
import { type SpawnSyncOptions, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREBUILT_PLATFORMS, platformId } from '../../src/binaries.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { requireFeature } from '../helpers/require-feature.ts';

const host = platformId();
const hostCovered = requireFeature(
  'a prebuilt platform package for this host',
  PREBUILT_PLATFORMS.includes(host),
  `there is none for ${host}`,
);
const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

interface BinaryReport {
  bytes: number;
  file: string;
  machine: string;
  needed: string[];
  glibc: string | null;
  glibcxx: string | null;
}
interface Packed {
  name: string;
  version: string;
  tarball: string;
  size: number;
  unpackedSize: number;
  files: string[];
}

let work: string;
/** Per platform id: its binaries' report, or why it could not be built here. */
const built = new Map<string, { files: Record<string, BinaryReport> } | { unavailable: string }>();
let packed: Packed[] = [];

/** The environment of a consumer: nothing of this repository's npm run or native overrides. */
function consumerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|BRANCHING_(NATIVE_DIR|LAUNCHER|NO_NATIVE|STATE_DIR)$)/i.test(k)) env[k] = v;
  }
  return { ...env, XDG_CACHE_HOME: join(work, 'cache'), BRANCHING_QUIET: '1' };
}

function run(command: string, args: string[], options: SpawnSyncOptions = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', env: consumerEnv(), timeout: 120_000, ...options });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** build-prebuilt.mjs for one platform, as a promise: the platforms build side by side. */
function buildPlatform(id: string): Promise<void> {
  const script = join(repoRoot, 'scripts', 'build-prebuilt.mjs');
  const child = spawn(process.execPath, [script, '--platform', id, '--out', join(work, 'prebuilt'), '--json']);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      if (code === 0) built.set(id, JSON.parse(stdout)[0]);
      else if (code === 2) built.set(id, { unavailable: stderr.trim() });
      else reject(new Error(`build-prebuilt.mjs --platform ${id} exited with ${code}:\n${stderr}`));
      resolve();
    });
  });
}

beforeAll(async () => {
  if (!hostCovered) return;
  assertBuilt();
  work = mkdtempSync(join(tmpdir(), 'branching josé-'));
  await Promise.all(PREBUILT_PLATFORMS.map(buildPlatform));
  const r = run(process.execPath, [
    join(repoRoot, 'scripts', 'pack.mjs'),
    '--out',
    join(work, 'tgz'),
    '--prebuilt',
    join(work, 'prebuilt'),
    '--json',
  ]);
  expect(r.status, r.stderr).toBe(0);
  packed = (JSON.parse(r.stdout) as { packed: Packed[] }).packed;
  for (const p of packed)
    console.log(`packed ${p.name}: ${p.size} B (${p.unpackedSize} B unpacked, ${p.files.length} files)`);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const tarball = (name: string): Packed => {
  const p = packed.find((x) => x.name === name);
  if (!p) throw new Error(`${name} was not packed (packed: ${packed.map((x) => x.name).join(', ')})`);
  return p;
};
const manifestOf = (p: Packed) =>
  JSON.parse(run('tar', ['-xzOf', p.tarball, 'package/package.json']).stdout) as Record<string, any>;
const versionKey = (v: string) =>
  v
    .split('.')
    .map((n) => n.padStart(4, '0'))
    .join('.');

describe.skipIf(!hostCovered)('prebuilt binaries', () => {
  const MACHINES: Record<string, string> = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' };

  it.for(PREBUILT_PLATFORMS)(
    '%s: its architecture, only libc/libstdc++ needed, at most glibc 2.28; a static launcher',
    (id, ctx) => {
      const result = built.get(id)!;
      if ('unavailable' in result && !requireFeature(`the toolchain for ${id}`, false, result.unavailable)) ctx.skip();
      if ('unavailable' in result) return;
      const cpu = id.split('-')[1];
      const addon = result.files['branching.node'];
      const launcher = result.files['branching-launcher'];
      // What `file` and `readelf` said about the binaries in the package directory.
      expect(addon.machine).toBe(MACHINES[cpu]);
      expect(addon.file).toMatch(/^ELF 64-bit LSB shared object/);
      expect(
        addon.needed.filter((lib) => !/^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$/.test(lib)),
      ).toEqual([]);
      expect(versionKey(addon.glibc!) <= versionKey('2.28'), `needs glibc ${addon.glibc}`).toBe(true);
      expect(launcher.machine).toBe(MACHINES[cpu]);
      expect(launcher.file).toMatch(/^ELF 64-bit LSB executable, .*statically linked/);
      expect(launcher.needed).toEqual([]);
    },
  );
});

const DEV_ONLY = ['private', 'scripts', 'devDependencies', 'workspaces', 'overrides'];

describe.skipIf(!hostCovered)('published packages', () => {
  it('branching: a clean manifest pinning every platform package, no maps, no unused bundle', () => {
    const core = tarball('branching');
    const manifest = manifestOf(core);
    for (const field of DEV_ONLY) expect(manifest, field).not.toHaveProperty(field);
    expect(manifest.optionalDependencies).toEqual(
      Object.fromEntries(PREBUILT_PLATFORMS.map((id) => [`@branching/${id}`, version])),
    );
    expect(core.files.filter((f) => f.endsWith('.map') || f === 'dist/cli.cjs')).toEqual([]);
    expect(core.files).toEqual(
      expect.arrayContaining([
        'dist/index.js',
        'dist/index.cjs',
        'dist/cli.js',
        'reporters/progress.cjs',
        'scripts/build-native.mjs',
      ]),
    );
    expect(manifest.bin.branching).toBe('./dist/cli.js');
  });

  it.for(['branching', 'vitest-environment-branching', 'jest-environment-branching'])(
    '%s: LICENSE, README and the repository fields',
    (name) => {
      const p = tarball(name);
      const manifest = manifestOf(p);
      expect(p.files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
      expect(manifest.license).toBe('Apache-2.0');
      expect(manifest.repository.url).toMatch(/^git\+https:\/\/.+\.git$/);
      expect(manifest.homepage).toMatch(/^https:\/\//);
      expect(manifest.bugs.url).toMatch(/^https:\/\//);
      expect(p.files.filter((f) => f.endsWith('.map'))).toEqual([]);
      if (name !== 'branching') for (const field of DEV_ONLY) expect(manifest, field).not.toHaveProperty(field);
    },
  );

  it(`@branching/${host}: os, cpu and libc, and nothing but its binaries`, () => {
    const p = tarball(`@branching/${host}`);
    const manifest = manifestOf(p);
    expect([manifest.os, manifest.cpu, manifest.libc]).toEqual([['linux'], [host.split('-')[1]], ['glibc']]);
    expect(manifest.version).toBe(version);
    expect(p.files).toEqual(['LICENSE', 'README.md', 'branching-launcher', 'branching.node', 'package.json']);
  });
});

interface Manager {
  /** The package manager's command line: pnpm and yarn come from the registry through npx. */
  command: string[];
  install: string[];
  /** The manifest field that points the unpublished platform packages at their tarballs. */
  pin: (map: Record<string, string>) => Record<string, unknown>;
  /** Why this manager needs every platform's tarball, if it does. */
  needsAll?: string;
}

const MANAGERS: Record<string, Manager> = {
  npm: {
    command: ['npm'],
    install: ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    pin: (map) => ({ overrides: map }),
  },
  pnpm: {
    command: ['npx', '--yes', '--prefer-offline', 'pnpm@10'],
    install: ['install', '--ignore-scripts', '--prefer-offline'],
    pin: (map) => ({ pnpm: { overrides: map } }),
  },
  yarn: {
    command: ['npx', '--yes', '--prefer-offline', 'yarn@1'],
    // Yarn 1 skips a foreign-cpu optional dependency from the registry, but refuses one that a
    // resolution points at a file, which is this test's stand-in for the registry: it installs
    // every platform package, and the runtime must still pick this host's by name.
    install: ['install', '--ignore-scripts', '--prefer-offline', '--non-interactive', '--ignore-platform'],
    pin: (map) => ({ resolutions: map }),
    needsAll: 'yarn 1 resolves every optional dependency, and the platform packages are not on the registry',
  },
};

/** A fresh consumer project (a space and a non-ASCII character in its path) with the tarballs installed. */
function installWith(name: string, manager: Manager, devDependencies: Record<string, string> = {}): string {
  const dir = join(work, `josé proj ${name}`);
  mkdirSync(join(dir, 'project'), { recursive: true });
  writeFileSync(join(dir, 'project', 'a.txt'), 'from the project\n');
  const relative = (p: Packed) => `file:../tgz/${p.tarball.split('/').at(-1)}`;
  const platforms = packed.filter((p) => p.name.startsWith('@branching/'));
  const pins = Object.fromEntries(platforms.map((p) => [p.name, relative(p)]));
  const manifest = {
    name: 'consumer',
    version: '1.0.0',
    private: true,
    dependencies: { branching: relative(tarball('branching')) },
    devDependencies,
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...manifest, ...manager.pin(pins) }, null, 2));
  copyFileSync(join(repoRoot, 'test', 'fixtures', 'packaging', 'check.cjs'), join(dir, 'check.cjs'));
  const [command, ...args] = manager.command;
  const r = run(command, [...args, ...manager.install], { cwd: dir });
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  return dir;
}

describe.skipIf(!hostCovered)('installed with --ignore-scripts, the sandbox works', () => {
  it.for(Object.keys(MANAGERS))('%s', (name, ctx) => {
    const manager = MANAGERS[name];
    const [command, ...args] = manager.command;
    const probe = run(command, [...args, '--version'], { cwd: work });
    const missing = PREBUILT_PLATFORMS.filter((id) => !packed.some((p) => p.name === `@branching/${id}`));
    const why =
      probe.status !== 0
        ? `${manager.command.join(' ')} --version failed: ${probe.stderr.trim().split('\n').at(-1)}`
        : manager.needsAll && missing.length > 0
          ? `${manager.needsAll}, and ${missing.join(', ')} could not be built here`
          : null;
    if (!requireFeature(`installing with ${name}`, why === null, why)) ctx.skip();

    const dir = installWith(name, manager);
    const fromPackage = `/node_modules/@branching/${host}/`;
    const env = consumerEnv();
    const bin = join(dir, 'node_modules', '.bin', 'branching');

    const doctor = run(bin, ['doctor', '--json'], { cwd: dir, env });
    const checks = (JSON.parse(doctor.stdout) as { checks: { id: string; ok: boolean; detail: string }[] }).checks;
    const check = (id: string) => checks.find((c) => c.id === id)!;
    expect(check('native-addon'), doctor.stdout).toMatchObject({
      ok: true,
      detail: expect.stringContaining(fromPackage),
    });
    expect(check('launcher').detail).toContain(join(dir, 'node_modules'));
    expect(check('launcher').detail).toContain(`${fromPackage}branching-launcher`);

    const result = run(process.execPath, ['check.cjs'], { cwd: dir, env });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      fstype: process.getuid?.() === 0 ? 'overlay' : expect.any(String),
      sandboxed: true,
      downgradeReason: null,
      launcher: expect.stringContaining(`${fromPackage}branching-launcher`),
      made: '1',
      leaked: false,
    });

    // The ESM bundle resolves the same binaries from its own location.
    const esm = run(
      process.execPath,
      ['--input-type=module', '-e', "import { locateLauncher } from 'branching'; console.log(locateLauncher().path)"],
      { cwd: dir, env },
    );
    expect(esm.stdout.trim(), esm.stderr).toBe(check('launcher').detail);
    const sandboxed = run(bin, ['run', '--', 'sh', '-c', 'echo "$BRANCHING_SANDBOX"'], {
      cwd: join(dir, 'project'),
      env,
    });
    expect([sandboxed.status, sandboxed.stdout.trim()], sandboxed.stderr).toEqual([0, '1']);
  });
});

describe.skipIf(!hostCovered)('the Vitest plugin from its tarball', () => {
  it("runs a consumer's tests in the sandbox, each in its own branch", () => {
    const vitestPackage = join(repoRoot, 'node_modules', 'vitest', 'package.json');
    const { version: vitest } = JSON.parse(readFileSync(vitestPackage, 'utf8')) as { version: string };
    const plugin = `file:../tgz/${tarball('vitest-environment-branching').tarball.split('/').at(-1)}`;
    const dir = installWith('vitest', MANAGERS.npm, { vitest, 'vitest-environment-branching': plugin });
    cpSync(join(repoRoot, 'test', 'fixtures', 'packaging', 'vitest'), dir, { recursive: true });
    const r = run(join(dir, 'node_modules', '.bin', 'vitest'), ['run'], {
      cwd: dir,
      env: { ...consumerEnv(), CI: '1', NO_COLOR: '1' },
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Tests\s+2 passed \(2\)/);
    expect(existsSync(join(dir, 'tests', 'written.txt'))).toBe(false);
  });
});
