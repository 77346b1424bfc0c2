import { ArgumentError } from '../base/errors.ts';
import { Branch } from '../core/branch.ts';
import { Workspace } from '../core/workspace.ts';
import { resolveRunner } from './candidate-runner.ts';
import { CancelScope, RunContext } from './engine.ts';
import type { BranchTarget, CandidateRunner, CommonPatternOptions, SpeculationOutcome } from './types.ts';
import { type CommonSettings, commonSettings } from './validate.ts';

/**
 * The shape every pattern shares: configured in the constructor (bad
 * configuration throws ArgumentError there, before anything is created),
 * then `run(target)` any number of times.
 */
export abstract class Pattern {
  protected readonly settings: CommonSettings;
  protected readonly runner: CandidateRunner;

  protected constructor(options: CommonPatternOptions) {
    this.settings = commonSettings(options);
    this.runner = resolveRunner(options);
  }

  /** Runs the pattern in fresh branches of `target` (a Workspace, or a Branch to explore within it). */
  abstract run(target: BranchTarget): Promise<SpeculationOutcome>;

  /**
   * The Python `branching` API's callable style: `Speculate.callable(candidates, opts)(ws)`.
   * (A lowercase `speculate()` would clash with the patch-level `speculate` of the suite tools.)
   */
  static callable<A extends unknown[], P extends Pattern>(
    this: new (
      ...args: A
    ) => P,
    ...args: A
  ): (target: BranchTarget) => Promise<SpeculationOutcome> {
    const pattern = new this(...args);
    return (target) => pattern.run(target);
  }

  /**
   * Wraps one run: checks the target, sets up the run's scope (the caller's
   * signal and, when `runWideTimeout`, the timeout), and on the way out,
   * whatever happened, stops what still runs and aborts every branch left
   * open. A caller's abort makes the run reject with its reason, unless a
   * winner had already been committed.
   */
  protected async execute(
    target: BranchTarget,
    runWideTimeout: boolean,
    body: (run: RunContext) => Promise<SpeculationOutcome>,
  ): Promise<SpeculationOutcome> {
    checkTarget(target);
    const { signal, timeout, maxParallel, cancelGrace } = this.settings;
    if (signal?.aborted) throw signal.reason;
    const scope = new CancelScope(signal, runWideTimeout ? timeout : undefined);
    const run = new RunContext(scope, this.runner, cancelGrace, maxParallel);
    let result: SpeculationOutcome;
    try {
      result = await body(run);
    } catch (err) {
      await run.cleanUp(err);
      throw err;
    }
    await run.cleanUp();
    if (scope.kind === 'signal' && !result.committed) throw scope.reason;
    return result;
  }
}

function checkTarget(target: unknown): asserts target is BranchTarget {
  if (!(target instanceof Workspace) && !(target instanceof Branch)) {
    throw new ArgumentError('run() needs a Workspace or a Branch to create branches in', { argument: 'target' });
  }
  if (target instanceof Branch && target.state !== 'open') {
    throw new ArgumentError(`cannot run a pattern in branch ${target.branchPath}: it is ${target.state}`, {
      argument: 'target',
      branchPath: target.branchPath,
    });
  }
}
