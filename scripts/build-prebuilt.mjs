#!/usr/bin/env node
// Builds the binaries of the platform packages (npm/<id>/): the Node-API addon with node-gyp, the
// launcher with the C compiler alone, statically linked, so that it depends on no shared library
// (any glibc, and musl). x64 and arm64 are built on either host: the other one with Debian's cross
// toolchain (`apt-get install g++-aarch64-linux-gnu` on x64, g++-x86-64-linux-gnu on arm64). Every
// binary is then checked with `file` and `readelf`: its architecture, its shared libraries, and the
// glibc/libstdc++ symbol versions it needs (at most Node 20's own floor, glibc 2.28).
//
//   node scripts/build-prebuilt.mjs [--platform ID]... [--out DIR] [--json]
//
// Without --platform: every npm/<id>. Without --out the binaries land in npm/<id>/ (with a copy of
// LICENSE); with it, DIR/<id>/ is a complete package directory (manifest, README, LICENSE).
// --json prints one document: [{ id, dir, files: { name: { bytes, file, machine, needed, glibc,
// glibcxx } } }]. Exits 1 naming what failed, 2 when a compiler or node-gyp is not installed.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeGyp, nodedirArgs } from './build-native.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Per cpu: node-gyp's --arch, the cross toolchain's prefix, readelf's machine name, apt's package. */
const CPUS = {
  x64: {
    gyp: 'x64',
    triple: 'x86_64-linux-gnu',
    machine: 'Advanced Micro Devices X86-64',
    apt: 'g++-x86-64-linux-gnu',
  },
  arm64: { gyp: 'arm64', triple: 'aarch64-linux-gnu', machine: 'AArch64', apt: 'g++-aarch64-linux-gnu' },
};
/** The shared libraries the addon may need: what every glibc system has, and Node itself loads. */
const ALLOWED_NEEDED = /^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-[\w-]+\.so\.\d)$/;
/** Node 20's floor (its official binaries need glibc 2.28 and the libstdc++ of GCC 8). */
const FLOORS = { GLIBC: '2.28', GLIBCXX: '3.4.25' };
const LAUNCHER_FLAGS = ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror', '-std=gnu11'];

/** A tool that is not installed (exit 2: the caller may skip rather than fail). */
class MissingTool extends Error {}

function run(command, args, options = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (r.error) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} exited with ${r.status}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return r.stdout ?? '';
}

/** The compiler prefix for `cpu`: none natively, the cross triple otherwise (and it must be installed). */
function toolchain(cpu) {
  const spec = CPUS[cpu];
  if (!spec) throw new Error(`no toolchain known for cpu ${cpu} (known: ${Object.keys(CPUS).join(', ')})`);
  const prefix = cpu === arch() ? '' : `${spec.triple}-`;
  if (spawnSync(`${prefix}g++`, ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new MissingTool(`${prefix}g++ is not installed: \`apt-get install ${spec.apt}\``);
  }
  return { ...spec, prefix };
}

function readPackage(dir) {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
}

/** The addon, built by node-gyp in a scratch copy of native/ (the local build stays as it is). */
function buildAddon(tc, version, scratch) {
  const native = join(scratch, 'native');
  mkdirSync(native, { recursive: true });
  for (const f of readdirSync(join(root, 'native'))) {
    if (/\.(c|cc|h|gyp)$/.test(f)) copyFileSync(join(root, 'native', f), join(native, f));
  }
  // binding.gyp reads the version from ../package.json and resolves node-addon-api from its directory;
  // gyp writes build files beside node-addon-api's own .gyp, so it gets a copy (the repository's
  // may not be writable: tests build as nobody too).
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'branching', version }));
  cpSync(join(root, 'node_modules', 'node-addon-api'), join(scratch, 'node_modules', 'node-addon-api'), {
    recursive: true,
  });
  const gyp = findNodeGyp();
  if (!gyp) throw new MissingTool('node-gyp is not installed (`npm install -g node-gyp`)');
  const env = { ...process.env };
  if (tc.prefix)
    Object.assign(env, {
      CC: `${tc.prefix}gcc`,
      CXX: `${tc.prefix}g++`,
      LINK: `${tc.prefix}g++`,
      AR: `${tc.prefix}ar`,
    });
  run(gyp.command, [...gyp.args, 'configure', '--directory', native, `--arch=${tc.gyp}`, ...nodedirArgs()], { env });
  // The addon's target only: the launcher is built static below.
  run('make', ['-C', join(native, 'build'), 'BUILDTYPE=Release', 'branching'], { env });
  const out = join(native, 'build', 'Release', 'branching.node');
  run(`${tc.prefix}strip`, ['--strip-unneeded', out]);
  return out;
}

function buildLauncher(tc, scratch) {
  const out = join(scratch, 'branching-launcher');
  const listed = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8'))['branching-launcher'];
  const sources = listed.filter((f) => f.endsWith('.c')).map((f) => join(root, 'native', f));
  run(`${tc.prefix}gcc`, [...LAUNCHER_FLAGS, '-o', out, ...sources]);
  return out;
}

const versionKey = (v) =>
  v
    .split('.')
    .map((n) => n.padStart(4, '0'))
    .join('.');
const newest = (versions) => versions.sort((a, b) => versionKey(a).localeCompare(versionKey(b))).at(-1) ?? null;

/** What `file` and `readelf` say about one binary, and what is wrong with it for `tc`. */
export function inspectBinary(path, tc, { executable }) {
  const file = run('file', ['-b', path]).trim();
  const machine = /Machine:\s+(.+)/.exec(run('readelf', ['-h', path]))?.[1].trim() ?? 'unknown';
  const dynamic = run('readelf', ['-d', '-W', path]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const symbols = run('readelf', ['--dyn-syms', '-W', path]);
  const versions = (name) => [...symbols.matchAll(new RegExp(`@${name}_([\\d.]+)`, 'g'))].map((m) => m[1]);
  const report = {
    bytes: statSync(path).size,
    file,
    machine,
    needed,
    glibc: newest(versions('GLIBC')),
    glibcxx: newest(versions('GLIBCXX')),
  };
  const problems = [];
  if (machine !== tc.machine) problems.push(`machine is ${machine}, not ${tc.machine}`);
  if (executable && (!/statically linked/.test(file) || needed.length > 0))
    problems.push(`not statically linked (${file})`);
  for (const lib of needed) if (!ALLOWED_NEEDED.test(lib)) problems.push(`needs ${lib}`);
  for (const [name, floor] of Object.entries(FLOORS)) {
    const v = newest(versions(name));
    if (v && versionKey(v) > versionKey(floor)) problems.push(`needs ${name}_${v} (the floor is ${floor})`);
  }
  return { report, problems };
}

function buildPlatform(id, outRoot, version) {
  const template = join(root, 'npm', id);
  const pkg = readPackage(template);
  if (pkg.version !== version)
    throw new Error(`npm/${id}/package.json is version ${pkg.version}, branching is ${version}`);
  const tc = toolchain(pkg.cpu[0]);
  const dir = outRoot ? join(outRoot, id) : template;
  mkdirSync(dir, { recursive: true });
  if (outRoot) cpSync(template, dir, { recursive: true, filter: (src) => !/branching(\.node|-launcher)$/.test(src) });
  copyFileSync(join(root, 'LICENSE'), join(dir, 'LICENSE'));
  const scratch = mkdtempSync(join(tmpdir(), `branching-prebuilt-${id}-`));
  try {
    copyFileSync(buildAddon(tc, version, scratch), join(dir, 'branching.node'));
    copyFileSync(buildLauncher(tc, scratch), join(dir, 'branching-launcher'));
    chmodSync(join(dir, 'branching-launcher'), 0o755);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const files = {};
  const problems = [];
  for (const [name, executable] of [
    ['branching.node', false],
    ['branching-launcher', true],
  ]) {
    const inspected = inspectBinary(join(dir, name), tc, { executable });
    files[name] = inspected.report;
    problems.push(...inspected.problems.map((p) => `${id}/${name}: ${p}`));
  }
  return { id, dir, files, problems };
}

function parseArgs(argv) {
  const options = { platforms: [], out: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--platform') options.platforms.push(argv[++i]);
    else if (argv[i] === '--out') options.out = resolve(argv[++i]);
    else if (argv[i] === '--json') options.json = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return options;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const all = readdirSync(join(root, 'npm')).filter((d) => existsSync(join(root, 'npm', d, 'package.json')));
  const ids = options.platforms.length > 0 ? options.platforms : all;
  for (const id of ids)
    if (!all.includes(id)) throw new Error(`no platform package npm/${id} (there are ${all.join(', ')})`);
  const { version } = readPackage(root);
  const results = ids.map((id) => buildPlatform(id, options.out, version));
  if (options.json) console.log(JSON.stringify(results, null, 2));
  else {
    for (const r of results) {
      for (const [name, f] of Object.entries(r.files)) {
        console.log(
          `${r.id}/${name}: ${f.bytes} bytes, ${f.machine}, needs ${f.needed.join(' ') || 'nothing'}; glibc ${f.glibc ?? '-'}, libstdc++ ${f.glibcxx ?? '-'}`,
        );
      }
    }
  }
  const problems = results.flatMap((r) => r.problems);
  for (const p of problems) console.error(`build-prebuilt: ${p}`);
  process.exit(problems.length > 0 ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`build-prebuilt: ${err.message}`);
    process.exit(err instanceof MissingTool ? 2 : 1);
  }
}
