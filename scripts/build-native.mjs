#!/usr/bin/env node
// Builds the native addon and the launcher from source with node-gyp, into native/build/Release
// (the library's "local build", which it prefers to a prebuilt package). Published packages run
// it only when asked: `node node_modules/branching/scripts/build-native.mjs`, for platforms without
// a prebuilt package. In this repository `npm install` runs it (the root's own install script,
// which the published manifest does not carry) and `npm test` runs it with --if-stale.
//
//   --if-stale   build only when a binary is missing or older than its sources
//
// As an install script it never fails the install: the library then runs on the portable clone
// backend and says why (BRANCHING_MUST_WORK=1 makes it fail). Run by hand, a failure exits 1.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const release = join(nativeDir, 'build', 'Release');
const lenient = process.env.npm_lifecycle_event === 'install' && process.env.BRANCHING_MUST_WORK !== '1';
/** Each output and its sources (native/sources.json, also read by src/binaries.ts to call a local build stale). */
const SOURCES = JSON.parse(readFileSync(join(nativeDir, 'sources.json'), 'utf8'));
const OUTPUTS = Object.fromEntries(
  Object.entries(SOURCES).filter(([out]) => out !== 'branching-launcher' || process.platform === 'linux'),
);

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const STAMP = join(release, 'sources.json');

/** The sources' hashes, recorded beside the binaries: a rewrite with the same content is not a change. */
function sourceHashes() {
  const names = [...new Set(Object.values(OUTPUTS).flat())];
  return Object.fromEntries(names.map((name) => [name, sha256(join(nativeDir, name))]));
}

function stale() {
  if (Object.keys(OUTPUTS).some((out) => !existsSync(join(release, out)))) return true;
  try {
    const recorded = JSON.parse(readFileSync(STAMP, 'utf8'));
    return Object.entries(sourceHashes()).some(([name, hash]) => recorded[name] !== hash);
  } catch {
    return true;
  }
}

/** node-gyp: npm's (lifecycle scripts get npm_config_node_gyp), one beside this node, or PATH's. */
export function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath &&
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ].filter(Boolean);
  const script = candidates.find((c) => existsSync(c));
  if (script) return { command: process.execPath, args: [script] };
  const onPath = spawnSync('node-gyp', ['--version'], { stdio: 'ignore' });
  return onPath.status === 0 ? { command: 'node-gyp', args: [] } : null;
}

/** node's own headers when installed next to it (distribution packages: /usr/include/node): offline builds. */
export function nodedirArgs() {
  const prefix = join(dirname(process.execPath), '..');
  if (process.env.npm_config_nodedir || !existsSync(join(prefix, 'include', 'node', 'common.gypi'))) return [];
  return [`--nodedir=${prefix}`];
}

function fail(why) {
  console.warn(`branching: could not build the native addon and launcher from source: ${why}`);
  if (lenient) {
    console.warn('branching: the library will use the portable clone backend; overlay and the sandbox need them.');
    process.exit(0);
  }
  process.exit(1);
}

function main() {
  if (process.env.BRANCHING_SKIP_NATIVE === '1') {
    console.warn('branching: BRANCHING_SKIP_NATIVE=1, not building the native addon');
    process.exit(0);
  }
  if (!existsSync(join(nativeDir, 'binding.gyp'))) fail(`${nativeDir} has no binding.gyp`);
  if (process.argv.includes('--if-stale') && !stale()) process.exit(0);
  const gyp = findNodeGyp();
  if (!gyp) fail('node-gyp is not installed (`npm install -g node-gyp`, or run this script through npm)');
  const result = spawnSync(gyp.command, [...gyp.args, 'rebuild', '--directory', nativeDir, ...nodedirArgs()], {
    stdio: 'inherit',
  });
  if (result.status === 0) writeFileSync(STAMP, `${JSON.stringify(sourceHashes(), null, 2)}\n`);
  if (result.status !== 0) {
    fail(
      result.error
        ? result.error.message
        : `node-gyp exited with ${result.status} (it needs python3, make and a C++ compiler)`,
    );
  }
}

// build-prebuilt.mjs imports the helpers above; run directly (or as an install script), this builds.
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) main();
