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

  it('names the culprit in ≥ 90% of seeded simulated trials at its 95% posterior', () => {
    let correct = 0;
    const trials = 40;
    for (let t = 0; t < trials; t++) {
      const rnd = seededRandom(1000 + t);
      const n = 32;
      const culprit = 1 + Math.floor(rnd() * n);
      const m = new NoisyBisector(n);
      const run = (r: number) => m.record(r, r >= culprit && rnd() < 0.3);
      let runs = 0;
      while (m.totalFails === 0 && runs++ < 60) run(n);
      while (m.best().probability < 0.95 && runs++ < 400) run(m.next() as number);
      if (m.best().index === culprit) correct++;
    }
    expect(correct / trials).toBeGreaterThanOrEqual(0.9);
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
