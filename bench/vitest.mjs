// The Vitest plugin: a generated suite of FILES test files x TESTS tests that write files, run by the
// real Vitest with the vanilla forks pool and with plugins: [branching()] (interleaved, same run),
// plus the two costs the plugin adds: a sandboxed worker spawn (per file) and a per-test branch.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir, commitAll, fmtMs, median, now, printTable } from './lib.mjs';

const root = join(import.meta.dirname, '..');
const FILES = 50;
const TESTS = 10;
const ROUNDS = 3;

function makeSuite(dir) {
  mkdirSync(join(dir, 'test'), { recursive: true });
  copyFileSync(join(root, 'test', 'fixtures', 'vitest-writes', 'vitest.config.mjs'), join(dir, 'vitest.config.mjs'));
  writeFileSync(join(dir, 'package.json'), '{ "name": "bench", "private": true, "type": "module" }\n');
  writeFileSync(join(dir, '.gitignore'), 'out/\n*.tmp\n');
  for (let f = 0; f < FILES; f++) {
    writeFileSync(
      join(dir, 'test', `f${f}.test.js`),
      `import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
for (let i = 0; i < ${TESTS}; i++) {
  test('writes ' + i, () => {
    mkdirSync('out/f${f}', { recursive: true });
    writeFileSync('out/f${f}/' + i + '.txt', 'x'.repeat(1000));
    writeFileSync(join(__dirname, 'f${f}-' + i + '.tmp'), 'y');
    expect(readFileSync('out/f${f}/' + i + '.txt', 'utf8')).toHaveLength(1000);
  });
}
`,
    );
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  commitAll(dir);
}

function runSuite(dir, mode, cache, branching = {}) {
  const start = now();
  const result = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--configLoader=runner', '--reporter=dot'],
    { cwd: dir, env: {
        ...process.env,
        FIXTURE_MODE: mode,
        FIXTURE_CACHE_DIR: cache,
        FIXTURE_BRANCHING: JSON.stringify(branching),
        NO_COLOR: '1',
      }, encoding: 'utf8' },
  );
  const ms = now() - start;
  if (result.status !== 0) throw new Error(`vitest (${mode}) failed:\n${result.stdout}\n${result.stderr}`);
  // Vanilla leaves its writes behind: start every run from the same tree.
  execFileSync('git', ['clean', '-fdxq', '-e', 'node_modules'], { cwd: dir });
  return ms;
}

/** Worker spawn through the launcher with the plugin's spec, against a plain `node -e 0`. */
async function spawnCost(core, dir) {
  const launcher = core.locateLauncher().path;
  const work = join(dir, '..', 'spawn');
  const plain = [];
  const sandboxed = [];
  for (let i = 0; i < 15; i++) {
    let start = now();
    spawnSync(process.execPath, ['-e', '0']);
    plain.push(now() - start);
    const w = join(work, String(i));
    for (const d of ['upper', 'work', 'real', 'tmp', 't']) mkdirSync(join(w, d), { recursive: true });
    const spec = new core.LaunchSpec()
      .userns()
      .mountns()
      .bind(dir, join(w, 'real'))
      .overlay({ target: dir, lowers: [dir], upper: join(w, 'upper'), work: join(w, 'work'), options: ['volatile'] })
      .tmpfs(join(w, 'tmp'), 0o700)
      .tmpfs(join(w, 't'), 0o700)
      .helper([dir, w])
      .chdir(dir);
    start = now();
    const r = spawnSync(launcher, ['-e', '0'], {
      env: { ...process.env, BRANCHING_LAUNCH_SPEC: spec.toString(), BRANCHING_LAUNCH_EXEC: process.execPath },
    });
    sandboxed.push(now() - start);
    if (r.status !== 0) throw new Error(`launcher failed: ${r.stderr}`);
  }
  rmSync(work, { recursive: true, force: true });
  return { plain: median(plain), sandboxed: median(sandboxed) };
}

/** Mount + chdir + unmount of one per-test layer through the helper, timed inside a sandbox. */
function layerCost(core, dir) {
  const launcher = core.locateLauncher().path;
  const w = join(dir, '..', 'layers');
  for (const d of ['upper', 'work', 't']) mkdirSync(join(w, d), { recursive: true });
  const spec = new core.LaunchSpec()
    .userns()
    .mountns()
    .overlay({ target: dir, lowers: [dir], upper: join(w, 'upper'), work: join(w, 'work'), options: ['volatile'] })
    .tmpfs(join(w, 't'), 0o700)
    .helper([dir, w])
    .chdir(dir);
  const script = `
    const core = require(${JSON.stringify(join(root, 'dist', 'index.cjs'))});
    const { mkdirSync, writeFileSync } = require('node:fs');
    const { join } = require('node:path');
    const helper = core.HelperClient.fromEnv();
    const dir = ${JSON.stringify(dir)}, w = ${JSON.stringify(w)};
    const times = [];
    for (let i = 0; i < 300; i++) {
      const start = process.hrtime.bigint();
      const upper = join(w, 't', String(i), 'upper'), work = join(w, 't', String(i), 'work');
      mkdirSync(upper, { recursive: true }); mkdirSync(work);
      helper.mountOverlay({ target: dir, lowers: [dir], upper, work });
      process.chdir(dir);
      helper.unmount(dir);
      process.chdir(dir); // drops the last reference: the layer is torn down here
      require('node:fs').rmSync(join(w, 't', String(i)), { recursive: true, force: true });
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    process.stdout.write(String(times[times.length >> 1]));
  `;
  const r = spawnSync(launcher, ['-e', script], {
    env: { ...process.env, BRANCHING_LAUNCH_SPEC: spec.toString(), BRANCHING_LAUNCH_EXEC: process.execPath },
    encoding: 'utf8',
  });
  rmSync(w, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`layer benchmark failed: ${r.stderr}`);
  return Number(r.stdout);
}

export async function run() {
  const core = await import(join(root, 'dist', 'index.js'));
  const probe = core.probeSandbox();
  if (!probe.available) {
    console.log(`\n(vitest plugin bench skipped: the namespace sandbox is unavailable: ${probe.reason})`);
    return [];
  }
  const base = benchDir('branching-bench-vitest-');
  const dir = join(base, 'project');
  const cache = join(base, 'cache');
  process.env.BRANCHING_STATE_DIR = join(base, 'state');
  mkdirSync(process.env.BRANCHING_STATE_DIR);
  try {
    makeSuite(dir);
    runSuite(dir, 'vanilla', cache); // warm Vite's cache and the page cache
    const vanilla = [];
    const sandboxed = [];
    const perFileOnly = [];
    for (let i = 0; i < ROUNDS; i++) {
      vanilla.push(runSuite(dir, 'vanilla', cache));
      sandboxed.push(runSuite(dir, 'plugin', cache));
      perFileOnly.push(runSuite(dir, 'plugin', cache, { perTest: false }));
    }
    const spawn = await spawnCost(core, dir);
    const layer = layerCost(core, dir);
    const v = median(vanilla);
    const s = median(sandboxed);
    const f = median(perFileOnly);
    const rows = [
      { measure: `suite wall time, vanilla forks (${FILES} files, ${FILES * TESTS} tests)`, value: fmtMs(v), ratio: '1.00×' },
      { measure: 'suite wall time, plugins: [branching()]', value: fmtMs(s), ratio: `${(s / v).toFixed(2)}×` },
      { measure: 'suite wall time, plugin with perTest: false', value: fmtMs(f), ratio: `${(f / v).toFixed(2)}×` },
      {
        measure: 'per-test branch, in the suite: (perTest - perTest: false) / tests',
        value: fmtMs((s - f) / (FILES * TESTS)),
        ratio: '',
      },
      { measure: 'worker spawn: node -e 0', value: fmtMs(spawn.plain), ratio: '1.00×' },
      {
        measure: 'worker spawn: through the launcher (userns, overlay, bind, tmpfs, helper)',
        value: fmtMs(spawn.sandboxed),
        ratio: `${(spawn.sandboxed / spawn.plain).toFixed(2)}×`,
      },
      { measure: 'per-test branch, alone: mkdir + mount + chdir + unmount + chdir + rm (median)', value: fmtMs(layer), ratio: '' },
    ];
    printTable(`Vitest plugin (median of ${ROUNDS} interleaved rounds; uid ${process.getuid?.()})`, ['measure', 'value', 'ratio'], rows);
    return { rows, raw: { vanilla, sandboxed, perFileOnly, spawn, layer } };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
