// Noisy bisection vs `git bisect` with fixed repetition.
// Simulated: an in-memory oracle where runs at or after the culprit fail with probability θ, seeded per
// trial; both methods see the same histories and the same culprits in the same run. Then a reliability
// table (stated confidence vs observed accuracy), parallel runs, and real runs (bench/bisect-real.mjs).
import { NoisyBisector, seededRandom } from '../dist/index.js';
import { runReal } from './bisect-real.mjs';
import { median, printTable } from './lib.mjs';

const TRIALS = Number(process.env.BENCH_BISECT_TRIALS ?? 100);
const COMMITS = Number(process.env.BENCH_BISECT_COMMITS ?? 64);
const THETAS = (process.env.BENCH_BISECT_THETAS ?? '0.1,0.2,0.3,0.5').split(',').map(Number);
const CONFIDENCE = 0.95;
const REPEAT = 10;
/** Runs in the `branching flaky` report that `--prior` reads in the informed variant. */
const PRIOR_RUNS = 100;

/** A history of `n` commits after the good one; commit `culprit` introduces a flake of rate θ. */
function oracle(seed, n, theta) {
  const rnd = seededRandom(seed);
  const culprit = 1 + Math.floor(rnd() * n);
  return { culprit, run: (revision) => revision >= culprit && rnd() < theta };
}

/**
 * `branching bisect`'s policy on the oracle: `parallel` runs per round, each chosen with the others of
 * its round in flight. `rounds` is the wall-time proxy.
 */
function noisy({ culprit, run }, n, parallel = 1, thetaEvidence = undefined) {
  const model = new NoisyBisector(n, { thetaEvidence, confidence: CONFIDENCE });
  const revisions = new Set();
  let runs = 0;
  let rounds = 0;
  while (model.best().probability < CONFIDENCE && runs < 3000) {
    const round = [];
    for (let i = 0; i < parallel; i++) {
      const r = model.next(new Set(), round);
      if (r === null) break;
      round.push(r);
    }
    if (round.length === 0) break;
    rounds++;
    for (const r of round) {
      revisions.add(r);
      runs++;
      model.record(r, run(r));
    }
  }
  const best = model.best();
  return { correct: best.index === culprit, stated: best.probability, runs, rounds, revisions: revisions.size };
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
  return { correct: bad === culprit, runs, rounds: runs, revisions };
}

/** The flake's earlier runs as a `branching flaky` report of PRIOR_RUNS runs would count them. */
function flakyReport(theta) {
  const failed = Math.round(theta * PRIOR_RUNS);
  return { failed, passed: PRIOR_RUNS - failed };
}

/**
 * No method can average fewer runs (Fano's inequality): naming one of n culprits with error ≤ 1 − confidence
 * needs log2 n − h(e) − e·log2(n − 1) bits, and a run carries at most the capacity of the Z channel it is
 * (a run at a revision with the flake passes with probability 1 − θ, one without it always passes).
 */
function informationFloor(n, theta, confidence) {
  const h = (p) => (p <= 0 || p >= 1 ? 0 : -p * Math.log2(p) - (1 - p) * Math.log2(1 - p));
  const s = 1 - theta;
  const capacity = Math.log2(1 + (1 - s) * s ** (s / (1 - s)));
  const e = 1 - confidence;
  return (Math.log2(n) - h(e) - e * Math.log2(n - 1)) / capacity;
}

function summarize(theta, method, list, baselineRuns) {
  const runs = list.map((r) => r.runs);
  const mean = runs.reduce((a, b) => a + b, 0) / list.length;
  return {
    theta,
    method,
    trials: list.length,
    accuracy: list.filter((r) => r.correct).length / list.length,
    meanRuns: Number(mean.toFixed(1)),
    medianRuns: median(runs),
    p90Runs: [...runs].sort((a, b) => a - b)[Math.floor(list.length * 0.9)],
    meanRounds: Number((list.reduce((s, r) => s + r.rounds, 0) / list.length).toFixed(1)),
    revisions: Number((list.reduce((s, r) => s + r.revisions, 0) / list.length).toFixed(1)),
    runsVsGit: Number((mean / baselineRuns).toFixed(2)),
  };
}

/** Stated confidence, bucketed, against how often those answers were right. */
function reliability(results) {
  const buckets = [
    [0.95, 0.97],
    [0.97, 0.99],
    [0.99, 1.0000001],
  ];
  return buckets.map(([lo, hi]) => {
    const inBucket = results.filter((r) => r.stated >= lo && r.stated < hi);
    const stated = inBucket.reduce((s, r) => s + r.stated, 0) / (inBucket.length || 1);
    const observed = inBucket.filter((r) => r.correct).length / (inBucket.length || 1);
    return {
      stated: `${(lo * 100).toFixed(0)}–${Math.min(100, hi * 100).toFixed(0)}%`,
      answers: inBucket.length,
      meanStated: `${(stated * 100).toFixed(1)}%`,
      observed: `${(observed * 100).toFixed(1)}%`,
    };
  });
}

function simulate() {
  const rows = [];
  const allNoisy = [];
  for (const theta of THETAS) {
    const results = { noisy: [], parallel: [], informed: [], git: [], gitFailFast: [] };
    for (let t = 0; t < TRIALS; t++) {
      const seed = 0x5eed + t * 7919 + Math.round(theta * 1000);
      // Same seed, so the same culprit and the same stream of flakes for every method.
      results.noisy.push(noisy(oracle(seed, COMMITS, theta), COMMITS));
      results.parallel.push(noisy(oracle(seed, COMMITS, theta), COMMITS, 2));
      results.informed.push(noisy(oracle(seed, COMMITS, theta), COMMITS, 1, flakyReport(theta)));
      results.git.push(gitBisect(oracle(seed, COMMITS, theta), COMMITS, false));
      results.gitFailFast.push(gitBisect(oracle(seed, COMMITS, theta), COMMITS, true));
    }
    allNoisy.push(...results.noisy, ...results.parallel, ...results.informed);
    const gitRuns = results.git.reduce((s, r) => s + r.runs, 0) / TRIALS;
    const floor = informationFloor(COMMITS, theta, CONFIDENCE);
    rows.push(
      { theta, method: 'floor: any method at this confidence', meanRuns: Number(floor.toFixed(1)), runsVsGit: Number((floor / gitRuns).toFixed(2)) },
      summarize(theta, `branching bisect (${CONFIDENCE * 100}%)`, results.noisy, gitRuns),
      summarize(theta, 'branching bisect --parallel 2', results.parallel, gitRuns),
      summarize(theta, `branching bisect --prior (${PRIOR_RUNS}-run flaky report)`, results.informed, gitRuns),
      summarize(theta, `git bisect, ${REPEAT} runs/step`, results.git, gitRuns),
      summarize(theta, `git bisect, ≤${REPEAT} runs/step, stop at 1st fail`, results.gitFailFast, gitRuns),
    );
  }
  printTable(
    `bisect (simulated): a flaky culprit among ${COMMITS} commits, ${TRIALS} trials per flake rate θ; rounds = sequential steps (wall time)`,
    ['theta', 'method', 'trials', 'accuracy', 'meanRuns', 'medianRuns', 'p90Runs', 'meanRounds', 'revisions', 'runsVsGit'],
    rows.map((r) => ({
      ...r,
      accuracy: r.accuracy === undefined ? '-' : `${(r.accuracy * 100).toFixed(1)}%`,
      runsVsGit: r.runsVsGit === undefined ? '-' : `${r.runsVsGit}×`,
    })),
  );
  const table = reliability(allNoisy);
  printTable('bisect reliability (simulated, every θ): stated confidence vs observed accuracy', Object.keys(table[0]), table);
  return { rows, reliability: table };
}

export async function run() {
  const simulated = simulate();
  const real = await runReal();
  return { simulated, real };
}
