import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { type CandidateJob, outcome, type RunContext, runCandidate, type Settled } from './engine.ts';
import { Pattern } from './pattern.ts';
import { type Evaluator, strategyScorer } from './scoring.ts';
import type { DepthContext, Expand, Strategy } from './tree-of-thoughts.ts';
import type { BranchTarget, CommonPatternOptions, SpeculationOutcome, SpeculationResult } from './types.ts';
import { candidateList, optionalFunction, optionsObject, positiveInteger, requiredFunction } from './validate.ts';

export interface BeamSearchOptions extends CommonPatternOptions {
  /** Proposes refinements of a beam, given its directory (required). */
  expand: Expand;
  evaluate?: Evaluator;
  /** Beams kept per level (default 3). */
  beamWidth?: number;
  /** Levels, counting the initial strategies as level 0 (default 2). */
  maxDepth?: number;
  /** Milliseconds for the whole search: stragglers are cancelled and the best beam so far commits. */
  timeout?: number;
}

/** A live beam: its branch and the chain of open ancestors it will commit through. */
interface Beam {
  branch: Branch;
  result: SpeculationResult;
  /** Branches from the level-0 beam down to (and including) this one. */
  chain: Branch[];
}

/**
 * Beam search, designed so that winners cannot collide. Level 0 runs the
 * strategies as branches `beam_0_<i>` of the target and keeps the top
 * `beamWidth` successes as beams. At each deeper level every beam is
 * expanded into child branches nested inside it (`beam_<depth>_<j>`), the
 * global top-K children survive, and **the surviving children become the
 * new beams**, each still nested in its parent, which stays open; a beam
 * none of whose children survive is aborted. Two survivors of the same beam
 * are simply two beams: nothing commits until the end, when the best beam
 * (highest score, ties to the lowest index) commits up its own chain of
 * ancestors, one commit into each, and every other branch is aborted. So a
 * parent only ever receives one commit, and a ConflictError between
 * winners of the same beam cannot happen.
 *
 * A level where no child succeeds ends the search with nothing committed,
 * unless the search timed out, in which case the beams reached so far stand.
 * An expansion that yields no strategies for any beam stops the search early.
 */
export class BeamSearch extends Pattern {
  private readonly strategies: Strategy[];
  private readonly expand: Expand;
  private readonly evaluate: Evaluator | undefined;
  private readonly beamWidth: number;
  private readonly maxDepth: number;

  constructor(strategies: Strategy[], options: BeamSearchOptions) {
    if (options === undefined) {
      throw new ArgumentError('BeamSearch needs options with an expand function', { argument: 'expand' });
    }
    const opts = optionsObject<BeamSearchOptions>(options);
    super(opts);
    this.strategies = candidateList(strategies, 'strategies');
    this.expand = requiredFunction<Expand>(opts.expand, 'expand');
    this.evaluate = optionalFunction<Evaluator>(opts.evaluate, 'evaluate');
    this.beamWidth = opts.beamWidth === undefined ? 3 : positiveInteger(opts.beamWidth, 'beamWidth');
    this.maxDepth = opts.maxDepth === undefined ? 2 : positiveInteger(opts.maxDepth, 'maxDepth');
  }

  run(target: BranchTarget): Promise<SpeculationOutcome> {
    return this.execute(target, true, async (run) => {
      const all: SpeculationResult[] = [];
      const level0 = await this.runLevel(
        run,
        this.strategies.map((candidate, index) => this.job(run, target, candidate, index, 0, undefined)),
      );
      all.push(...level0.map((s) => s.result));
      let beams = this.survivors(level0).map((s) => ({ branch: s.branch!, result: s.result, chain: [s.branch!] }));
      await abortAllBut(level0, beams);

      for (let depth = 1; depth < this.maxDepth && beams.length > 0 && !run.scope.cancelled; depth++) {
        const jobs: CandidateJob<DepthContext>[] = [];
        const parentOf: Beam[] = [];
        for (const beam of beams) {
          const refinements = candidateList<DepthContext>(
            await this.expand(beam.branch.path, depth, { signal: run.scope.signal }),
            'expand()',
            { allowEmpty: true },
          );
          for (const candidate of refinements) {
            parentOf.push(beam);
            jobs.push(this.job(run, beam.branch, candidate, jobs.length, depth, beam.result.branchIndex));
          }
        }
        if (jobs.length === 0) break;
        const children = await this.runLevel(run, jobs);
        all.push(...children.map((s) => s.result));
        const kept = this.survivors(children);
        if (kept.length === 0 && run.scope.kind === 'timeout') {
          await abortAllBut(children, []);
          break;
        }
        const next = kept.map((s) => {
          const parent = parentOf[s.result.branchIndex];
          return { branch: s.branch!, result: s.result, chain: [...parent.chain, s.branch!] };
        });
        await abortAllBut(children, next);
        for (const beam of beams) {
          if (!next.some((n) => n.chain.includes(beam.branch))) await beam.branch.abort();
        }
        beams = next;
      }
      return this.commitBest(run, beams, all);
    });
  }

  private job(
    run: RunContext,
    parent: BranchTarget,
    candidate: Strategy,
    index: number,
    depth: number,
    parentBeam: number | undefined,
  ): CandidateJob<DepthContext> {
    return {
      parent,
      name: `beam_${depth}_${index}`,
      index,
      candidate,
      extra: { depth },
      scope: run.scope,
      scorer: strategyScorer(this.evaluate),
      annotate: parentBeam === undefined ? { depth } : { depth, parent: parentBeam },
    };
  }

  private runLevel(run: RunContext, jobs: CandidateJob<DepthContext>[]): Promise<Settled[]> {
    return Promise.all(jobs.map((job) => runCandidate(run, job)));
  }

  /** The top `beamWidth` open successes, best first; equal scores keep index order. */
  private survivors(settled: Settled[]): Settled[] {
    return settled
      .filter((s) => s.result.success && s.branch)
      .sort((a, b) => b.result.score - a.result.score || a.result.branchIndex - b.result.branchIndex)
      .slice(0, this.beamWidth);
  }

  /** Aborts every branch not on the best beam's chain, then commits that chain from the leaf up. */
  private async commitBest(run: RunContext, beams: Beam[], all: SpeculationResult[]): Promise<SpeculationOutcome> {
    const best = beams[0];
    if (!best) return outcome(null, all);
    for (const beam of beams.slice(1)) {
      for (const branch of [...beam.chain].reverse()) {
        if (!best.chain.includes(branch)) await branch.abort();
      }
    }
    if (!run.mayCommit) return outcome(null, all);
    try {
      for (const branch of [...best.chain].reverse()) await branch.commit();
    } catch (err) {
      best.result.success = false;
      best.result.exception = err;
      for (const branch of best.chain) await branch.abort().catch(() => {});
      return outcome(null, all);
    }
    return outcome(best.result, all);
  }
}

/** Aborts the open branches of `settled` that are not kept as beams. */
async function abortAllBut(settled: Settled[], keep: Beam[]): Promise<void> {
  for (const s of settled) {
    if (s.branch && !keep.some((b) => b.branch === s.branch)) {
      await s.branch.abort();
      s.branch = null;
    }
  }
}
