import { performance } from 'node:perf_hooks';
import { ArgumentError, TimeoutError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import type {
  BranchTarget,
  Candidate,
  CandidateContext,
  CandidateRunner,
  SpeculationOutcome,
  SpeculationResult,
} from './types.ts';

/**
 * Why a scope was cancelled. `lost`: another candidate won (results carry no
 * exception). `timeout` and `signal`: results carry the TimeoutError or the
 * caller's reason. `stopped`: the pattern itself failed (a judge or expand
 * hook threw) and is winding down.
 */
export type CancelKind = 'lost' | 'timeout' | 'signal' | 'stopped';

/**
 * A cancellable region: a run, a level, a wave. Cancelling a scope aborts
 * its signal, which every candidate in it sees; child scopes follow their
 * parent. An optional timer cancels it with a TimeoutError.
 */
export class CancelScope {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private unlink: (() => void) | undefined;
  kind: CancelKind | null = null;
  reason: unknown = null;

  constructor(parent?: CancelScope | AbortSignal, timeoutMs?: number, what = 'the run') {
    if (parent instanceof CancelScope) {
      if (parent.cancelled) this.cancel(parent.kind!, parent.reason);
      else this.follow(parent.signal, () => this.cancel(parent.kind!, parent.reason));
    } else if (parent) {
      if (parent.aborted) this.cancel('signal', parent.reason);
      else this.follow(parent, () => this.cancel('signal', parent.reason));
    }
    if (timeoutMs !== undefined && !this.cancelled) {
      this.timer = setTimeout(
        () => this.cancel('timeout', new TimeoutError(`${what} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get cancelled(): boolean {
    return this.kind !== null;
  }

  /** The first cancellation wins; later ones are ignored. */
  cancel(kind: CancelKind, reason: unknown = null): void {
    if (this.kind !== null) return;
    this.kind = kind;
    this.reason = reason;
    this.dispose();
    this.controller.abort(reason ?? new Error('cancelled: another candidate won'));
  }

  /** Stops the timer and detaches from the parent (idempotent). */
  dispose(): void {
    clearTimeout(this.timer);
    this.unlink?.();
    this.unlink = undefined;
  }

  private follow(signal: AbortSignal, onAbort: () => void): void {
    signal.addEventListener('abort', onAbort, { once: true });
    this.unlink = () => signal.removeEventListener('abort', onAbort);
  }
}

/** A counting semaphore: at most `max` holders; waiters give up when their signal aborts. */
export class Limiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    if (this.active < this.max) {
      this.active++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        const at = this.waiters.indexOf(grant);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve(false);
      };
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        this.active++;
        resolve(true);
      };
      this.waiters.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    this.active--;
    this.waiters.shift()?.();
  }
}

/** A chain that runs decisions (commit or abort) one at a time, in arrival order. */
export class Serializer {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const next = this.tail.then(step);
    this.tail = next.catch(() => {});
    return next;
  }
}

/** Everything one `run()` shares: its scope, slots, runner, and the branches it must clean up. */
export class RunContext {
  readonly limiter: Limiter;
  private readonly open: Branch[] = [];
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    readonly scope: CancelScope,
    readonly runner: CandidateRunner,
    readonly cancelGrace: number,
    maxParallel: number | undefined,
  ) {
    this.limiter = new Limiter(maxParallel ?? Number.POSITIVE_INFINITY);
  }

  /** Committing is allowed unless the caller aborted or the pattern is stopping. */
  get mayCommit(): boolean {
    return this.scope.kind !== 'signal' && this.scope.kind !== 'stopped';
  }

  track(branch: Branch): Branch {
    this.open.push(branch);
    return branch;
  }

  watch<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const forget = () => this.inflight.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** Stops what still runs, waits for it to settle, and aborts every branch still open (deepest first). */
  async cleanUp(error?: unknown): Promise<void> {
    if (error !== undefined) this.scope.cancel('stopped', error);
    this.scope.dispose();
    await Promise.allSettled([...this.inflight]);
    for (const branch of this.open.reverse()) {
      if (branch.state === 'open') await branch.abort().catch(() => {});
    }
  }
}

export function emptyResult(index: number, extra: Partial<SpeculationResult> = {}): SpeculationResult {
  return {
    branchIndex: index,
    success: false,
    score: 0,
    returnValue: undefined,
    exception: null,
    branchPath: null,
    path: null,
    cancelled: false,
    durationMs: 0,
    ...extra,
  };
}

/** The candidate's own verdict: `true`/`false`, or `[ok, score]`. Anything else is a bug in the candidate. */
export function interpretReturn(value: unknown, index: number): { ok: boolean; score: number | undefined } {
  if (typeof value === 'boolean') return { ok: value, score: undefined };
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'boolean' &&
    typeof value[1] === 'number' &&
    !Number.isNaN(value[1])
  ) {
    return { ok: value[0], score: value[1] };
  }
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new ArgumentError(`candidate ${index} returned ${shown}; expected a boolean or [ok, score]`, {
    argument: 'candidates',
    code: 'ERR_BRANCHING_CANDIDATE_RETURN',
  });
}

/** How a settled candidate's score is computed (patterns differ: BestOfN and TreeOfThoughts use an evaluator). */
export type Scorer = (
  branch: Branch,
  verdict: { ok: boolean; score: number | undefined },
  ctx: CandidateContext,
) => Promise<number> | number;

export const defaultScore: Scorer = (_b, verdict) => verdict.score ?? 0;

export interface CandidateJob<C extends CandidateContext> {
  /** Where the branch is created. */
  parent: BranchTarget;
  name: string;
  index: number;
  candidate: Candidate<C>;
  /** Pattern-specific context fields (attempt, feedback, depth, wave...). */
  extra: Omit<C, keyof CandidateContext>;
  /** The scope the candidate runs in (a level's or wave's, or the run's). */
  scope: CancelScope;
  scorer?: Scorer;
  /** Fields copied into the result (depth, parent, wave). */
  annotate?: Partial<SpeculationResult>;
  /** Keep the branch of a failed candidate open (Reflexion critiques it first). */
  keepFailed?: boolean;
  /**
   * A success keeps its maxParallel slot until the caller calls
   * `settled.release()` (first-wins groups: no queued candidate starts while
   * a winner is being committed, only to be cancelled).
   */
  holdSlotOnSuccess?: boolean;
}

export interface Settled {
  result: SpeculationResult;
  /** The branch, still open when the candidate succeeded (or failed with keepFailed); else null. */
  branch: Branch | null;
  /** Frees the candidate's slot if it still holds one (see `holdSlotOnSuccess`); idempotent. */
  release(): void;
}

type Race = { kind: 'value'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'ignored' };

/** Waits for `work`, but no longer than `grace` ms after `signal` aborts. */
function settleWithin(work: Promise<unknown>, signal: AbortSignal, grace: number): Promise<Race> {
  return new Promise<Race>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(() => resolve({ kind: 'ignored' }), grace);
    };
    const done = (race: Race) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(race);
    };
    work.then(
      (value) => done({ kind: 'value', value }),
      (error) => done({ kind: 'error', error }),
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A cancelled result carries the scope's reason (null when it lost), unless it ignored its signal. */
function markCancelled(result: SpeculationResult, scope: CancelScope): void {
  result.cancelled = true;
  result.success = false;
  if (!isIgnoredCancel(result.exception)) result.exception = scope.reason;
}

function isIgnoredCancel(error: unknown): boolean {
  return error instanceof TimeoutError && error.code === 'ERR_BRANCHING_CANCEL_IGNORED';
}

/**
 * Runs one candidate in a fresh branch of `job.parent`: waits for a slot,
 * creates the branch, runs and scores the candidate, and reports it. A
 * candidate whose scope was cancelled before it settled is reported
 * cancelled, whatever it returned. Failed candidates' branches are aborted
 * here; a successful one's branch is handed back open for the pattern to
 * commit or abort.
 */
export function runCandidate<C extends CandidateContext>(run: RunContext, job: CandidateJob<C>): Promise<Settled> {
  return run.watch(runCandidateInner(run, job));
}

async function runCandidateInner<C extends CandidateContext>(run: RunContext, job: CandidateJob<C>): Promise<Settled> {
  const result = emptyResult(job.index, job.annotate);
  const { scope } = job;
  const noSlot = () => {};
  if (!(await run.limiter.acquire(scope.signal))) {
    markCancelled(result, scope);
    return { result, branch: null, release: noSlot };
  }
  let held = true;
  const release = () => {
    if (held) run.limiter.release();
    held = false;
  };
  let settled: Settled;
  try {
    settled = await runInSlot(run, job, result, release);
  } catch (err) {
    release();
    throw err;
  }
  if (!(job.holdSlotOnSuccess && settled.branch && result.success)) release();
  return settled;
}

async function runInSlot<C extends CandidateContext>(
  run: RunContext,
  job: CandidateJob<C>,
  result: SpeculationResult,
  release: () => void,
): Promise<Settled> {
  const { scope } = job;
  let branch: Branch;
  try {
    branch = run.track(await job.parent.branch(job.name, { onSuccess: null, onError: null }));
  } catch (err) {
    result.exception = err;
    return { result, branch: null, release };
  }
  result.branchPath = branch.branchPath;
  result.path = branch.path;
  if (scope.cancelled) {
    markCancelled(result, scope);
    return { result, branch: await abortQuietly(branch), release };
  }
  const ctx = { ...job.extra, signal: scope.signal, index: job.index, branchPath: branch.branchPath } as C;
  const started = performance.now();
  const work = (async () => {
    const value = await run.runner.run(job.candidate, branch, ctx);
    result.returnValue = value;
    const verdict = interpretReturn(value, job.index);
    const score = verdict.ok ? await (job.scorer ?? defaultScore)(branch, verdict, ctx) : (verdict.score ?? 0);
    if (typeof score !== 'number' || Number.isNaN(score)) {
      throw new ArgumentError(`the score of candidate ${job.index} is ${String(score)}; expected a number`, {
        argument: 'evaluate',
      });
    }
    return { ok: verdict.ok, score };
  })();
  const race = await settleWithin(work, scope.signal, run.cancelGrace);
  result.durationMs = performance.now() - started;
  if (race.kind === 'ignored') {
    work.catch(() => {}); // it may still settle; nobody is listening any more
    result.exception = new TimeoutError(
      `candidate ${job.index} did not stop within ${run.cancelGrace} ms of its cancellation; its branch was aborted under it`,
      { branchPath: branch.branchPath, code: 'ERR_BRANCHING_CANCEL_IGNORED' },
    );
  } else if (race.kind === 'error') {
    result.exception = race.error;
  } else {
    const verdict = race.value as { ok: boolean; score: number };
    result.success = verdict.ok;
    result.score = verdict.score;
  }
  if (scope.cancelled) markCancelled(result, scope);
  if (!result.success && !(job.keepFailed && !result.cancelled)) {
    return { result, branch: await abortQuietly(branch), release };
  }
  return { result, branch, release };
}

/** Aborts a losing branch. A failing abort leaves it open, and the run's cleanUp tries once more. */
async function abortQuietly(branch: Branch): Promise<null> {
  await branch.abort().catch(() => {});
  return null;
}

/** Index of the best successful, still-open candidate: highest score, ties to the lowest index. */
export function pickBest(settled: Settled[]): Settled | null {
  let best: Settled | null = null;
  for (const s of settled) {
    if (!s.result.success || !s.branch) continue;
    if (best === null || s.result.score > best.result.score) best = s;
  }
  return best;
}

/**
 * Commits `chosen` (if allowed) and aborts every other open branch in
 * `settled`. A failed commit is recorded on the result and nothing wins.
 */
export async function commitOne(run: RunContext, settled: Settled[], chosen: Settled | null): Promise<boolean> {
  for (const s of settled) {
    if (s !== chosen && s.branch) s.branch = await abortQuietly(s.branch);
  }
  if (!chosen?.branch) return false;
  const branch = chosen.branch;
  chosen.branch = null;
  if (!run.mayCommit) {
    markCancelled(chosen.result, run.scope);
    await abortQuietly(branch);
    return false;
  }
  try {
    await branch.commit();
    return true;
  } catch (err) {
    chosen.result.success = false;
    chosen.result.exception = err;
    await abortQuietly(branch);
    return false;
  }
}

export function outcome(winner: SpeculationResult | null, allResults: SpeculationResult[]): SpeculationOutcome {
  return { committed: winner !== null, winner, allResults };
}
