import { ArgumentError } from '../base/errors.ts';
import { CancelScope, outcome } from './engine.ts';
import { firstWinsGroup } from './first-wins.ts';
import { Pattern } from './pattern.ts';
import type { BranchTarget, Candidate, CandidateContext, CommonPatternOptions, SpeculationOutcome } from './types.ts';
import { candidateList, optionsObject } from './validate.ts';

export interface SpeculateOptions extends CommonPatternOptions {
  /** `true` (default): the first success commits and the others are cancelled. `false`: all run; the first commit wins. */
  firstWins?: boolean;
  /** Milliseconds for the whole run: stragglers are cancelled, and no success commits after it. */
  timeout?: number;
}

/**
 * Parallel speculation: each candidate runs in branch `speculate_<i>`; the
 * first success commits, and the rest are cancelled and aborted.
 */
export class Speculate extends Pattern {
  private readonly candidates: Candidate<CandidateContext>[];
  private readonly firstWins: boolean;

  constructor(candidates: Candidate<CandidateContext>[], options?: SpeculateOptions) {
    const opts = optionsObject<SpeculateOptions>(options);
    super(opts);
    this.candidates = candidateList(candidates, 'candidates');
    if (opts.firstWins !== undefined && typeof opts.firstWins !== 'boolean') {
      throw new ArgumentError(`firstWins must be a boolean; got ${JSON.stringify(opts.firstWins)}`, {
        argument: 'firstWins',
      });
    }
    this.firstWins = opts.firstWins ?? true;
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, true, async (run) => {
      const group = new CancelScope(run.scope);
      try {
        const jobs = this.candidates.map((candidate, index) => ({
          parent: target,
          name: `speculate_${index}`,
          index,
          candidate,
          extra: {},
          scope: group,
        }));
        const { results, winner } = await firstWinsGroup(run, group, jobs, this.firstWins);
        return outcome(winner, results);
      } finally {
        group.dispose();
      }
    });
  }
}
