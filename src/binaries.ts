/**
 * Where the native addon and the sandbox launcher come from, in this order:
 *
 * 1. `BRANCHING_NATIVE_DIR`: a directory holding both, chosen by the user; nothing else is tried.
 * 2. This package's own build, native/build/Release (a checkout, or a build from source).
 * 3. The prebuilt platform package (`@branching/linux-x64-gnu`, ...): an optional dependency that
 *    npm, pnpm and yarn install for the matching os/cpu/libc without running any script.
 *
 * The first place that has the file decides. When it cannot be used (stale, or it does not load),
 * or no place has one, the reason names every place tried and the exact fix: never a silent
 * fallback to another binary.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The platforms with a prebuilt package (npm/<id>/ in the repository). */
export const PREBUILT_PLATFORMS: readonly string[] = ['linux-x64-gnu', 'linux-arm64-gnu'];

export const BINARY_FILES = { addon: 'branching.node', launcher: 'branching-launcher' } as const;
export type BinaryKind = keyof typeof BINARY_FILES;

const TITLES: Record<BinaryKind, string> = { addon: 'the native addon', launcher: 'the sandbox launcher' };

/** The sources of each binary (in native/): a local build older than one of them is stale. */

/**
 * This module's own file. In the CJS bundle import.meta.url is tsup's shim, which believes it runs in
 * a browser when a global `document` exists (jsdom and happy-dom test environments define one):
 * __filename is right there.
 */
export function thisModuleFile(): string {
  return typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);
}

/** The nearest ancestor directory of `from` with a package.json named "branching" (src/ and dist/ differ in depth). */
export function packageRoot(from: string = thisModuleFile()): string | null {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'branching') return dir;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    if (dirname(dir) === dir) return null;
  }
}

/** The version in `dir`/package.json, or null. */
export function readVersion(dir: string): string | null {
  try {
    const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof version === 'string' ? version : null;
  } catch {
    return null;
  }
}

let libc: 'gnu' | 'musl' | undefined;

/** The C library this Node process runs on: what a prebuilt addon must be linked against. */
export function libcFamily(): 'gnu' | 'musl' {
  if (libc) return libc;
  try {
    // The loader's own mappings say it exactly, and cheaply (process.report takes milliseconds).
    libc = /\/ld-musl-|\/libc\.musl-/.test(readFileSync('/proc/self/maps', 'utf8')) ? 'musl' : 'gnu';
  } catch {
    libc = 'gnu';
  }
  return libc;
}

/** `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`: the platform package's name without its scope. */
export function platformId(platform: string = process.platform, arch: string = process.arch): string {
  return platform === 'linux' ? `linux-${arch}-${libcFamily()}` : `${platform}-${arch}`;
}

/** A path as one shell word, for fixes that users paste. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

export interface Candidate {
  /** `BRANCHING_NATIVE_DIR`, `the local build`, or the platform package's name. */
  source: string;
  /** The binary's path; null when the place does not exist (the package is not installed). */
  file: string | null;
  /** `absent`: nothing there, try the next place; `stale`: it is there but must not be used. */
  state: 'usable' | 'absent' | 'stale';
  /** What is wrong, for `absent` and `stale`. */
  detail: string | null;
}

export interface BinaryContext {
  root: string | null;
  env: NodeJS.ProcessEnv;
  platform: string;
}

const defaultContext = (): BinaryContext => ({ root: packageRoot(), env: process.env, platform: platformId() });

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/**
 * The source of `file` that changed since it was built, or null. build-native.mjs records the
 * sources' hashes beside the binaries (sources.json): a checkout or a rebase that rewrites a file
 * with the same content changes nothing. A binary newer than that record was built some other
 * way (node-gyp by hand), and then a source newer than the binary is what counts.
 */
/** The sources of a binary (native/sources.json, which the build scripts read too); none without it. */
function sourcesOf(kind: BinaryKind, root: string): string[] {
  try {
    const listed = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')) as Record<string, string[]>;
    return listed[BINARY_FILES[kind]] ?? [];
  } catch {
    return [];
  }
}

function changedSource(kind: BinaryKind, root: string, file: string): string | null {
  const stamp = join(dirname(file), 'sources.json');
  const built = statSync(file).mtimeMs;
  let hashes: Record<string, string> | null = null;
  try {
    if (statSync(stamp).mtimeMs >= built) hashes = JSON.parse(readFileSync(stamp, 'utf8')) as Record<string, string>;
  } catch {
    // no record: dates decide
  }
  for (const name of sourcesOf(kind, root)) {
    const src = join(root, 'native', name);
    if (!existsSync(src)) continue;
    if (hashes ? hashes[name] !== sha256(src) : statSync(src).mtimeMs > built) return name;
  }
  return null;
}

function localCandidate(kind: BinaryKind, root: string | null): Candidate {
  const source = 'the local build';
  if (!root) return { source, file: null, state: 'absent', detail: 'no package root found' };
  const file = join(root, 'native', 'build', 'Release', BINARY_FILES[kind]);
  if (!existsSync(file)) return { source, file, state: 'absent', detail: 'not built' };
  const changed = changedSource(kind, root, file);
  if (changed) return { source, file, state: 'stale', detail: `native/${changed} changed after the build` };
  return { source, file, state: 'usable', detail: null };
}

function packageCandidate(kind: BinaryKind, { root, platform }: BinaryContext): Candidate {
  const source = `@branching/${platform}`;
  let manifest: string;
  try {
    const require = createRequire(root ? join(root, 'package.json') : thisModuleFile());
    manifest = require.resolve(`${source}/package.json`);
  } catch {
    return { source, file: null, state: 'absent', detail: 'not installed' };
  }
  const dir = dirname(manifest);
  const file = join(dir, BINARY_FILES[kind]);
  const theirs = readVersion(dir);
  const ours = root ? readVersion(root) : null;
  if (ours && theirs !== ours) {
    return { source, file, state: 'stale', detail: `version ${theirs ?? 'unknown'}, but branching is ${ours}` };
  }
  if (!existsSync(file)) return { source, file, state: 'absent', detail: `installed without ${BINARY_FILES[kind]}` };
  return { source, file, state: 'usable', detail: null };
}

/** Every place to look, in order (see the module comment). */
export function binaryCandidates(kind: BinaryKind, context: BinaryContext = defaultContext()): Candidate[] {
  const dir = context.env.BRANCHING_NATIVE_DIR;
  if (dir) {
    const file = join(dir, BINARY_FILES[kind]);
    const source = 'BRANCHING_NATIVE_DIR';
    // Relative to what? The cwd changes (sandboxed children start elsewhere): absolute only.
    if (!isAbsolute(dir)) return [{ source, file, state: 'absent', detail: 'not an absolute path' }];
    return [
      existsSync(file)
        ? { source, file, state: 'usable', detail: null }
        : { source, file, state: 'absent', detail: 'no such file' },
    ];
  }
  return [localCandidate(kind, context.root), packageCandidate(kind, context)];
}

export interface Resolution {
  /** The binary to use; null when there is none (then `reason` says why). */
  file: string | null;
  /** Where it comes from (a Candidate's `source`). */
  source: string | null;
  reason: string | null;
  tried: Candidate[];
}

/** The first place that has the binary, or why none can be used. */
export function resolveBinary(kind: BinaryKind, context: BinaryContext = defaultContext()): Resolution {
  const tried = binaryCandidates(kind, context);
  const found = tried.find((c) => c.state !== 'absent');
  if (found?.state === 'usable') return { file: found.file, source: found.source, reason: null, tried };
  const reason = found
    ? `${TITLES[kind]} ${found.file} is stale (${found.detail}); ${fixFor(found.source, context)}`
    : `${TITLES[kind]} is not installed (tried ${describeTried(tried)}); ${installFix(context)}`;
  return { file: null, source: found?.source ?? null, reason, tried };
}

export function describeTried(tried: Candidate[]): string {
  return tried.map((c) => `${c.source}${c.file ? ` ${c.file}` : ''}: ${c.detail ?? 'found'}`).join('; ');
}

/** The command that builds both binaries from source: the script ships in the package. */
export function sourceBuildCommand(root: string | null): string {
  const script = root ? join(root, 'scripts', 'build-native.mjs') : 'node_modules/branching/scripts/build-native.mjs';
  return `\`node ${shellWord(script)}\` (needs python3, make and a C++ compiler)`;
}

/** The fix when nothing is there at all. */
function installFix(context: BinaryContext): string {
  const version = (context.root && readVersion(context.root)) ?? 'latest';
  if (!PREBUILT_PLATFORMS.includes(context.platform)) {
    return `there is no prebuilt package for ${context.platform} (only ${PREBUILT_PLATFORMS.join(', ')}): build it from source with ${sourceBuildCommand(context.root)}`;
  }
  return (
    `install the prebuilt package with \`npm install @branching/${context.platform}@${version}\` ` +
    '(an optional dependency of branching: --omit=optional, --no-optional or a lockfile written on another ' +
    `platform leave it out), or build it from source with ${sourceBuildCommand(context.root)}`
  );
}

/** The fix for a binary that is there but unusable, by where it came from. */
export function fixFor(source: string, context: BinaryContext = defaultContext()): string {
  const version = (context.root && readVersion(context.root)) ?? 'latest';
  if (source === 'BRANCHING_NATIVE_DIR') {
    return `point BRANCHING_NATIVE_DIR at the binaries of branching ${version}, or unset it`;
  }
  if (source === 'the local build') return `rebuild it with ${sourceBuildCommand(context.root)}`;
  return `reinstall it with \`npm install ${source}@${version}\``;
}
