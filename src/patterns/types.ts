import type { Branch } from '../core/branch.ts';
import type { Workspace } from '../core/workspace.ts';

/** What a candidate reports: success, or success with a score. */
export type CandidateReturn = boolean | readonly [ok: boolean, score: number];

/** What every candidate receives next to its branch directory. */
export interface CandidateContext {
  /**
   * Aborted when the candidate has lost (another one won), timed out, or the
   * caller's signal fired. Stop promptly: a candidate that returns after this
   * is reported `cancelled`, never as a success.
   */
  signal: AbortSignal;
  /** The candidate's index within its group (its `branchIndex`). */
  index: number;
  /** The logical branch path, e.g. `/main/speculate_2`. */
  branchPath: string;
}

/** An in-process candidate: `(path, ctx) => boolean | [ok, score]`, sync or async. */
export type CandidateFn<C extends CandidateContext = CandidateContext> = (
  path: string,
  ctx: C,
) => CandidateReturn | Promise<CandidateReturn>;

/**
 * A candidate named by module and export instead of by closure. The
 * in-process runner imports and calls it; a sandboxed runner can start it in
 * a child process (closures cannot cross a process boundary).
 */
export interface ModuleCandidate {
  /** An absolute path or a `file:` URL of an ES module. */
  module: string;
  /** The export to call (default `default`). */
  export?: string;
}

export type Candidate<C extends CandidateContext = CandidateContext> = CandidateFn<C> | ModuleCandidate;

/** One candidate's outcome. */
export interface SpeculationResult {
  /** The candidate's index within its group (a level, wave or attempt number for multi-stage patterns). */
  branchIndex: number;
  /** It returned success and was not cancelled. */
  success: boolean;
  /** Its score (default 0; patterns that score bare booleans use 1 or 0). */
  score: number;
  /** What the candidate returned (undefined if it threw or never ran). */
  returnValue: unknown;
  /** What it threw, a commit error, a TimeoutError, or the caller's abort reason; null otherwise. */
  exception: unknown;
  /** The logical branch path (`/main/speculate_0`); null if no branch was created. */
  branchPath: string | null;
  /** The branch's working directory while it existed (it is gone once the pattern returns, unless committed). */
  path: string | null;
  /** It was stopped (lost, timed out or aborted) before it finished, or never started. */
  cancelled: boolean;
  /** Time from the start of the candidate to its result, in milliseconds (0 if it never ran). */
  durationMs: number;
  /** Multi-level patterns (TreeOfThoughts, BeamSearch): the level. */
  depth?: number;
  /** BeamSearch: the index (in the previous level) of the beam this candidate refines. */
  parent?: number;
  /** Cascaded: the wave. */
  wave?: number;
}

/** What every pattern returns. */
export interface SpeculationOutcome {
  /** A winner's changes reached the target (the workspace or branch `run` was given). */
  committed: boolean;
  /** The winning candidate, or null. */
  winner: SpeculationResult | null;
  /** Every candidate, in order (for multi-stage patterns, stage by stage). */
  allResults: SpeculationResult[];
}

/** Where a pattern creates its branches: a workspace, or a branch (to explore within it). */
export type BranchTarget = Workspace | Branch;

/** Options that every pattern accepts. */
export interface CommonPatternOptions {
  /** Milliseconds; stragglers are cancelled when it elapses (each pattern says what it bounds). */
  timeout?: number;
  /** At most this many candidates run at once (default: all). */
  maxParallel?: number;
  /** Aborting it cancels every candidate, aborts every branch, and makes `run` reject with its reason. */
  signal?: AbortSignal;
  /** Runs candidates (default: in this process). */
  runner?: CandidateRunner;
  /** Run candidates sandboxed in child processes, through BranchContext. */
  isolateProcesses?: boolean;
  /**
   * How long a cancelled candidate may take to settle (default 5000 ms).
   * Its branch is not removed under it before then; after it, the branch is
   * aborted anyway and the result records that the candidate ignored its signal.
   */
  cancelGrace?: number;
}

/**
 * The execution seam: how a candidate runs against its branch. The default
 * calls it in this process; a sandboxed runner would start it in a child
 * whose filesystem view is the branch, and kill it when `ctx.signal` aborts.
 * `run` resolves with the candidate's raw return value or rejects with what
 * it threw; it should settle soon after `ctx.signal` aborts.
 */
export interface CandidateRunner {
  run<C extends CandidateContext>(candidate: Candidate<C>, branch: Branch, ctx: C): Promise<unknown>;
}
