#!/usr/bin/env node
// Packs what gets published: `branching`, the two plugins and the platform packages, as tarballs.
//
//   node scripts/pack.mjs [--out DIR] [--prebuilt DIR] [--dry-run] [--json]
//
// The repository's package.json is also the development manifest (scripts, workspaces,
// devDependencies, the native build at `npm install`), and is private so that it is never
// published as it is. `branching` is packed from a staged copy instead: the files its `files`
// field selects, and a manifest without those fields, plus `optionalDependencies` pinning every
// platform package (npm/<id>) to this exact version. The plugins' manifests are already clean and
// are packed in place. Platform packages come from --prebuilt (default npm/; see
// scripts/build-prebuilt.mjs); one whose binaries are not built is skipped, and named.
// Run `npm run build` first: this packs dist/ as it is.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Fields of the development manifest that mean nothing, or harm, in a consumer's node_modules. */
const DEV_ONLY = ['private', 'scripts', 'devDependencies', 'workspaces', 'overrides'];
const PLUGINS = ['plugins/vitest', 'plugins/jest'];
const BINARIES = ['branching.node', 'branching-launcher'];

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));

/** Every platform package of the repository: npm/<id>/package.json. */
export function platformIds() {
  return readdirSync(join(root, 'npm'))
    .filter((d) => existsSync(join(root, 'npm', d, 'package.json')))
    .sort();
}

/** The manifest `branching` is published with. */
export function publishedManifest(pkg, ids) {
  const out = {};
  for (const [key, value] of Object.entries(pkg)) {
    if (DEV_ONLY.includes(key)) continue;
    out[key] = value;
    if (key === 'dependencies')
      out.optionalDependencies = Object.fromEntries(ids.map((id) => [`@branching/${id}`, pkg.version]));
  }
  out.optionalDependencies ??= Object.fromEntries(ids.map((id) => [`@branching/${id}`, pkg.version]));
  return out;
}

function npmPack(dir, { out, dryRun }) {
  const args = ['pack', '--json', '--ignore-scripts', ...(dryRun ? ['--dry-run'] : ['--pack-destination', out])];
  const r = spawnSync('npm', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm pack in ${dir} failed:\n${r.stderr}`);
  const [info] = JSON.parse(r.stdout);
  return {
    name: info.name,
    version: info.version,
    tarball: dryRun ? null : join(out, info.filename),
    size: info.size,
    unpackedSize: info.unpackedSize,
    files: info.files.map((f) => f.path).sort(),
  };
}

/** A copy of the root package as it is published, in a scratch directory. */
function stageCore(scratch) {
  const pkg = readJson(join(root, 'package.json'));
  // npm silently leaves out a `files` entry that matches nothing: a missing bundle must fail here.
  for (const entry of pkg.files) {
    if (!entry.includes('*') && !existsSync(join(root, entry)))
      throw new Error(`${entry} is missing: run \`npm run build\``);
  }
  const listed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`npm pack --dry-run failed:\n${listed.stderr}`);
  const dir = join(scratch, 'branching');
  for (const { path } of JSON.parse(listed.stdout)[0].files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    copyFileSync(join(root, path), join(dir, path));
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(publishedManifest(pkg, platformIds()), null, 2)}\n`);
  return dir;
}

function parseArgs(argv) {
  const options = { out: resolve(root, 'build', 'packages'), prebuilt: join(root, 'npm'), dryRun: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') options.out = resolve(argv[++i]);
    else if (argv[i] === '--prebuilt') options.prebuilt = resolve(argv[++i]);
    else if (argv[i] === '--dry-run') options.dryRun = true;
    else if (argv[i] === '--json') options.json = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return options;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!options.dryRun) mkdirSync(options.out, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'branching-pack-'));
  const packed = [];
  const skipped = [];
  try {
    packed.push(npmPack(stageCore(scratch), options));
    for (const plugin of PLUGINS) packed.push(npmPack(join(root, plugin), options));
    for (const id of platformIds()) {
      const dir = join(options.prebuilt, id);
      const missing = BINARIES.filter((b) => !existsSync(join(dir, b)));
      if (missing.length > 0) skipped.push({ name: `@branching/${id}`, reason: `${dir} has no ${missing.join(', ')}` });
      else packed.push(npmPack(dir, options));
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (options.json) {
    console.log(JSON.stringify({ packed, skipped }, null, 2));
    return;
  }
  for (const p of packed) {
    console.log(
      `${`${p.name}@${p.version}`.padEnd(40)} ${String(p.size).padStart(8)} B packed ${String(p.unpackedSize).padStart(9)} B unpacked  ${p.files.length} files`,
    );
  }
  for (const s of skipped) console.log(`${s.name}: not packed, ${s.reason} (run node scripts/build-prebuilt.mjs)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`pack: ${err.message}`);
    process.exit(1);
  }
}
