// Noisy bisection vs `git bisect` with fixed repetition, on simulated histories (no processes):
// an in-memory oracle where runs at or after the culprit fail with probability θ, seeded per trial.
// Both methods see the same histories and the same culprits in the same run.
import { NoisyBisector, seededRandom } from '../dist/index.js';
import { median, printTable } from './lib.mjs';

const TRIALS = Number(process.env.BENCH_BISECT_TRIALS ?? 100);
const COMMITS = Number(process.env.BENCH_BISECT_COMMITS ?? 64);
const THETAS = (process.env.BENCH_BISECT_THETAS ?? '0.1,0.3,0.5').split(',').map(Number);
const REPEAT = 10;

/** A history of `n` commits after the good one; commit `culprit` introduces a flake of rate θ. */
function oracle(seed, n, theta) {
  const rnd = seededRandom(seed);
  const culprit = 1 + Math.floor(rnd() * n);
  return { culprit, run: (revision) => revision >= culprit && rnd() < theta };
}

function noisy({ culprit, run }, n) {
  const model = new NoisyBisector(n);
  const revisions = new Set([n]);
  let runs = 0;
  while (model.totalFails === 0 && runs < 60) {
    runs++;
    model.record(n, run(n));
  }
  while (model.best().probability < 0.95 && runs < 2000) {
    const r = model.next();
    if (r === null) break;
    revisions.add(r);
    runs++;
    model.record(r, run(r));
  }
  return { correct: model.best().index === culprit, runs, revisions: revisions.size };
}

/**
 * `git bisect run` with a script that runs the test 10 times and calls the revision bad if any run failed.
 * `failFast`: the script stops at the first failure (same verdicts, fewer runs).
 */
function gitBisect({ culprit, run }, n, failFast) {
  let good = 0;
  let bad = n;
  let runs = 0;
  let revisions = 0;
  while (bad - good > 1) {
    const mid = (good + bad) >> 1;
    revisions++;
    let failed = false;
    for (let i = 0; i < REPEAT && !(failFast && failed); i++) {
      runs++;
      failed = run(mid) || failed;
    }
    if (failed) bad = mid;
    else good = mid;
  }
  return { correct: bad === culprit, runs, revisions };
}

export async function run() {
  const rows = [];
  for (const theta of THETAS) {
    const results = { noisy: [], git: [], gitFailFast: [] };
    for (let t = 0; t < TRIALS; t++) {
      const seed = 0x5eed + t * 7919 + Math.round(theta * 1000);
      // Same seed, so the same culprit and the same stream of flakes for both methods.
      results.noisy.push(noisy(oracle(seed, COMMITS, theta), COMMITS));
      results.git.push(gitBisect(oracle(seed, COMMITS, theta), COMMITS, false));
      results.gitFailFast.push(gitBisect(oracle(seed, COMMITS, theta), COMMITS, true));
    }
    const gitRuns = results.git.reduce((s, r) => s + r.runs, 0) / TRIALS;
    for (const [method, list] of [
      ['branching bisect (noisy, 95%)', results.noisy],
      [`git bisect, ${REPEAT} runs/step`, results.git],
      [`git bisect, ≤${REPEAT} runs/step, stop at 1st fail`, results.gitFailFast],
    ]) {
      const runs = list.map((r) => r.runs);
      const mean = runs.reduce((a, b) => a + b, 0) / TRIALS;
      rows.push({
        theta,
        method,
        trials: TRIALS,
        accuracy: list.filter((r) => r.correct).length / TRIALS,
        meanRuns: Number(mean.toFixed(1)),
        medianRuns: median(runs),
        p90Runs: [...runs].sort((a, b) => a - b)[Math.floor(TRIALS * 0.9)],
        revisions: Number((list.reduce((s, r) => s + r.revisions, 0) / TRIALS).toFixed(1)),
        runsVsGit: Number((mean / gitRuns).toFixed(2)),
      });
    }
  }
  printTable(
    `bisect: locating a flaky culprit among ${COMMITS} commits, ${TRIALS} simulated trials per flake rate θ`,
    ['theta', 'method', 'trials', 'accuracy', 'meanRuns', 'medianRuns', 'p90Runs', 'revisions', 'runsVsGit'],
    rows.map((r) => ({ ...r, accuracy: `${(r.accuracy * 100).toFixed(0)}%`, runsVsGit: `${r.runsVsGit}×` })),
  );
  return rows;
}
