import { describe, expect, it } from 'vitest';
import { isBranchingError } from '../../src/base/errors.ts';
import { flakeEvidenceFromReport, matchesTarget, narrowCommand, parseTarget } from '../../src/suite/bisect-evidence.ts';

const result = (id: string, file: string | null, status: 'passed' | 'failed' | 'skipped' = 'passed') => ({
  id,
  file,
  status,
  kind: 'test' as const,
});

describe('bisect targets', () => {
  it('matches a flaky id in both styles of name: parts joined by " > " or by spaces', () => {
    const target = parseTarget('tests/cart.test.ts > checkout > totals') as NonNullable<ReturnType<typeof parseTarget>>;
    expect(target).toMatchObject({ file: 'tests/cart.test.ts', name: 'checkout totals', exact: true });
    expect(matchesTarget(result('tests/cart.test.ts > checkout totals', 'tests/cart.test.ts'), target)).toBe(true);
    expect(matchesTarget(result('tests/cart.test.ts > checkout > totals', 'tests/cart.test.ts'), target)).toBe(true);
    // Another test of the same file, the same name in another file, and the file's load failure are not it.
    expect(matchesTarget(result('tests/cart.test.ts > checkout totals twice', 'tests/cart.test.ts'), target)).toBe(
      false,
    );
    expect(matchesTarget(result('tests/other.test.ts > checkout totals', 'tests/other.test.ts'), target)).toBe(false);
    expect(matchesTarget(result('tests/cart.test.ts > (file)', 'tests/cart.test.ts', 'failed'), target)).toBe(false);
  });

  it('takes a file or a name filter too, and narrows vitest and jest commands to it', () => {
    const file = parseTarget('tests/cart.test.ts') as NonNullable<ReturnType<typeof parseTarget>>;
    expect(matchesTarget(result('tests/cart.test.ts > a b', 'tests/cart.test.ts'), file)).toBe(true);
    const name = parseTarget('checkout') as NonNullable<ReturnType<typeof parseTarget>>;
    expect(matchesTarget(result('x.test.ts > cart checkout totals', 'x.test.ts'), name)).toBe(true);
    const id = parseTarget('tests/a+b.test.ts > sums (twice)') as NonNullable<ReturnType<typeof parseTarget>>;
    expect(narrowCommand(['npx', 'vitest', 'run'], 'vitest', id)).toEqual([
      'npx',
      'vitest',
      'run',
      'tests/a+b.test.ts',
      '-t',
      'sums \\(twice\\)',
    ]);
    expect(narrowCommand(['npx', 'jest'], 'jest', id)).toEqual([
      'npx',
      'jest',
      'tests/a\\+b\\.test\\.ts',
      '-t',
      'sums \\(twice\\)',
    ]);
    expect(narrowCommand(['node', 'run.mjs'], 'json-file', id)).toBeNull();
  });

  it('reads the flake-rate prior of one test from a flaky report, and refuses an ambiguous one', () => {
    const report = {
      tests: [
        { id: 'a.test.ts > one', verdict: 'flaky', isolated: { passed: 14, failed: 6 } },
        { id: 'b.test.ts > two', verdict: 'flaky', isolated: { passed: 19, failed: 1 } },
        { id: 'c.test.ts > three', verdict: 'stable', isolated: { passed: 20, failed: 0 } },
      ],
    };
    expect(flakeEvidenceFromReport(report, parseTarget('a.test.ts > one'), 'r.json')).toEqual({
      failed: 6,
      passed: 14,
      id: 'a.test.ts > one',
    });
    for (const [json, target] of [
      [report, null],
      [report, parseTarget('d.test.ts > four')],
      [{ nope: 1 }, null],
    ] as const) {
      let err: unknown;
      try {
        flakeEvidenceFromReport(json, target, 'r.json');
      } catch (e) {
        err = e;
      }
      expect(isBranchingError(err, 'ArgumentError')).toBe(true);
      expect((err as { argument?: string }).argument).toBe('prior');
    }
  });
});
