import { describe, expect, it } from 'vitest';
import { isBranchingError } from '../../src/base/errors.ts';
import { NoisyBisector } from '../../src/suite/bisect-model.ts';
import { seededRandom } from '../../src/suite/stats.ts';

describe('NoisyBisector', () => {
  it('starts uniform, and a failure at r rules out every culprit after r', () => {
    const m = new NoisyBisector(8);
    expect(m.posterior().slice(1)).toEqual(new Array(8).fill(1 / 8));
    m.record(5, true);
    const p = m.posterior();
    expect(p.slice(6).every((x) => x === 0)).toBe(true);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('treats a pass as weak evidence: it lowers the culprits at or before r, never to zero', () => {
    const m = new NoisyBisector(8);
    m.record(8, true);
    m.record(4, false);
    const p = m.posterior();
    expect(p[1]).toBeGreaterThan(0);
    expect(p[4]).toBeLessThan(p[5] as number);
    // Equal evidence, equal belief: culprits 1..4 are indistinguishable, and so are 5..8.
    expect(p[1]).toBeCloseTo(p[4] as number, 12);
    expect(p[5]).toBeCloseTo(p[8] as number, 12);
  });

  it('tests the middle first, then where the evidence is ambiguous', () => {
    const m = new NoisyBisector(15);
    m.record(15, true);
    expect(m.next()).toBe(8);
    m.record(8, true);
    // The culprit is in 1..8 now; the next probe splits that range.
    expect(m.next()).toBeLessThan(8);
    expect(m.next()).toBeGreaterThanOrEqual(3);
  });

  it('skips excluded revisions', () => {
    const m = new NoisyBisector(3);
    m.record(3, true);
    const first = m.next() as number;
    expect(m.next(new Set([first]))).not.toBe(first);
  });

  it('is calibrated: over 1,000 seeded histories, right at least as often as it says, at every flake rate', () => {
    const n = 32;
    for (const theta of [0.1, 0.2, 0.3, 0.5]) {
      const trials = Array.from({ length: 250 }, (_, t) => {
        const rnd = seededRandom(7000 + t * 31 + theta * 1000);
        // A quarter of the culprits at the good end, a quarter at the bad end, the rest anywhere.
        const culprit = t % 4 === 0 ? 1 + (t % 3) : t % 4 === 1 ? n - (t % 3) : 1 + Math.floor(rnd() * n);
        return { rnd, culprit };
      });
      expectCalibrated(simulate(n, theta, trials, 1), `θ = ${theta}`);
    }
  });

  it('is calibrated with two runs in flight, at the flake rate where choosing them jointly was not', () => {
    // The histories of the simulated `npm run bench bisect` at θ = 0.1: choosing each round's pair of
    // runs jointly named the right culprit 91 times in 100 while stating 96%.
    const n = 64;
    const theta = 0.1;
    const trials = Array.from({ length: 100 }, (_, t) => {
      const rnd = seededRandom(0x5eed + t * 7919 + theta * 1000);
      return { rnd, culprit: 1 + Math.floor(rnd() * n) };
    });
    expectCalibrated(simulate(n, theta, trials, 2), 'parallel 2');
  });

  it('spends two parallel runs at two revisions, not both at the one most informative', () => {
    const m = new NoisyBisector(16);
    m.record(16, true);
    const first = m.next() as number;
    const second = m.next(new Set(), [first]) as number;
    expect(second).not.toBe(first);
    // Before the first failure every run goes to the bad revision: the flake must show itself there first.
    const fresh = new NoisyBisector(16);
    expect(fresh.next(new Set(), [16])).toBe(16);
  });

  it('when only the low-side guard holds the stop, runs just before the culprit rather than where information points', () => {
    // Culprit 3 of 16: its own posterior is past 95%, but the guard (earlier culprits weighed as if
    // half the history were before it) keeps the stated probability below.
    const observe = (options = {}) => {
      const m = new NoisyBisector(16, options);
      for (let i = 0; i < 4; i++) m.record(2, false);
      m.record(3, false);
      for (const r of [3, 3, 4, 8, 16]) m.record(r, true);
      return m;
    };
    const m = observe();
    expect(m.posterior()[3]).toBeGreaterThanOrEqual(0.95);
    expect(m.best()).toMatchObject({ index: 3 });
    expect(m.best().probability).toBeLessThan(0.95);
    // Information alone would measure θ at the culprit; only passes at 2 can lift the guarded probability.
    expect(m.information(3)).toBeGreaterThan(m.information(2));
    expect(m.next()).toBe(2);
    // A run at 2 already in flight will most likely pass and leave the stop still waiting on the guard:
    // the next parallel run goes to 2 as well, as the next sequential one would after that pass.
    expect(m.next(new Set(), [2])).toBe(2);
    // A run at 3 in flight instead: it does not touch the earlier culprits, so 2 is still the run to make.
    expect(m.next(new Set(), [3])).toBe(2);
    // A caller stopping at 99% is not waiting on the guard yet: information decides.
    expect(observe({ confidence: 0.99 }).next()).toBe(3);
  });

  it('a flake rate measured earlier makes passes stronger evidence', () => {
    const observe = (m: NoisyBisector) => {
      m.record(8, true);
      for (let i = 0; i < 6; i++) m.record(4, false);
      return m
        .posterior()
        .slice(1, 5)
        .reduce((a, b) => a + b, 0);
    };
    const blind = observe(new NoisyBisector(8));
    const informed = observe(new NoisyBisector(8, { thetaEvidence: { failed: 30, passed: 70 } }));
    expect(informed).toBeLessThan(blind);
  });

  it('rejects impossible revisions and sizes', () => {
    let err: unknown;
    try {
      new NoisyBisector(0);
    } catch (e) {
      err = e;
    }
    expect(isBranchingError(err, 'ArgumentError')).toBe(true);
    const m = new NoisyBisector(3);
    expect(() => m.record(4, true)).toThrow(/revision/);
  });
});

/**
 * Bisects each seeded history (a flake of rate θ from `culprit` on, drawn from `rnd`) to 95% confidence,
 * `parallel` runs per round, each chosen with the others of its round in flight.
 */
function simulate(
  n: number,
  theta: number,
  trials: ReadonlyArray<{ rnd: () => number; culprit: number }>,
  parallel: number,
): Array<{ correct: boolean; stated: number }> {
  return trials.map(({ rnd, culprit }) => {
    const m = new NoisyBisector(n);
    for (let runs = 0; m.best().probability < 0.95 && runs < 2000; runs += parallel) {
      const round: number[] = [];
      for (let i = 0; i < parallel; i++) round.push(m.next(new Set(), round) as number);
      for (const r of round) m.record(r, r >= culprit && rnd() < theta);
    }
    const best = m.best();
    expect(best.probability).toBeGreaterThanOrEqual(0.95);
    return { correct: best.index === culprit, stated: best.probability };
  });
}

/** Right at least as often as stated, less two standard errors of the observed rate were it exactly the stated one. */
function expectCalibrated(results: ReadonlyArray<{ correct: boolean; stated: number }>, label: string): void {
  const claimed = results.reduce((s, r) => s + r.stated, 0) / results.length;
  const samplingError = 2 * Math.sqrt((claimed * (1 - claimed)) / results.length);
  const observed = results.filter((r) => r.correct).length / results.length;
  expect(observed, label).toBeGreaterThanOrEqual(claimed - samplingError);
}
