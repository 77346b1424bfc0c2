// Real bisection runs: a generated repository of REAL_COMMITS commits with a Vitest suite of REAL_FILES
// files, where one known commit turns an existing test flaky (Math.random, so every run is a fresh draw).
// Every method runs on the same histories in the same run:
// - `git bisect run` with a script running the whole suite 10 times per step (bad if any run failed),
//   and the same script stopping at the first failure;
// - `branching bisect` on the whole suite, and with `--test` (each run executes only that test's file).
// Short by default (one history); BENCH_BISECT_REAL_TRIALS=5 (or BENCH_REPS=5) for more, BENCH_BISECT_REAL=0 to skip,
// BENCH_BISECT_REAL_METHODS=suite,test for some methods only.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../dist/index.js';
import { benchDir, median, now, printTable } from './lib.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const TRIALS = Number(process.env.BENCH_BISECT_REAL_TRIALS ?? process.env.BENCH_REPS ?? 1);
const COMMITS = Number(process.env.BENCH_BISECT_REAL_COMMITS ?? 32);
const FILES = Number(process.env.BENCH_BISECT_REAL_FILES ?? 20);
const THETA = Number(process.env.BENCH_BISECT_REAL_THETA ?? 0.3);
const REPEAT = 10;
/** Which methods to run (all by default): fixed, failfast, suite, test. */
const METHODS = (process.env.BENCH_BISECT_REAL_METHODS ?? 'fixed,failfast,suite,test').split(',');
const FLAKY = Math.min(7, FILES - 1);
const FLAKY_FILE = `tests/t${String(FLAKY).padStart(2, '0')}.test.mjs`;
const TARGET = `${FLAKY_FILE} > grp sometimes`;
const VITEST = ['node', 'node_modules/vitest/vitest.mjs', 'run', '--configLoader=runner'];

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
};
const git = (cwd, ...args) => execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();

function testFile(i, flaky) {
  const body = Array.from(
    { length: 3 },
    (_, k) => `  test('case ${k}', () => { let s = 0; for (let j = 0; j < 2e5; j++) s += j % ${k + 3}; expect(s).toBeGreaterThan(0); });`,
  );
  const extra =
    i === FLAKY
      ? `  test('sometimes', () => { expect(${flaky ? `Math.random() < ${THETA}` : 'false'}).toBe(false); });\n`
      : '';
  return `import { describe, expect, test } from 'vitest';\ndescribe('grp', () => {\n${body.join('\n')}\n${extra}});\n`;
}

/** The history: commit `culprit` makes t07's `grp sometimes` flaky; the others touch unrelated files. */
function makeHistory(dir, culprit) {
  mkdirSync(join(dir, 'tests'), { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'gc.auto', '0');
  writeFileSync(join(dir, '.gitignore'), 'node_modules\n.vite\n');
  // The results cache lives in the project: under the sandbox only the project (branch) is writable.
  writeFileSync(join(dir, 'vitest.config.mjs'), `export default { cacheDir: '.vite' };\n`);
  for (let i = 0; i < FILES; i++) writeFileSync(join(dir, 'tests', `t${String(i).padStart(2, '0')}.test.mjs`), testFile(i, false));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const commit = (message) => {
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '--no-verify', '-m', message);
    return git(dir, 'rev-parse', 'HEAD');
  };
  const shas = [commit('good')];
  for (let i = 1; i <= COMMITS; i++) {
    if (i === culprit) writeFileSync(join(dir, FLAKY_FILE), testFile(FLAKY, true));
    else writeFileSync(join(dir, 'src.txt'), `change ${i}\n`);
    shas.push(commit(i === culprit ? `commit ${i}: the flake` : `commit ${i}`));
  }
  return shas;
}

function gitBisect(repo, shas, failFast) {
  const counter = join(repo, '..', `runs-${failFast ? 'ff' : 'fixed'}`);
  writeFileSync(counter, '');
  const step = join(repo, '..', 'step.sh');
  writeFileSync(
    step,
    `#!/bin/sh\nfails=0\nfor i in $(seq ${REPEAT}); do\n  echo run >> '${counter}'\n` +
      `  if ! ${VITEST.join(' ')} >/dev/null 2>&1; then fails=1; ${failFast ? 'break; ' : ''}fi\ndone\nexit $fails\n`,
  );
  const started = now();
  git(repo, 'bisect', 'start', shas.at(-1), shas[0]);
  spawnSync('git', ['bisect', 'run', 'sh', step], { cwd: repo, env: GIT_ENV, stdio: 'ignore' });
  const found = git(repo, 'rev-parse', 'refs/bisect/bad');
  spawnSync('git', ['bisect', 'reset'], { cwd: repo, env: GIT_ENV, stdio: 'ignore' });
  const runs = readFileSync(counter, 'utf8').split('\n').filter(Boolean).length;
  return { found, runs, wallMs: now() - started, stated: null };
}

function branchingBisect(repo, shas, target) {
  const started = now();
  const args = [join(root, 'dist', 'cli.js'), 'bisect', '-C', repo, '--good', shas[0], '--bad', 'main', '--json', '--quiet'];
  if (target) args.push('--test', target);
  const out = spawnSync(process.execPath, [...args, '--', ...VITEST], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const report = JSON.parse(out.stdout);
  return {
    found: report.culprit?.sha ?? null,
    runs: report.runs,
    skipped: report.skippedRuns,
    wallMs: now() - started,
    stated: report.culprit?.probability ?? null,
  };
}

function summarize(method, list) {
  const runs = list.map((r) => r.runs);
  const wall = list.map((r) => r.wallMs / 1000);
  const stated = list.filter((r) => r.stated !== null).map((r) => r.stated);
  return {
    method,
    trials: list.length,
    accuracy: `${((list.filter((r) => r.correct).length / list.length) * 100).toFixed(0)}%`,
    meanRuns: Number((runs.reduce((a, b) => a + b, 0) / list.length).toFixed(1)),
    p90Runs: [...runs].sort((a, b) => a - b)[Math.floor(list.length * 0.9)],
    medianWallS: Number(median(wall).toFixed(1)),
    meanStated: stated.length ? `${((stated.reduce((a, b) => a + b, 0) / stated.length) * 100).toFixed(1)}%` : '-',
  };
}

export async function runReal() {
  if (process.env.BENCH_BISECT_REAL === '0') return null;
  const results = { fixed: [], failFast: [], suite: [], test: [] };
  for (let t = 0; t < TRIALS; t++) {
    const dir = benchDir('branching-bench-bisect-');
    try {
      const culprit = 1 + Math.floor(seededRandom(0xb15ec7 + t)() * COMMITS);
      const repo = join(dir, 'repo');
      const shas = makeHistory(repo, culprit);
      const judge = (r) => ({ ...r, correct: r.found === shas[culprit] });
      if (METHODS.includes('fixed')) results.fixed.push(judge(gitBisect(repo, shas, false)));
      if (METHODS.includes('failfast')) results.failFast.push(judge(gitBisect(repo, shas, true)));
      if (METHODS.includes('suite')) results.suite.push(judge(branchingBisect(repo, shas, null)));
      if (METHODS.includes('test')) results.test.push(judge(branchingBisect(repo, shas, TARGET)));
      appendFileSync(join(dir, 'done'), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const rows = [
    [`git bisect run, ${REPEAT} runs/step`, results.fixed],
    [`git bisect run, ≤${REPEAT} runs/step, stop at 1st fail`, results.failFast],
    ['branching bisect (whole suite)', results.suite],
    [`branching bisect --test '${TARGET}'`, results.test],
  ]
    .filter(([, list]) => list.length > 0)
    .map(([method, list]) => summarize(method, list));
  if (rows.length === 0) return null;
  printTable(
    `bisect (real): vitest suite of ${FILES} files, ${COMMITS} commits, θ = ${THETA}, ${TRIALS} histories (BENCH_BISECT_REAL_TRIALS)`,
    Object.keys(rows[0]),
    rows,
  );
  return { rows, raw: results };
}
