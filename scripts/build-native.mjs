#!/usr/bin/env node
// `npm install` builds the native addon and the launcher with node-gyp. A
// machine without a compiler still installs: the library then runs on the
// portable `clone` backend and says why (see src/native.ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');

if (process.env.BRANCHING_SKIP_NATIVE === '1') {
  console.warn('branching: BRANCHING_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}
if (!existsSync(join(nativeDir, 'binding.gyp'))) process.exit(0);

// npm puts its bundled node-gyp on PATH for lifecycle scripts. When node's own
// headers are installed next to it (distribution packages: /usr/include/node),
// use them instead of downloading them (offline machines, CI sandboxes).
const args = ['rebuild', '--directory', nativeDir];
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
  args.push(`--nodedir=${prefix}`);
}
const result = spawnSync('node-gyp', args, { stdio: 'inherit', shell: false });
if (result.status !== 0) {
  const why = result.error ? result.error.message : `node-gyp exited with ${result.status}`;
  console.warn(`branching: could not build the native addon (${why}).`);
  console.warn('branching: the library will use the portable clone backend; overlay and the sandbox need the addon.');
  if (process.env.BRANCHING_MUST_WORK === '1') process.exit(1);
}
