/**
 * Where the addon and the launcher come from (src/binaries.ts), on package roots laid out in temp
 * dirs with real files: every place tried is named, a stale or foreign binary is never used, and
 * each reason carries the fix.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadFrom, loadNative } from '../../src/addon.ts';
import { type BinaryContext, PREBUILT_PLATFORMS, platformId, resolveBinary } from '../../src/binaries.ts';
import { requireFeature } from '../helpers/require-feature.ts';

const real = loadNative();
const hasAddon = requireFeature('the native addon', real.binding !== null, real.reason);

let root: string;
const context = (over: Partial<BinaryContext> = {}): BinaryContext => ({
  root,
  env: {},
  platform: 'linux-x64-gnu',
  ...over,
});

/** A `branching` package root at `version`, its native sources dated an hour ago. */
function packageAt(dir: string, version: string): string {
  mkdirSync(join(dir, 'native', 'build', 'Release'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'branching', version }));
  // Which sources make which binary: the package's own list, as a source checkout has it.
  const listed = { 'branching.node': ['branching.cc', 'errname.h'], 'branching-launcher': ['launcher.c', 'errname.h'] };
  writeFileSync(join(dir, 'native', 'sources.json'), JSON.stringify(listed));
  for (const src of ['branching.cc', 'launcher.c', 'errname.h']) writeFileSync(join(dir, 'native', src), '');
  const past = new Date(Date.now() - 3_600_000);
  for (const src of ['branching.cc', 'launcher.c', 'errname.h']) utimesSync(join(dir, 'native', src), past, past);
  return dir;
}

/** An installed platform package beside the root's node_modules. */
function platformPackage(id: string, version: string, files: Record<string, string>): string {
  const dir = join(root, 'node_modules', '@branching', id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@branching/${id}`, version }));
  for (const [name, content] of Object.entries(files)) {
    if (content === 'the real addon') copyFileSync(real.file!, join(dir, name));
    else writeFileSync(join(dir, name), content);
  }
  return dir;
}

beforeEach(() => {
  // A space and a non-ASCII character: paths are paths, never URL-encoded.
  root = packageAt(mkdtempSync(join(tmpdir(), 'branching josé-')), '9.9.9');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('binary resolution', () => {
  it('names every place tried, and the install and source-build fixes, when nothing is there', () => {
    const r = resolveBinary('launcher', context());
    expect(r.file).toBeNull();
    expect(r.tried.map((c) => [c.source, c.state, c.detail])).toEqual([
      ['the local build', 'absent', 'not built'],
      ['@branching/linux-x64-gnu', 'absent', 'not installed'],
    ]);
    expect(r.reason).toContain('the sandbox launcher is not installed');
    expect(r.reason).toContain(join(root, 'native', 'build', 'Release', 'branching-launcher'));
    expect(r.reason).toContain('`npm install @branching/linux-x64-gnu@9.9.9`');
    // The script path has a space: the fix quotes it so that it can be pasted.
    expect(r.reason).toContain(`\`node '${join(root, 'scripts', 'build-native.mjs')}'\``);
  });

  it('says that a platform has no prebuilt package, and how to build from source', () => {
    const r = resolveBinary('addon', context({ platform: 'linux-riscv64-gnu' }));
    expect(r.reason).toContain(
      `there is no prebuilt package for linux-riscv64-gnu (only ${PREBUILT_PLATFORMS.join(', ')})`,
    );
    expect(r.reason).toContain('build-native.mjs');
  });

  it('uses the platform package when there is no local build', () => {
    const dir = platformPackage('linux-x64-gnu', '9.9.9', { 'branching-launcher': '' });
    const r = resolveBinary('launcher', context());
    expect(r).toMatchObject({
      file: join(dir, 'branching-launcher'),
      source: '@branching/linux-x64-gnu',
      reason: null,
    });
  });

  it('prefers the local build, and refuses one older than its sources', () => {
    platformPackage('linux-x64-gnu', '9.9.9', { 'branching-launcher': '' });
    const local = join(root, 'native', 'build', 'Release', 'branching-launcher');
    writeFileSync(local, '');
    expect(resolveBinary('launcher', context())).toMatchObject({ file: local, source: 'the local build' });
    writeFileSync(join(root, 'native', 'launcher.c'), '/* changed */');
    const past = new Date(Date.now() - 60_000);
    utimesSync(local, past, past);
    const stale = resolveBinary('launcher', context());
    expect(stale.file).toBeNull();
    expect(stale.reason).toContain(
      `the sandbox launcher ${local} is stale (native/launcher.c changed after the build)`,
    );
    expect(stale.reason).toContain('rebuild it with `node');
  });

  it("goes by the sources' recorded hashes where build-native.mjs left them, not by their dates", () => {
    const local = join(root, 'native', 'build', 'Release', 'branching-launcher');
    writeFileSync(local, '');
    const hash = (text: string) => createHash('sha256').update(text).digest('hex');
    const stamp = join(root, 'native', 'build', 'Release', 'sources.json');
    writeFileSync(stamp, JSON.stringify({ 'launcher.c': hash(''), 'errname.h': hash('') }));
    // Rewritten with the same content after the build (a checkout, a rebase): still current.
    writeFileSync(join(root, 'native', 'launcher.c'), '');
    expect(resolveBinary('launcher', context())).toMatchObject({ file: local, reason: null });
    writeFileSync(join(root, 'native', 'launcher.c'), '/* changed */');
    expect(resolveBinary('launcher', context()).reason).toContain('(native/launcher.c changed after the build)');
  });

  it('refuses a platform package of another version', () => {
    platformPackage('linux-x64-gnu', '1.0.0', { 'branching-launcher': '' });
    const r = resolveBinary('launcher', context());
    expect(r.file).toBeNull();
    expect(r.reason).toContain('(version 1.0.0, but branching is 9.9.9)');
    expect(r.reason).toContain('`npm install @branching/linux-x64-gnu@9.9.9`');
  });

  it('BRANCHING_NATIVE_DIR is the only place tried when set', () => {
    platformPackage('linux-x64-gnu', '9.9.9', { 'branching-launcher': '' });
    const dir = join(root, 'elsewhere');
    const r = resolveBinary('launcher', context({ env: { BRANCHING_NATIVE_DIR: dir } }));
    expect(r.tried).toEqual([
      {
        source: 'BRANCHING_NATIVE_DIR',
        file: join(dir, 'branching-launcher'),
        state: 'absent',
        detail: 'no such file',
      },
    ]);
    expect(r.reason).toContain('tried BRANCHING_NATIVE_DIR');
    const relative = resolveBinary('launcher', context({ env: { BRANCHING_NATIVE_DIR: 'npm/linux-x64-gnu' } }));
    expect(relative.reason).toContain('npm/linux-x64-gnu/branching-launcher: not an absolute path');
  });

  it('names the C library of this process in the platform id', () => {
    expect(platformId('linux', 'arm64')).toMatch(/^linux-arm64-(gnu|musl)$/);
    expect(platformId('darwin', 'arm64')).toBe('darwin-arm64');
  });
});

describe.skipIf(!hasAddon)('loading the addon', () => {
  it('loads it from a path with a space and a non-ASCII character', () => {
    platformPackage('linux-x64-gnu', real.binding!.version, { 'branching.node': 'the real addon' });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'branching', version: real.binding!.version }));
    const load = loadFrom(context());
    expect(load.reason).toBeNull();
    expect(load.source).toBe('@branching/linux-x64-gnu');
    expect(load.binding!.constants.MS_BIND).toBe(4096);
  });

  it('reports the real load error of a broken binary, and where it came from', () => {
    writeFileSync(join(root, 'native', 'build', 'Release', 'branching.node'), 'not an ELF file');
    const load = loadFrom(context());
    expect(load.binding).toBeNull();
    expect(load.reason).toMatch(/branching\.node \(the local build\) does not load \(.*(invalid ELF header|too short)/);
    expect(load.reason).toContain('rebuild it with `node');
  });

  it('refuses an addon built for another version', () => {
    copyFileSync(real.file!, join(root, 'native', 'build', 'Release', 'branching.node'));
    const load = loadFrom(context());
    expect(load.binding).toBeNull();
    expect(load.reason).toContain(`is stale (built for branching ${real.binding!.version}, this is 9.9.9)`);
  });
});
