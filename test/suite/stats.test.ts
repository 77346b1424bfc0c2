import { describe, expect, it } from 'vitest';
import { seededRandom, wilsonInterval } from '../../src/suite/stats.ts';

describe('wilsonInterval', () => {
  it('matches published values', () => {
    // Reference values (z = 1.96): 0/10 -> [0, 0.2775]; 5/10 -> [0.2366, 0.7634]; 3/10 -> [0.1078, 0.6032].
    const cases: Array<[number, number, number, number]> = [
      [0, 10, 0, 0.2775],
      [5, 10, 0.2366, 0.7634],
      [3, 10, 0.1078, 0.6032],
    ];
    for (const [k, n, low, high] of cases) {
      const i = wilsonInterval(k, n);
      expect(i.low).toBeCloseTo(low, 3);
      expect(i.high).toBeCloseTo(high, 3);
    }
  });

  it('stays inside [0, 1] and is the whole range without data', () => {
    expect(wilsonInterval(10, 10).high).toBeCloseTo(1, 12);
    expect(wilsonInterval(10, 10).high).toBeLessThanOrEqual(1);
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
  });
});

describe('seededRandom', () => {
  it('repeats for a seed and differs between seeds', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const seqA = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(seqA);
    expect([c(), c(), c()]).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
