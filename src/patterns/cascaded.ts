import { ArgumentError } from '../base/errors.ts';
import { CancelScope, type CandidateJob, outcome } from './engine.ts';
import { firstWinsGroup } from './first-wins.ts';
import { Pattern } from './pattern.ts';
import type {
  BranchTarget,
  Candidate,
  CandidateContext,
  CommonPatternOptions,
  SpeculationOutcome,
  SpeculationResult,
} from './types.ts';
import { candidate as checkCandidate, optionalDuration, optionsObject, positiveInteger } from './validate.ts';

export interface CascadeContext extends CandidateContext {
  /** 0 for the first wave. */
  wave: number;
  /** Why every earlier candidate failed, in order: its error message, or that it returned false. */
  feedback: string[];
}

export interface CascadedOptions extends CommonPatternOptions {
  /** How many copies run in each wave (default [1, 2, 4]). */
  fanOut?: number[];
  /** Milliseconds for all waves together. */
  timeout?: number;
  /** Milliseconds per wave: its stragglers are cancelled and the next wave starts. */
  waveTimeout?: number;
}

/**
 * Cascaded speculation: waves of first-wins speculation of growing width
 * (branches `cascade_<wave>_<i>`). The first success of a wave commits and
 * ends the run; when a whole wave fails, the next wave starts with the
 * failures' error strings as `feedback`.
 */
export class Cascaded extends Pattern {
  private readonly task: Candidate<CascadeContext>;
  private readonly fanOut: number[];
  private readonly waveTimeout: number | undefined;

  constructor(task: Candidate<CascadeContext>, options?: CascadedOptions) {
    const opts = optionsObject<CascadedOptions>(options);
    super(opts);
    this.task = checkCandidate(task, 'task');
    const fanOut = opts.fanOut ?? [1, 2, 4];
    if (!Array.isArray(fanOut) || fanOut.length === 0) {
      throw new ArgumentError('fanOut must be a non-empty array of positive integers', { argument: 'fanOut' });
    }
    this.fanOut = fanOut.map((width, i) => positiveInteger(width, `fanOut[${i}]`));
    this.waveTimeout = optionalDuration(opts.waveTimeout, 'waveTimeout');
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, true, async (run) => {
      const all: SpeculationResult[] = [];
      const feedback: string[] = [];
      for (const [wave, width] of this.fanOut.entries()) {
        if (run.scope.cancelled) break;
        const group = new CancelScope(run.scope, this.waveTimeout, `wave ${wave}`);
        try {
          const jobs: CandidateJob<CascadeContext>[] = Array.from({ length: width }, (_, index) => ({
            parent: target,
            name: `cascade_${wave}_${index}`,
            index,
            candidate: this.task,
            extra: { wave, feedback: [...feedback] },
            scope: group,
            annotate: { wave },
          }));
          const { results, winner } = await firstWinsGroup(run, group, jobs, true);
          all.push(...results);
          if (winner) return outcome(winner, all);
          feedback.push(...results.map(describeFailure));
        } finally {
          group.dispose();
        }
      }
      return outcome(null, all);
    });
  }
}

function describeFailure(result: SpeculationResult): string {
  const label = `wave ${result.wave} candidate ${result.branchIndex}`;
  if (result.cancelled) {
    return `${label}: cancelled${result.exception instanceof Error ? ` (${result.exception.message})` : ''}`;
  }
  if (result.exception instanceof Error) return `${label}: ${result.exception.message}`;
  if (result.exception !== null) return `${label}: ${String(result.exception)}`;
  return `${label}: returned ${JSON.stringify(result.returnValue)}`;
}
