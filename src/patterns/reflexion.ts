import { type CancelScope, commitOne, outcome, runCandidate } from './engine.ts';
import { Pattern } from './pattern.ts';
import type {
  BranchTarget,
  Candidate,
  CandidateContext,
  CommonPatternOptions,
  SpeculationOutcome,
  SpeculationResult,
} from './types.ts';
import { candidate as checkCandidate, optionalFunction, optionsObject, positiveInteger } from './validate.ts';

export interface ReflexionContext extends CandidateContext {
  /** 0 for the first attempt (equal to `index`). */
  attempt: number;
  /** The critique of the previous attempt; null on the first attempt or without a critique. */
  feedback: string | null;
}

export interface CritiqueContext {
  signal: AbortSignal;
  attempt: number;
  /** The failed attempt's result (its return value or exception). */
  result: SpeculationResult;
}

/** Reads a failed attempt's branch (still intact) and says what went wrong. */
export type Critique = (path: string, ctx: CritiqueContext) => string | null | Promise<string | null>;

export interface ReflexionOptions extends CommonPatternOptions {
  /** Attempts at most (default 3). */
  maxRetries?: number;
  critique?: Critique;
  /** Milliseconds for all attempts together: the current one is cancelled and no more start. */
  timeout?: number;
}

/**
 * Reflexion: attempts run one after another, each in a fresh branch
 * `reflexion_<attempt>`. After a failure (false or a throw), `critique`
 * reads the failed branch before it is aborted, and its text becomes the
 * next attempt's `feedback`. The first success commits and ends the loop.
 * A critique that throws stops the run: it rejects with that error.
 */
export class Reflexion extends Pattern {
  private readonly task: Candidate<ReflexionContext>;
  private readonly maxRetries: number;
  private readonly critique: Critique | undefined;

  constructor(task: Candidate<ReflexionContext>, options?: ReflexionOptions) {
    const opts = optionsObject<ReflexionOptions>(options);
    super(opts);
    this.task = checkCandidate(task, 'task');
    this.maxRetries = opts.maxRetries === undefined ? 3 : positiveInteger(opts.maxRetries, 'maxRetries');
    this.critique = optionalFunction<Critique>(opts.critique, 'critique');
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, true, async (run) => {
      const results: SpeculationResult[] = [];
      let feedback: string | null = null;
      for (let attempt = 0; attempt < this.maxRetries; attempt++) {
        if (run.scope.cancelled) break;
        const settled = await runCandidate(run, {
          parent: target,
          name: `reflexion_${attempt}`,
          index: attempt,
          candidate: this.task,
          extra: { attempt, feedback },
          scope: run.scope,
          keepFailed: true,
        });
        results.push(settled.result);
        if (settled.result.success) {
          const committed = await commitOne(run, [settled], settled);
          return outcome(committed ? settled.result : null, results);
        }
        feedback = await this.reflect(settled.branch, attempt, settled.result, run.scope);
        await settled.branch?.abort();
      }
      return outcome(null, results);
    });
  }

  private async reflect(
    branch: { path: string } | null,
    attempt: number,
    result: SpeculationResult,
    scope: CancelScope,
  ): Promise<string | null> {
    if (!this.critique || !branch || scope.cancelled) return null;
    const text = await this.critique(branch.path, { signal: scope.signal, attempt, result });
    return text === undefined || text === null ? null : String(text);
  }
}
