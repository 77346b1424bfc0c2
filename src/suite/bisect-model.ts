import { ArgumentError } from '../base/errors.ts';
import { entropy2 } from './stats.ts';

/**
 * Noisy (probabilistic) bisection over a linear history.
 *
 * Revisions are numbered 0 (known good) to n (known bad); the culprit K is
 * the first bad revision, 1..n, a priori uniform. A run at revision r fails
 * with probability θ if r ≥ K (the flake is present) and ε otherwise
 * (default 0: good revisions never fail, so one failure at r proves K ≤ r).
 * θ, the flake rate, is unknown: the posterior over (K, θ) is exact on a θ
 * grid, never a point estimate, so a flake rate that the data leave open
 * (a few failures at the bad revision) keeps every pass weak evidence. The
 * θ prior is log-uniform on [0.01, 1): a uniform one made the stated
 * probability overconfident for rare flakes. Earlier measurements of the
 * flake (a `branching flaky` report) sharpen it; they are evidence about θ
 * only, never about K.
 *
 * The next revision to test is the one whose outcome carries the most
 * information (mutual information, in bits) about (K, θ). With runs in
 * flight it is the one the sequential search would choose once each of
 * them had come out as it most probably will (usually a pass), so parallel
 * runs follow the sequential search's path, whose stated probability is
 * calibrated at every θ. Scoring each run instead by what it adds to the
 * joint outcome of the runs in flight cost as many runs but was not
 * calibrated at θ = 0.1: with two runs per round it named the right culprit
 * 93.75% of the time while stating 96.2% (400 simulated histories of 64
 * commits, against 97% sequentially); 78% of its stops came in a round
 * holding a failure, against 60% now. Looking two runs ahead (over (K, θ),
 * or over K alone) changed a third of the choices and no mean run count in
 * simulation, at 7–12× the cost, so it is not done.
 */
export interface BisectModelOptions {
  /** Probability that a run fails at a revision before the culprit. Default 0. */
  epsilon?: number;
  /** Points in the θ grid. Default 32 (64 changed no simulated outcome, at twice the cost). */
  thetaPoints?: number;
  /** Earlier runs of the flaky test (any revision containing the flake): they weigh the θ prior. */
  thetaEvidence?: { failed: number; passed: number };
  /**
   * The probability at which the caller stops (default 0.95). `next` uses it to tell when the stop
   * waits on the low-side guard alone (see `confidence`).
   */
  confidence?: number;
}

export interface Culprit {
  /** Revision index, 1..n. */
  index: number;
  probability: number;
}

/** The least share of the history that `confidence` assumes the earlier culprits span. */
const LOW_SIDE_SHARE = 0.5;

interface Prefixes {
  failUpTo: number[];
  entropyUpTo: number[];
  massUpTo: number[];
}

interface Posterior {
  marginal: number[];
  meanTheta: number[];
  /** joint[k][j] = P(K = k, θ = thetas[j] | data). */
  joint: number[][];
}

export class NoisyBisector {
  readonly passes: number[];
  readonly fails: number[];
  private readonly thetas: number[];
  private readonly logPrior: number[];
  private readonly thetaEntropy: number[];
  private readonly logTheta: number[];
  private readonly log1mTheta: number[];
  private readonly epsilon: number;
  private readonly stopAt: number;
  private cache: Posterior | null = null;

  /** `n`: the number of commits after the good revision (the bad one is revision n). */
  constructor(
    readonly n: number,
    private readonly options: BisectModelOptions = {},
  ) {
    if (!Number.isInteger(n) || n < 1) throw new ArgumentError(`n must be an integer ≥ 1; got ${n}`, { argument: 'n' });
    this.epsilon = options.epsilon ?? 0;
    if (!(this.epsilon >= 0 && this.epsilon < 1)) {
      throw new ArgumentError(`epsilon must be in [0, 1); got ${this.epsilon}`, { argument: 'epsilon' });
    }
    this.stopAt = options.confidence ?? 0.95;
    if (!(this.stopAt > 0 && this.stopAt < 1)) {
      throw new ArgumentError(`confidence must be in (0, 1); got ${this.stopAt}`, { argument: 'confidence' });
    }
    const points = options.thetaPoints ?? 32;
    // Log-spaced points with equal weight: a log-uniform prior on [0.01, 1].
    const lo = Math.log(0.01);
    this.thetas = Array.from({ length: points }, (_, j) => Math.exp(lo + ((j + 0.5) / points) * -lo));
    this.logPrior = this.thetas.map((t) => thetaEvidenceLog(t, options.thetaEvidence));
    this.thetaEntropy = this.thetas.map(entropy2);
    this.logTheta = this.thetas.map(Math.log);
    this.log1mTheta = this.thetas.map((t) => Math.log1p(-t));
    this.passes = new Array(n + 1).fill(0);
    this.fails = new Array(n + 1).fill(0);
  }

  record(revision: number, failed: boolean): void {
    if (!Number.isInteger(revision) || revision < 0 || revision > this.n) {
      throw new ArgumentError(`revision must be an integer in 0..${this.n}; got ${revision}`, { argument: 'revision' });
    }
    if (failed) this.fails[revision] = (this.fails[revision] ?? 0) + 1;
    else this.passes[revision] = (this.passes[revision] ?? 0) + 1;
    this.cache = null;
  }

  get totalFails(): number {
    return this.fails.reduce((a, b) => a + b, 0);
  }

  get totalRuns(): number {
    return this.totalFails + this.passes.reduce((a, b) => a + b, 0);
  }

  /** P(K = k | observations) for k = 0..n (index 0 is always 0). */
  posterior(): number[] {
    return this.compute().marginal;
  }

  /** Posterior mean of θ given K = k. */
  meanTheta(): number[] {
    return this.compute().meanTheta;
  }

  /** The most probable culprit, with its guarded probability (see `confidence`). */
  best(): Culprit {
    const index = this.mostProbable();
    return { index, probability: this.confidence(index) };
  }

  private mostProbable(): number {
    const p = this.posterior();
    let index = 1;
    for (let k = 2; k <= this.n; k++) if ((p[k] ?? 0) > (p[index] ?? 0)) index = k;
    return index;
  }

  /**
   * P(K = k), with the earlier culprits weighed as if there were at least
   * LOW_SIDE_SHARE · n of them. The posterior is calibrated on average over
   * culprit positions, not at each: near the good end only a few earlier
   * culprits compete, so a handful of passes at k − 1 reached "95%", and
   * culprits 1–3 were named right 89–90% of the time in simulation. With
   * the guard every position is right at least as often as stated; only
   * culprits near the good end pay, a few runs more.
   */
  confidence(k: number): number {
    const p = this.posterior();
    let below = 0;
    for (let i = 1; i < k; i++) below += p[i] as number;
    const at = p[k] as number;
    const above = Math.max(0, 1 - below - at);
    const scale = Math.max(1, (LOW_SIDE_SHARE * this.n) / Math.max(1, k - 1));
    const total = at + scale * below + above;
    return total > 0 ? at / total : 0;
  }

  /**
   * Expected information (bits) from one more run at `revision` about the
   * model's unknowns, the culprit K and the flake rate θ together. Scoring K
   * alone was myopic: it kept testing just below the likely culprit, where a
   * pass is worth little while "an earlier culprit with a rarer flake" stays
   * plausible; learning θ (by running where the flake is present) is what
   * turns those passes into strong evidence.
   */
  information(revision: number): number {
    return this.informationFrom(this.prefixes(), revision);
  }

  private informationFrom(prefixes: Prefixes, revision: number): number {
    const below = prefixes.massUpTo[revision] as number;
    const conditional = (prefixes.entropyUpTo[revision] as number) + (1 - below) * entropy2(this.epsilon);
    return Math.max(0, entropy2(this.failChanceFrom(prefixes, revision)) - conditional);
  }

  /** P(the next run at `revision` fails | observations). */
  private failChanceFrom({ failUpTo, massUpTo }: Prefixes, revision: number): number {
    return (failUpTo[revision] as number) + (1 - (massUpTo[revision] as number)) * this.epsilon;
  }

  /**
   * The revision (1..n, minus `exclude`) to run next while `pending` runs
   * (revisions, outcomes not yet known) are in flight; null when none tells
   * us anything. Before the first failure, that is the bad revision. When
   * the stop waits on the low-side guard alone, it is the revision just
   * before the likely culprit (see `settlingRun`). Otherwise the single
   * most informative run. Pending runs count as if each had come out as it
   * most probably will (the comment at the top of this file says why).
   */
  next(exclude: ReadonlySet<number> = new Set(), pending: readonly number[] = []): number | null {
    if (pending.length > 0) return this.expecting(pending).next(exclude);
    // Until the flake has shown itself at the bad revision there is nothing to chase, and nothing known of θ.
    if (this.totalFails === 0) return exclude.has(this.n) ? null : this.n;
    const settling = this.settlingRun(exclude);
    if (settling !== null) return settling;
    const scores = this.singleScores();
    let bestRev: number | null = null;
    let bestInfo = 1e-12;
    for (let r = 1; r <= this.n; r++) {
      if (exclude.has(r)) continue;
      const info = scores[r] as number;
      if (info > bestInfo) {
        bestInfo = info;
        bestRev = r;
      }
    }
    return bestRev;
  }

  /** A copy of this model that has seen each pending run come out as it most probably will. */
  private expecting(pending: readonly number[]): NoisyBisector {
    const copy = new NoisyBisector(this.n, this.options);
    copy.passes.splice(0, this.n + 1, ...this.passes);
    copy.fails.splice(0, this.n + 1, ...this.fails);
    for (const r of pending) copy.record(r, copy.failChanceFrom(copy.prefixes(), r) > 0.5);
    return copy;
  }

  /**
   * k − 1 when the most probable culprit k has reached the stop's probability
   * but `confidence(k)`, which weighs the earlier culprits as if there were
   * LOW_SIDE_SHARE · n of them, has not; else null. Then only evidence
   * against the earlier culprits can end the search, and a pass at k − 1 is
   * the strongest. Information, scored on the unguarded posterior, sees
   * little left to learn about K there and spent those runs on θ and on
   * revisions after k. In simulation this took 7–10% fewer runs at every θ
   * in {0.1, 0.2, 0.3, 0.5} with a quarter of the culprits at the good end
   * (n = 32), 4–7% with culprits uniform (n = 64), as calibrated as before.
   */
  private settlingRun(exclude: ReadonlySet<number>): number | null {
    const k = this.mostProbable();
    if (k === 1 || exclude.has(k - 1)) return null;
    const raw = this.posterior()[k] as number;
    return raw >= this.stopAt && this.confidence(k) < this.stopAt ? k - 1 : null;
  }

  private singleScores(): number[] {
    const prefixes = this.prefixes();
    const scores = [0];
    for (let r = 1; r <= this.n; r++) scores[r] = this.informationFrom(prefixes, r);
    return scores;
  }

  /** Prefix sums over k of P(k)·E[θ|k], P(k)·E[h(θ)|k] and P(k): one pass makes every revision's score O(1). */
  private prefixes(): Prefixes {
    const { joint, marginal } = this.compute();
    const hTheta = this.thetaEntropy;
    const failUpTo = [0];
    const entropyUpTo = [0];
    const massUpTo = [0];
    for (let k = 1; k <= this.n; k++) {
      const row = joint[k] as number[];
      let f = 0;
      let h = 0;
      for (let j = 0; j < row.length; j++) {
        f += (row[j] as number) * (this.thetas[j] as number);
        h += (row[j] as number) * (hTheta[j] as number);
      }
      failUpTo[k] = (failUpTo[k - 1] as number) + f;
      entropyUpTo[k] = (entropyUpTo[k - 1] as number) + h;
      massUpTo[k] = (massUpTo[k - 1] as number) + (marginal[k] as number);
    }
    return { failUpTo, entropyUpTo, massUpTo };
  }

  /** log P(observations, K = k, θ_j) up to a constant, flat: entry (k - 1) * points + j. */
  private logJoint(): Float64Array {
    const { n, logTheta, log1mTheta, logPrior } = this;
    const points = this.thetas.length;
    const logEps = Math.log(this.epsilon);
    const log1mEps = Math.log1p(-this.epsilon);
    // Suffix sums: observations at revisions ≥ k (flake present) and prefix sums below k (flake absent).
    const failsFrom = new Float64Array(n + 2);
    const passesFrom = new Float64Array(n + 2);
    for (let r = n; r >= 0; r--) {
      failsFrom[r] = (failsFrom[r + 1] as number) + (this.fails[r] ?? 0);
      passesFrom[r] = (passesFrom[r + 1] as number) + (this.passes[r] ?? 0);
    }
    const out = new Float64Array(n * points);
    for (let k = 1; k <= n; k++) {
      const failsBefore = (failsFrom[0] as number) - (failsFrom[k] as number);
      const passesBefore = (passesFrom[0] as number) - (passesFrom[k] as number);
      const before =
        failsBefore > 0 && this.epsilon === 0
          ? Number.NEGATIVE_INFINITY
          : (failsBefore ? failsBefore * logEps : 0) + passesBefore * log1mEps;
      const f = failsFrom[k] as number;
      const p = passesFrom[k] as number;
      for (let j = 0; j < points; j++) {
        out[(k - 1) * points + j] =
          before + (logPrior[j] as number) + f * (logTheta[j] as number) + p * (log1mTheta[j] as number);
      }
    }
    return out;
  }

  private compute(): Posterior {
    if (this.cache) return this.cache;
    const n = this.n;
    const points = this.thetas.length;
    const logJoint = this.logJoint();
    let max = Number.NEGATIVE_INFINITY;
    for (const v of logJoint) if (v > max) max = v;
    const marginal = new Array(n + 1).fill(0);
    const meanTheta = new Array(n + 1).fill(0);
    const joint: number[][] = [[]];
    let total = 0;
    for (let k = 1; k <= n; k++) {
      let mass = 0;
      let thetaMass = 0;
      const row = new Array<number>(points);
      for (let j = 0; j < points; j++) {
        const v = logJoint[(k - 1) * points + j] as number;
        const w = max === Number.NEGATIVE_INFINITY ? 1 : Math.exp(v - max);
        row[j] = w;
        mass += w;
        thetaMass += w * (this.thetas[j] as number);
      }
      joint[k] = row;
      marginal[k] = mass;
      meanTheta[k] = mass > 0 ? thetaMass / mass : 0;
      total += mass;
    }
    for (let k = 1; k <= n; k++) {
      marginal[k] = total > 0 ? marginal[k] / total : 1 / n;
      const row = joint[k] as number[];
      for (let j = 0; j < points; j++) row[j] = total > 0 ? (row[j] as number) / total : 0;
    }
    this.cache = { marginal, meanTheta, joint };
    return this.cache;
  }
}

function thetaEvidenceLog(theta: number, evidence: BisectModelOptions['thetaEvidence']): number {
  if (!evidence) return 0;
  const { failed, passed } = evidence;
  if (!(failed >= 0 && passed >= 0 && Number.isFinite(failed + passed))) {
    throw new ArgumentError(`thetaEvidence needs failed, passed ≥ 0; got ${failed}, ${passed}`, {
      argument: 'thetaEvidence',
    });
  }
  return failed * Math.log(theta) + passed * Math.log1p(-theta);
}
