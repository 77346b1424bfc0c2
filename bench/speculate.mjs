// speculate / best-of against the loop bots run today (`git apply p && <test> && break; git checkout .`),
// in the same run, on a generated Vitest project of 301 tests (about 5 s a suite). Four candidates, the
// real fix last: a no-op, one that breaks another test, a partial fix, the real fix.
// Measures first-wins time to commit cold (no baseline cache) and warm (cached baseline), --best time
// to result cold, the ratios to the loop, and how long losers took to die once the winner was known.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, speculate } from '../dist/index.js';
import { benchDir, fmtMs, median, now, printTable } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPS = Number(process.env.BENCH_REPS ?? 1);
const PARALLEL = Number(process.env.BENCH_SPECULATE_PARALLEL ?? availableParallelism());
const MODULES = 30;
const TESTS_PER_MODULE = 10;
/** Busy time per test: 300 of them make the suite take about 5 s on 2 cores. */
const TEST_MS = Number(process.env.BENCH_SPECULATE_TEST_MS ?? 25);
const TARGETS = { firstCold: 0.6, firstWarm: 0.4, bestCold: 0.8 };
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };
const git = (cwd, ...args) => execFileSync('git', args, { cwd, env: gitEnv, encoding: 'utf8' });
const vitestBin = join(root, 'node_modules', 'vitest', 'vitest.mjs');

const MUL = 'export function mul(a, b) {\n  return a + b;\n}\n';
const moduleSource = (n) => `// module ${n}\nexport function f${n}(x) {\n  return x + ${n};\n}\n`;
function moduleTest(n) {
  const tests = Array.from(
    { length: TESTS_PER_MODULE },
    (_, k) => `test('f${n}(${k})', () => {\n  busy();\n  expect(f${n}(${k})).toBe(${k + n});\n});\n`,
  );
  return `import { expect, test } from 'vitest';\nimport { f${n} } from '../src/mod${n}.js';\n\nfunction busy() {\n  const end = performance.now() + ${TEST_MS};\n  while (performance.now() < end) {}\n}\n\n${tests.join('\n')}`;
}

/** The project, committed, with node_modules linked to the repository's packages (ignored by git). */
function writeProject(dir) {
  mkdirSync(join(dir, 'src'), { recursive: true });
  mkdirSync(join(dir, 'test'));
  writeFileSync(join(dir, 'package.json'), '{ "name": "bench-speculate", "private": true, "type": "module", "devDependencies": { "vitest": "*" } }\n');
  writeFileSync(
    join(dir, 'vitest.config.js'),
    "import { tmpdir } from 'node:os';\nimport { join } from 'node:path';\nexport default { cacheDir: join(tmpdir(), 'vite'), test: { include: ['test/**/*.test.js'] } };\n",
  );
  writeFileSync(join(dir, '.gitignore'), 'node_modules\n');
  writeFileSync(join(dir, 'src', 'math.js'), MUL);
  writeFileSync(
    join(dir, 'test', 'mul.test.js'),
    "import { expect, test } from 'vitest';\nimport { mul } from '../src/math.js';\n\ntest('multiplies', () => {\n  expect(mul(2, 3)).toBe(6);\n  expect(mul(-2, 3)).toBe(-6);\n});\n",
  );
  for (let n = 0; n < MODULES; n++) {
    writeFileSync(join(dir, 'src', `mod${n}.js`), moduleSource(n));
    writeFileSync(join(dir, 'test', `mod${n}.test.js`), moduleTest(n));
  }
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (!name.startsWith('.') || name === '.bin') symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
  }
  git(dir, 'init', '-q');
  git(dir, 'config', 'gc.auto', '0');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'fixture');
}

/** The candidates as `git diff` writes them, by name. */
function writePatches(dir, patchDir) {
  mkdirSync(patchDir, { recursive: true });
  const edits = {
    'no-op': ['src/mod3.js', moduleSource(3).replace('// module 3', '// module three')],
    'breaks-another': ['src/mod5.js', moduleSource(5).replace('x + 5', 'x + 6')],
    partial: ['src/math.js', MUL.replace('return a + b;', 'return a > 0 && b > 0 ? a * b : a + b;')],
    real: ['src/math.js', MUL.replace('return a + b;', 'return a * b;')],
    // Not one of the four: a candidate whose tests never end, alive when the winner is known.
    hang: ['src/mod7.js', moduleSource(7).replace('return x + 7;', 'while (true) {}')],
  };
  const files = {};
  for (const [name, [file, content]] of Object.entries(edits)) {
    const before = readFileSync(join(dir, file), 'utf8');
    writeFileSync(join(dir, file), content);
    const patch = join(patchDir, `${name}.diff`);
    writeFileSync(patch, git(dir, 'diff'));
    writeFileSync(join(dir, file), before);
    files[name] = patch;
  }
  return files;
}

function freshProject(work, name) {
  const dir = join(work, name);
  writeProject(dir);
  return dir;
}

/** The sequential loop: apply, test, keep the first that passes, otherwise reset. */
function sequentialLoop(dir, patches) {
  const start = now();
  let suiteMs = null;
  for (const patch of patches) {
    const applied = spawnSync('git', ['apply', patch], { cwd: dir });
    if (applied.status === 0) {
      const t = now();
      const test = spawnSync(process.execPath, [vitestBin, 'run'], { cwd: dir, stdio: 'ignore', env: { ...process.env, CI: '1' } });
      suiteMs ??= now() - t;
      if (test.status === 0) return { ms: now() - start, winner: patch, suiteMs };
    }
    spawnSync('git', ['checkout', '-q', '.'], { cwd: dir });
  }
  return { ms: now() - start, winner: null, suiteMs };
}

function checkFixed(dir) {
  if (!readFileSync(join(dir, 'src', 'math.js'), 'utf8').includes('return a * b;')) throw new Error(`${dir}: not fixed`);
}

/** One repetition: the loop, first-wins cold, --best cold (which leaves a cached baseline), first-wins warm. */
async function repetition() {
  const work = benchDir('branching-bench-spec-');
  try {
    const files = writePatches(freshProject(work, 'patches-src'), join(work, 'patches'));
    const patches = ['no-op', 'breaks-another', 'partial', 'real'].map((name) => files[name]);
    const hang = files.hang;
    const candidates = patches.map((patchFile) => ({ patchFile }));
    const test = { framework: 'vitest' };
    const seqDir = freshProject(work, 'seq');
    const loop = sequentialLoop(seqDir, patches);
    if (!loop.winner?.endsWith('real.diff')) throw new Error(`the loop picked ${loop.winner}`);
    const coldDir = freshProject(work, 'cold');
    const cold = await speculate({ workspace: coldDir, candidates, test, maxParallel: PARALLEL });
    if (cold.winner?.name !== 'real.diff' || cold.baseline.source !== 'run') throw new Error(`first-wins cold went wrong: winner ${cold.winner?.name}, baseline ${cold.baseline.source}, ${JSON.stringify(cold.candidates.map((c) => [c.name, c.status, c.reason]))}`);
    checkFixed(coldDir);
    const warmDir = freshProject(work, 'warm');
    const best = await bestOf({ workspace: warmDir, candidates, test, maxParallel: PARALLEL, dryRun: true });
    if (best.winner?.name !== 'real.diff' || best.baseline.source !== 'run') throw new Error('--best cold went wrong');
    // A dry run on the cached baseline: the hanging candidate is killed when the real fix wins.
    const kill = await speculate({
      workspace: warmDir,
      candidates: [{ patchFile: hang }, candidates[3]],
      test,
      maxParallel: PARALLEL,
      dryRun: true,
    });
    if (kill.winner?.name !== 'real.diff' || kill.candidates[0].state !== 'killed') throw new Error('the kill run went wrong');
    const warm = await speculate({ workspace: warmDir, candidates, test, maxParallel: PARALLEL });
    if (warm.winner?.name !== 'real.diff' || warm.baseline.source !== 'cache') throw new Error('first-wins warm went wrong');
    checkFixed(warmDir);
    const stages = Object.fromEntries(cold.candidates.map((c) => [c.name, `${c.state}@${c.stage}`]));
    return {
      loopMs: loop.ms,
      suiteMs: loop.suiteMs,
      firstColdMs: cold.timings.commitMs,
      firstWarmMs: warm.timings.commitMs,
      bestColdMs: best.timings.totalMs,
      losersGoneMs: [cold, kill, warm].map((o) => o.timings.losersGoneMs).filter((x) => x !== null),
      stages,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function run() {
  const load = loadavg()[0];
  const reps = [];
  for (let r = 0; r < REPS; r++) reps.push(await repetition());
  const m = (key) => median(reps.map((x) => x[key]));
  const loopMs = m('loopMs');
  const ratio = (ms) => ms / loopMs;
  const gone = reps.flatMap((x) => x.losersGoneMs);
  const result = {
    tests: MODULES * TESTS_PER_MODULE + 1,
    suiteMs: m('suiteMs'),
    loopMs,
    firstColdMs: m('firstColdMs'),
    firstWarmMs: m('firstWarmMs'),
    bestColdMs: m('bestColdMs'),
    ratios: { firstCold: ratio(m('firstColdMs')), firstWarm: ratio(m('firstWarmMs')), bestCold: ratio(m('bestColdMs')) },
    targets: TARGETS,
    losersGoneMs: gone.length ? Math.max(...gone) : null,
    stagesCold: reps[0].stages,
    parallel: PARALLEL,
    reps: REPS,
    loadAtStart: load,
  };
  const row = (label, ms, key) => ({
    measure: label,
    time: fmtMs(ms),
    'vs loop': key ? `${result.ratios[key].toFixed(2)}x` : '1.00x',
    target: key ? `<= ${TARGETS[key]}x` : '',
  });
  printTable(
    `speculate: ${result.tests} tests (suite ${fmtMs(result.suiteMs)}), 4 candidates (real fix last), maxParallel ${PARALLEL}, median of ${REPS}, load ${load.toFixed(2)}`,
    ['measure', 'time', 'vs loop', 'target'],
    [
      row('sequential loop: time to commit', loopMs),
      row('first-wins cold: time to commit', result.firstColdMs, 'firstCold'),
      row('first-wins warm: time to commit', result.firstWarmMs, 'firstWarm'),
      row('--best cold: time to result', result.bestColdMs, 'bestCold'),
      { measure: 'losers dead after the winner was known (max)', time: fmtMs(result.losersGoneMs), 'vs loop': '', target: '<= 100 ms' },
    ],
  );
  console.log(`cold candidates (state@stage): ${JSON.stringify(result.stagesCold)}`);
  return result;
}
