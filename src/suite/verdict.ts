import type { TestOutcome } from './suite-run.ts';

export interface Verdict {
  passed: boolean;
  /** Passed at baseline, and now fail, are skipped, or are gone. */
  regressions: string[];
  /** Required to pass (mustPass) and do not. */
  stillFailing: string[];
  /** Failed at baseline and pass now. */
  fixed: string[];
}

/** Does a `mustPass` entry name this test? An exact id, or its trailing part (`add > adds`, `adds`). */
export function matchesTest(id: string, entry: string): boolean {
  return id === entry || id.endsWith(` > ${entry}`);
}

/** `mustPass` by default: everything that failed at baseline (tests, test files that did not load, the command). */
export function failingAtBaseline(baseline: Map<string, TestOutcome>): string[] {
  return [...baseline.values()].filter((t) => t.status === 'failed').map((t) => t.id);
}

/**
 * The pass rule: no test that passed at baseline may now fail (a test
 * that vanished or became skipped counts as failed: a candidate must not
 * pass by deleting or skipping tests), and every `mustPass` entry must name
 * at least one test, all of which pass.
 */
export function judge(baseline: Map<string, TestOutcome>, run: Map<string, TestOutcome>, mustPass: string[]): Verdict {
  const regressions: string[] = [];
  const fixed: string[] = [];
  for (const [id, before] of baseline) {
    const now = run.get(id)?.status;
    if (before.status === 'passed' && now !== 'passed') regressions.push(id);
    if (before.status === 'failed' && now === 'passed') fixed.push(id);
  }
  const stillFailing = mustPass.filter((entry) => {
    const matching = [...run.values()].filter((t) => matchesTest(t.id, entry));
    return matching.length === 0 || matching.some((t) => t.status !== 'passed');
  });
  return { passed: regressions.length === 0 && stillFailing.length === 0, regressions, stillFailing, fixed };
}

/**
 * The pass rule on part of the suite (the tests related to a change): only the tests that ran are
 * judged. It can reject (a test that passed at baseline fails, or a mustPass test fails) but never
 * pass a candidate on its own: what did not run may still have broken.
 */
export function judgeSubset(
  baseline: Map<string, TestOutcome>,
  run: Map<string, TestOutcome>,
  mustPass: string[],
): Verdict {
  const regressions: string[] = [];
  const fixed: string[] = [];
  for (const [id, now] of run) {
    const before = baseline.get(id)?.status;
    if (before === 'passed' && now.status === 'failed') regressions.push(id);
    if (before === 'failed' && now.status === 'passed') fixed.push(id);
  }
  const failing = [...run.values()].filter((t) => t.status === 'failed');
  const stillFailing = mustPass.filter((entry) => failing.some((t) => matchesTest(t.id, entry)));
  return { passed: regressions.length === 0 && stillFailing.length === 0, regressions, stillFailing, fixed };
}
