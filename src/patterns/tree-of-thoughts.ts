import type { Branch } from '../core/branch.ts';
import { CancelScope, commitOne, outcome, pickBest, type RunContext, runCandidate, type Settled } from './engine.ts';
import { Pattern } from './pattern.ts';
import { type Evaluator, strategyScorer } from './scoring.ts';
import type {
  BranchTarget,
  Candidate,
  CandidateContext,
  CommonPatternOptions,
  SpeculationOutcome,
  SpeculationResult,
} from './types.ts';
import { candidateList, optionalFunction, optionsObject, positiveInteger } from './validate.ts';

export interface DepthContext extends CandidateContext {
  /** The level this strategy runs at (0 for the initial strategies). */
  depth: number;
}

export type Strategy = Candidate<DepthContext>;

/** Proposes the next level's strategies, given the directory of the state reached so far. */
export type Expand = (path: string, depth: number, ctx: { signal: AbortSignal }) => Strategy[] | Promise<Strategy[]>;

export interface TreeOfThoughtsOptions extends CommonPatternOptions {
  evaluate?: Evaluator;
  expand?: Expand;
  /** Levels at most (default 1). More than 1 needs `expand`. */
  maxDepth?: number;
  /** Milliseconds per level: a level's stragglers are cancelled, and its best finished success still wins. */
  timeout?: number;
}

/**
 * Tree of Thoughts. One level: the strategies run in parallel (branches
 * `tot_0_<i>`) and the best commits. Several levels: a root branch
 * `tot_root` is opened; each level runs as children of the root and its
 * winner commits into the root; then `expand(root.path, depth + 1)` gives the
 * next level. A level without a success aborts the root (nothing commits);
 * an empty expansion stops early and commits the root. Ties go to the lowest index.
 */
export class TreeOfThoughts extends Pattern {
  private readonly strategies: Strategy[];
  private readonly evaluate: Evaluator | undefined;
  private readonly expand: Expand | undefined;
  private readonly maxDepth: number;

  constructor(strategies: Strategy[], options?: TreeOfThoughtsOptions) {
    const opts = optionsObject<TreeOfThoughtsOptions>(options);
    super(opts);
    this.strategies = candidateList(strategies, 'strategies');
    this.evaluate = optionalFunction<Evaluator>(opts.evaluate, 'evaluate');
    this.expand = optionalFunction<Expand>(opts.expand, 'expand');
    this.maxDepth = opts.maxDepth === undefined ? 1 : positiveInteger(opts.maxDepth, 'maxDepth');
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, false, async (run) => {
      if (!this.expand || this.maxDepth <= 1) {
        const level = await this.runLevel(run, target, this.strategies, 0);
        const committed = await commitOne(run, level.settled, level.best);
        return outcome(committed ? level.best!.result : null, level.results);
      }
      return this.runLevels(run, target, this.expand);
    });
  }

  private async runLevels(run: RunContext, target: BranchTarget, expand: Expand): Promise<SpeculationOutcome> {
    const all: SpeculationResult[] = [];
    const root = run.track(await target.branch('tot_root', { onSuccess: null, onError: null }));
    let strategies = this.strategies;
    let winner: SpeculationResult | null = null;
    for (let depth = 0; depth < this.maxDepth && strategies.length > 0; depth++) {
      const level = await this.runLevel(run, root, strategies, depth);
      all.push(...level.results);
      if (!(await commitOne(run, level.settled, level.best))) {
        await root.abort();
        return outcome(null, all);
      }
      winner = level.best!.result;
      if (depth + 1 < this.maxDepth && !run.scope.cancelled) {
        strategies = candidateList(await expand(root.path, depth + 1, { signal: run.scope.signal }), 'expand()', {
          allowEmpty: true,
        });
      } else break;
    }
    if (!run.mayCommit) return outcome(null, all);
    try {
      await root.commit();
    } catch (err) {
      if (winner) {
        winner.success = false;
        winner.exception = err;
      }
      await root.abort();
      return outcome(null, all);
    }
    return outcome(winner, all);
  }

  private async runLevel(
    run: RunContext,
    parent: BranchTarget | Branch,
    strategies: Strategy[],
    depth: number,
  ): Promise<{ settled: Settled[]; results: SpeculationResult[]; best: Settled | null }> {
    const level = new CancelScope(run.scope, this.settings.timeout, `level ${depth}`);
    try {
      const scorer = strategyScorer(this.evaluate);
      const settled = await Promise.all(
        strategies.map((candidate, index) =>
          runCandidate(run, {
            parent,
            name: `tot_${depth}_${index}`,
            index,
            candidate,
            extra: { depth },
            scope: level,
            scorer,
            annotate: { depth },
          }),
        ),
      );
      return { settled, results: settled.map((s) => s.result), best: pickBest(settled) };
    } finally {
      level.dispose();
    }
  }
}
