import type { Scorer } from './engine.ts';
import type { CandidateContext } from './types.ts';

/** Scores a successful branch from its directory; overrides the candidate's own score. */
export type Evaluator = (path: string, ctx: CandidateContext) => number | Promise<number>;

/** TreeOfThoughts and BeamSearch: `evaluate(path)`, else the candidate's `[ok, score]`, else 1. */
export function strategyScorer(evaluate: Evaluator | undefined): Scorer {
  return async (branch, verdict, ctx) => (evaluate ? evaluate(branch.path, ctx) : (verdict.score ?? 1));
}
