import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { type CandidateJob, commitOne, outcome, pickBest, runCandidate, type Scorer } from './engine.ts';
import { Pattern } from './pattern.ts';
import type { Evaluator } from './scoring.ts';
import type { BranchTarget, Candidate, CandidateContext, CommonPatternOptions, SpeculationOutcome } from './types.ts';
import {
  candidateList,
  candidate as checkCandidate,
  optionalFunction,
  optionsObject,
  positiveInteger,
} from './validate.ts';

export interface AttemptContext extends CandidateContext {
  /** Which copy of the task this is (equal to `index`). */
  attempt: number;
}

export interface BestOfNOptions extends CommonPatternOptions {
  /** How many copies of a single task to run (default 3; ignored for a list of candidates). */
  n?: number;
  /** Scores each success from its branch directory. */
  evaluate?: Evaluator;
  /** Fallback scores per candidate, used when neither `evaluate` nor `[ok, score]` gives one. */
  scores?: number[];
  /** `false`: report the winner but commit nothing (default `true`). */
  commit?: boolean;
  /** Milliseconds for the whole run: stragglers are cancelled; the best finished success still wins. */
  timeout?: number;
}

/**
 * Best-of-N: runs every candidate (or N copies of one task) in branches
 * `best_of_n_<i>`, scores the successes, and commits the highest score
 * (ties to the lowest index). Score, in priority order: `evaluate(path)`,
 * the candidate's `[ok, score]`, `scores[i]`, then 1.
 */
export class BestOfN extends Pattern {
  private readonly candidates: Candidate<AttemptContext>[];
  private readonly scorer: Scorer;
  private readonly commit: boolean;

  constructor(task: Candidate<AttemptContext> | Candidate<AttemptContext>[], options?: BestOfNOptions) {
    const opts = optionsObject<BestOfNOptions>(options);
    super(opts);
    if (Array.isArray(task)) {
      this.candidates = candidateList(task, 'task');
    } else {
      const n = opts.n === undefined ? 3 : positiveInteger(opts.n, 'n');
      this.candidates = Array.from({ length: n }, () => checkCandidate<AttemptContext>(task, 'task'));
    }
    this.scorer = scorerFor(
      optionalFunction<Evaluator>(opts.evaluate, 'evaluate'),
      checkScores(opts.scores, this.candidates.length),
    );
    if (opts.commit !== undefined && typeof opts.commit !== 'boolean') {
      throw new ArgumentError(`commit must be a boolean; got ${JSON.stringify(opts.commit)}`, { argument: 'commit' });
    }
    this.commit = opts.commit ?? true;
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, true, async (run) => {
      const jobs: CandidateJob<AttemptContext>[] = this.candidates.map((candidate, index) => ({
        parent: target,
        name: `best_of_n_${index}`,
        index,
        candidate,
        extra: { attempt: index },
        scope: run.scope,
        scorer: this.scorer,
      }));
      const settled = await Promise.all(jobs.map((job) => runCandidate(run, job)));
      const results = settled.map((s) => s.result);
      const best = pickBest(settled);
      if (!this.commit) {
        await commitOne(run, settled, null);
        return { committed: false, winner: best?.result ?? null, allResults: results };
      }
      const committed = await commitOne(run, settled, best);
      return outcome(committed ? best!.result : null, results);
    });
  }
}

function checkScores(scores: unknown, count: number): number[] | undefined {
  if (scores === undefined) return undefined;
  if (
    !Array.isArray(scores) ||
    scores.length !== count ||
    scores.some((s) => typeof s !== 'number' || Number.isNaN(s))
  ) {
    throw new ArgumentError(`scores must be an array of ${count} numbers, one per candidate`, { argument: 'scores' });
  }
  return scores;
}

function scorerFor(evaluate: Evaluator | undefined, scores: number[] | undefined): Scorer {
  return async (branch: Branch, verdict, ctx) => {
    if (evaluate) return evaluate(branch.path, ctx);
    return verdict.score ?? scores?.[ctx.index] ?? 1;
  };
}
