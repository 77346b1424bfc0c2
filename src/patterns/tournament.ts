import { ArgumentError } from '../base/errors.ts';
import { type CandidateJob, commitOne, outcome, runCandidate, type Settled } from './engine.ts';
import { Pattern } from './pattern.ts';
import type {
  BranchTarget,
  Candidate,
  CandidateContext,
  CommonPatternOptions,
  SpeculationOutcome,
  SpeculationResult,
} from './types.ts';
import {
  candidateList,
  candidate as checkCandidate,
  optionsObject,
  positiveInteger,
  requiredFunction,
} from './validate.ts';

export interface JudgeContext {
  signal: AbortSignal;
  a: SpeculationResult;
  b: SpeculationResult;
  /** 0 for the first round. */
  round: number;
}

/** Compares two candidates' branch directories: 0 if `a` wins, 1 if `b` wins. */
export type Judge = (pathA: string, pathB: string, ctx: JudgeContext) => 0 | 1 | Promise<0 | 1>;

export interface TournamentOptions extends CommonPatternOptions {
  judge: Judge;
  /** How many copies of a single task to run (default 4; ignored for a list of candidates). */
  n?: number;
  /** Milliseconds for generating the candidates: stragglers are cancelled; the finished successes compete. */
  timeout?: number;
}

/**
 * Tournament: every candidate runs in its own branch `tournament_<i>`, kept
 * open. The successes, in index order, are paired off and `judge(a, b)`
 * picks the winner of each pair; an odd entrant gets a bye to the end of the
 * next round. A lone survivor wins without a judge call. The champion
 * commits; every other branch is aborted. If the judge throws or returns
 * anything but 0 or 1, every branch is aborted, nothing commits, and `run`
 * rejects with that error rather than leaving the other workers waiting.
 */
export class Tournament extends Pattern {
  private readonly candidates: Candidate<CandidateContext>[];
  private readonly judge: Judge;

  constructor(task: Candidate<CandidateContext> | Candidate<CandidateContext>[], options: TournamentOptions) {
    if (options === undefined) {
      throw new ArgumentError('Tournament needs options with a judge function', { argument: 'judge' });
    }
    const opts = optionsObject<TournamentOptions>(options);
    super(opts);
    this.judge = requiredFunction<Judge>(opts.judge, 'judge');
    if (Array.isArray(task)) {
      this.candidates = candidateList(task, 'task');
    } else {
      const n = opts.n === undefined ? 4 : positiveInteger(opts.n, 'n');
      this.candidates = Array.from({ length: n }, () => checkCandidate(task, 'task'));
    }
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, true, async (run) => {
      const jobs: CandidateJob<CandidateContext>[] = this.candidates.map((candidate, index) => ({
        parent: target,
        name: `tournament_${index}`,
        index,
        candidate,
        extra: {},
        scope: run.scope,
      }));
      const settled = await Promise.all(jobs.map((job) => runCandidate(run, job)));
      const entrants = settled.filter((s) => s.result.success && s.branch);
      const champion = entrants.length === 0 ? null : await this.bracket(entrants, run.scope.signal);
      const committed = await commitOne(run, settled, champion);
      return outcome(
        committed ? champion!.result : null,
        settled.map((s) => s.result),
      );
    });
  }

  /** Single elimination: pairs in order; an odd one out moves to the end of the next round. */
  private async bracket(entrants: Settled[], signal: AbortSignal): Promise<Settled> {
    let round = entrants;
    for (let number = 0; round.length > 1; number++) {
      const next: Settled[] = [];
      for (let i = 0; i + 1 < round.length; i += 2) {
        next.push(await this.match(round[i], round[i + 1], number, signal));
      }
      if (round.length % 2 === 1) next.push(round[round.length - 1]);
      round = next;
    }
    return round[0];
  }

  private async match(a: Settled, b: Settled, round: number, signal: AbortSignal): Promise<Settled> {
    const verdict = await this.judge(a.branch!.path, b.branch!.path, { signal, a: a.result, b: b.result, round });
    if (verdict !== 0 && verdict !== 1) {
      throw new ArgumentError(
        `judge returned ${JSON.stringify(verdict)} for candidates ${a.result.branchIndex} and ${b.result.branchIndex}; expected 0 or 1`,
        { argument: 'judge', code: 'ERR_BRANCHING_JUDGE_RETURN' },
      );
    }
    return verdict === 0 ? a : b;
  }
}
