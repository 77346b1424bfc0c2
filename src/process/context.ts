/**
 * BranchContext: runs a command or a module function in a child process
 * that works in a branch, and that `abort()` removes completely.
 *
 * Node cannot fork its heap, so the child is born in the sandbox instead: the
 * native launcher (or, downgraded, a plain spawn) runs the command, or runs
 * `node -e RUNNER_SOURCE`, which imports the module and calls the export. The
 * return value travels back over Node's IPC channel, which has no size limit
 * and cannot deadlock on a full pipe: both ends are event-driven.
 */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ArgumentError, ForkError, ProcessBranchError, TimeoutError } from '../base/errors.ts';
import { showNoticeOnce } from '../core/notice.ts';
import { type LimitsReport, prepareLimits, removeCgroup, wrapInCgroup } from './limits.ts';
import { CALL_MESSAGE, isResultMessage, type RemoteError, type ResultMessage, RUNNER_SOURCE } from './module-child.ts';
import {
  type BranchContextOptions,
  type NormalizedOptions,
  type NormalizedTarget,
  normalizeOptions,
  normalizeTarget,
} from './options.ts';
import { childPath, type Plan, planExecution, resolveProgram, type Started, startProcess } from './sandbox.ts';
import {
  CONTEXT_MARKER,
  childrenOf,
  isDead,
  markedProcesses,
  markerFor,
  signalQuietly,
  waitUntilDead,
} from './tree.ts';

/** How a context ended; `settled` resolves with it and never rejects. */
export interface ProcessOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Killed by `abort()` or the `signal` option. */
  aborted: boolean;
  /** Killed because the `timeout` option expired. */
  timedOut: boolean;
  /** The sandbox or the process could not be started. */
  startError: Error | null;
  /** The module function's result, if it reported one. */
  result: ResultMessage | null;
}

/** ProcessBranchError with the details of the failed child. */
export type ProcessFailure = ProcessBranchError & {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last bytes of the child's stderr (when it was piped). */
  stderr: string;
  /** The error the module function threw (name, message, stack), if any. */
  remoteError?: RemoteError;
};

const STDERR_TAIL = 16 * 1024;
const live = new Set<BranchContext>();
let exitHookInstalled = false;

function defaultNotice(message: string): void {
  showNoticeOnce(`branching: ${message}`);
}

/** Parent dies (normally or by an exception): no orphaned sandboxes. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const ctx of live) ctx.killNow();
  });
}

/** Descriptors this process inherited without close-on-exec: they would leak into every child. */
function leakedFds(): number[] {
  const fds: number[] = [];
  try {
    for (const name of readdirSync('/proc/self/fd')) {
      const fd = Number(name);
      if (fd <= 2) continue;
      try {
        const flags = /flags:\s*([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
        if (flags && (Number.parseInt(flags[1], 8) & 0o2000000) === 0) fds.push(fd);
      } catch {
        // closed meanwhile (the readdir's own descriptor)
      }
    }
  } catch {
    // no /proc: nothing we can enumerate
  }
  return fds;
}

function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

export function failure(
  message: string,
  details: { exitCode: number | null; signal: NodeJS.Signals | null; stderr: string; code?: string },
  cause?: unknown,
  Kind: typeof ProcessBranchError = ProcessBranchError,
): ProcessFailure {
  const err = new Kind(message, { code: details.code, cause }) as ProcessFailure;
  err.exitCode = details.exitCode;
  err.signal = details.signal;
  err.stderr = details.stderr;
  return err;
}

function rebuildRemoteError(e: RemoteError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  if (e.code !== undefined) (err as NodeJS.ErrnoException).code = e.code as string;
  return err;
}

export class BranchContext<T = unknown> implements AsyncDisposable {
  /** The spawned process: the target itself, or (sandboxed) the launcher that runs it. */
  readonly pid: number;
  /** True when the child runs in the namespace sandbox. */
  readonly sandboxed: boolean;
  /** Why it runs without a sandbox (a downgrade), or null. */
  readonly downgradeReason: string | null;
  /** The workspace directory as the child sees it (the project's own path for a sandboxed branch). */
  readonly path: string;
  /** The child's private TMPDIR (removed when it ends). */
  readonly tmpDir: string;
  /** Whether the resource limits could be applied, and why not. */
  readonly limits: LimitsReport;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves when the child and every process it started are gone; never rejects. */
  readonly settled: Promise<ProcessOutcome>;

  private readonly child: ChildProcess;
  private readonly id = randomBytes(12).toString('hex');
  private readonly isModule: boolean;
  private readonly timeoutMs: number | undefined;
  private exitCode: number | null = null;
  private signalCode: NodeJS.Signals | null = null;
  private exited = false;
  private aborted = false;
  private timedOut = false;
  private startError: Error | null = null;
  private result: ResultMessage | null = null;
  private stderrTail = '';
  private abortPromise: Promise<void> | null = null;
  private readonly cleanups: Array<() => void> = [];
  private readonly exitWaiters: Array<() => void> = [];

  constructor(target: readonly string[] | import('./options.ts').ModuleTarget, options: BranchContextOptions) {
    const t = normalizeTarget(target);
    const o = normalizeOptions(options);
    this.isModule = t.kind === 'module';
    this.timeoutMs = o.timeout;
    this.tmpDir = mkdtempSync(join(tmpdir(), 'branching-ctx-'));
    const limits = prepareLimits(o.limits, this.id);
    this.limits = limits.report;
    this.cleanups.push(() => removeCgroup(limits.cgroup));
    const { plan, started } = this.launch(t, o, limits.cgroup);
    this.sandboxed = plan.sandboxed;
    this.downgradeReason = plan.downgradeReason;
    this.path = plan.sandboxed ? o.mountAt : o.source;
    this.child = started.child;
    this.pid = this.child.pid ?? -1;
    this.stdin = this.child.stdin;
    this.stdout = this.child.stdout;
    this.stderr = this.child.stderr;
    if (plan.downgradeReason) this.announceDowngrade(o, plan.downgradeReason);
    this.drain();
    started.status.catch((err: Error) => {
      this.startError ??= err;
    });
    if (t.kind === 'module') this.callModule(t, o, plan.sandboxed);
    if (o.branch) this.cleanups.push(o.branch.retain(`process ${this.pid}`));
    live.add(this);
    installExitHook();
    this.settled = this.watch();
    if (o.timeout !== undefined) this.armTimeout(o.timeout);
    if (o.signal) this.followSignal(o.signal);
  }

  /** Plans the execution and spawns the child; if either fails, the cgroup and TMPDIR go with it. */
  private launch(t: NormalizedTarget, o: NormalizedOptions, cgroup: string | null): { plan: Plan; started: Started } {
    try {
      const plan = planExecution(o, this.tmpDir);
      const path = plan.sandboxed ? o.mountAt : o.source;
      const env = this.environment(o);
      const program =
        t.kind === 'module' ? process.execPath : resolveProgram(t.file, o, plan.sandboxed, env.PATH ?? undefined);
      const args = t.kind === 'module' ? ['-e', RUNNER_SOURCE] : t.args;
      const stdio = this.stdioFor(o);
      const started = startProcess(plan, program, args, {
        cwd: plan.sandboxed ? o.source : path,
        env,
        stdio,
        wrap: (p, a) => wrapInCgroup(cgroup, p, a),
      });
      return { plan, started };
    } catch (err) {
      removeCgroup(cgroup);
      rmSync(this.tmpDir, { recursive: true, force: true });
      throw err;
    }
  }

  private announceDowngrade(o: NormalizedOptions, reason: string): void {
    const message = `process isolation downgraded to a plain child process in ${o.source}: ${reason}`;
    (o.onNotice ?? (o.branch ? (m: string) => o.branch?.notice(m) : defaultNotice))(message);
  }

  /** Sends a module target its call over IPC and keeps the first result message it answers with. */
  private callModule(t: Extract<NormalizedTarget, { kind: 'module' }>, o: NormalizedOptions, sandboxed: boolean): void {
    this.child.on('message', (message: unknown) => {
      if (this.result === null && isResultMessage(message)) this.result = message;
    });
    this.child.send(
      {
        type: CALL_MESSAGE,
        module: childPath(t.module, o, sandboxed),
        export: t.exportName,
        args: t.withPath ? [this.path, ...t.args] : t.args,
      },
      (err) => {
        if (err) this.startError ??= err; // the child died before it could take the call
      },
    );
  }

  private armTimeout(ms: number): void {
    const timer = setTimeout(() => {
      this.timedOut = true;
      void this.abort();
    }, ms);
    this.cleanups.push(() => clearTimeout(timer));
  }

  private followSignal(signal: AbortSignal): void {
    const onAbort = () => {
      this.aborted = true;
      void this.abort();
    };
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      this.cleanups.push(() => signal.removeEventListener('abort', onAbort));
    }
  }

  /** Starts one context per target, each in its workspace; disposing the group aborts them all. */
  static create<T = unknown>(
    targets: ReadonlyArray<readonly string[] | import('./options.ts').ModuleTarget>,
    workspaces: ReadonlyArray<BranchContextOptions['workspace']>,
    options: Omit<BranchContextOptions, 'workspace'> = {},
  ): BranchContextGroup<T> {
    if (!Array.isArray(targets)) throw new ArgumentError('targets must be an array', { argument: 'targets' });
    if (!Array.isArray(workspaces) || workspaces.length !== targets.length) {
      throw new ArgumentError(`workspaces must be an array of the same length as targets (${targets.length})`, {
        argument: 'workspaces',
      });
    }
    const group = new BranchContextGroup<T>();
    try {
      for (const [i, target] of targets.entries()) {
        group.push(new BranchContext<T>(target, { ...options, workspace: workspaces[i] }));
      }
    } catch (err) {
      for (const ctx of group) ctx.killNow();
      throw err;
    }
    return group;
  }

  /** The child (sandboxed: the launcher) has not exited yet. */
  get alive(): boolean {
    return !this.exited;
  }

  /**
   * Waits for the end. Resolves with the module function's return value (a
   * command: undefined). Rejects with ProcessBranchError on failure (exit
   * code, signal, stderr tail, the function's error), TimeoutError when
   * `timeout` elapses first (the child keeps running: abort it, or let
   * `await using` do it), or the sandbox's NamespaceError/MountError.
   */
  async wait({ timeout }: { timeout?: number } = {}): Promise<T> {
    if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0 && Number.isFinite(timeout))) {
      throw new ArgumentError('timeout must be a non-negative number of milliseconds', { argument: 'timeout' });
    }
    let outcome: ProcessOutcome;
    if (timeout === undefined) outcome = await this.settled;
    else {
      const timer = delay(timeout);
      const raced = await Promise.race([this.settled, timer.promise.then(() => null)]);
      timer.cancel();
      if (raced === null) {
        throw new TimeoutError(`process ${this.pid} did not finish within ${timeout} ms`, {
          code: 'ERR_BRANCHING_TIMEOUT',
        });
      }
      outcome = raced;
    }
    return this.interpret(outcome);
  }

  /**
   * TERM to every process of the context, then KILL to whatever is left
   * after `timeout` ms. Resolves once they are all gone. Idempotent.
   */
  abort({ timeout = 5000 }: { timeout?: number } = {}): Promise<void> {
    if (!(typeof timeout === 'number' && timeout >= 0)) {
      throw new ArgumentError('timeout must be a non-negative number of milliseconds', { argument: 'timeout' });
    }
    if (this.exited) return this.settled.then(() => {});
    if (!this.timedOut) this.aborted = true;
    this.abortPromise ??= this.terminate(timeout);
    return this.abortPromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
  }

  /** @internal Synchronous SIGKILL of everything (process exit, failed create). */
  killNow(): void {
    if (this.exited) return;
    this.aborted = true;
    this.signalTree('SIGKILL');
  }

  // ---- internals ----

  private environment(o: NormalizedOptions): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(o.env)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    Object.assign(env, {
      // A caller that passes its own TMPDIR (e.g. runs meant to share one) keeps it; it must be writable.
      TMPDIR: o.env.TMPDIR ?? this.tmpDir,
      [CONTEXT_MARKER]: markerFor(this.id, process.env[CONTEXT_MARKER]),
    });
    if (o.closeFds) env.BRANCHING_CLOSE_FDS = '1';
    else delete env.BRANCHING_CLOSE_FDS;
    return env;
  }

  /** stdio entries; with closeFds, /dev/null over every leaked descriptor (the runner then closes them). */
  private stdioFor(o: NormalizedOptions): Exclude<StdioOptions, string> {
    const stdio: Array<Exclude<StdioOptions, string>[number]> = [...o.stdio];
    if (this.isModule) stdio.push('ipc');
    if (o.closeFds) {
      const leaked = leakedFds().filter((fd) => fd >= stdio.length);
      if (leaked.length > 0) {
        const devNull = openSync('/dev/null', 'r+');
        this.cleanups.push(() => closeSync(devNull));
        const top = Math.max(...leaked);
        while (stdio.length <= top) stdio.push(leaked.includes(stdio.length) ? devNull : 'ignore');
      }
    }
    return stdio;
  }

  /** Piped output is always read, so a chatty child never blocks on a full pipe; stderr's tail is kept. */
  private drain(): void {
    this.stdout?.on('data', () => {});
    this.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
  }

  private async watch(): Promise<ProcessOutcome> {
    await new Promise<void>((resolvePromise) => {
      this.child.once('error', (err) => {
        this.startError ??= err;
        if (this.child.pid === undefined) resolvePromise(); // never started: no exit event comes
      });
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.signalCode = signal;
        resolvePromise();
      });
    });
    this.exited = true;
    for (const w of this.exitWaiters.splice(0)) w();
    // Whatever the target left behind dies with it.
    await this.sweep();
    await this.streamsClosed();
    live.delete(this);
    for (const c of this.cleanups.splice(0)) c();
    rmSync(this.tmpDir, { recursive: true, force: true });
    return {
      exitCode: this.exitCode,
      signal: this.signalCode,
      aborted: this.aborted,
      timedOut: this.timedOut,
      startError: this.startError,
      result: this.result,
    };
  }

  /** Kills the marked survivors until none is left (a process may fork while we scan). */
  private async sweep(): Promise<void> {
    const killed = new Set<number>();
    for (let round = 0; round < 20; round++) {
      const survivors = markedProcesses(this.id).filter((p) => !killed.has(p) || !isDead(p));
      if (survivors.length === 0) break;
      for (const pid of survivors) {
        signalQuietly(pid, 'SIGKILL');
        killed.add(pid);
      }
      await waitUntilDead(survivors, 1000);
    }
  }

  /** Output and IPC end once the tree is dead; bounded, in case an escaped process still holds a pipe. */
  private async streamsClosed(): Promise<void> {
    const ends: Promise<void>[] = [];
    for (const s of [this.stdout, this.stderr]) {
      if (s && !s.destroyed && !s.readableEnded) ends.push(new Promise((r) => s.once('close', () => r())));
    }
    if (this.isModule && this.child.connected) ends.push(new Promise((r) => this.child.once('disconnect', () => r())));
    if (ends.length === 0) return;
    const limit = delay(2000);
    await Promise.race([Promise.all(ends), limit.promise]);
    limit.cancel();
    if (this.child.connected) this.child.disconnect();
  }

  private exitedPromise(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  /**
   * One signal to every process of the context. Sandboxed, SIGKILL goes to
   * the namespace's init (its death kills the whole namespace) rather than to
   * the launcher, which must live on to reap it: no zombie is left behind.
   */
  private signalTree(signal: NodeJS.Signals): void {
    const marked = markedProcesses(this.id);
    if (this.sandboxed && signal === 'SIGKILL') {
      const inits = childrenOf(this.pid);
      for (const pid of inits) signalQuietly(pid, 'SIGKILL');
      for (const pid of marked) if (pid !== this.pid) signalQuietly(pid, 'SIGKILL');
      if (inits.length === 0) signalQuietly(this.pid, 'SIGKILL'); // still setting up: nothing to reap yet
      return;
    }
    signalQuietly(-this.pid, signal);
    for (const pid of marked) signalQuietly(pid, signal);
  }

  private async terminate(timeout: number): Promise<void> {
    if (this.pid > 0) {
      this.signalTree('SIGTERM');
      const grace = delay(timeout);
      await Promise.race([this.exitedPromise(), grace.promise]);
      grace.cancel();
      // Escalate; repeat in case the launcher was between fork and exec when we looked.
      while (!this.exited) {
        this.signalTree('SIGKILL');
        const pause = delay(200);
        await Promise.race([this.exitedPromise(), pause.promise]);
        pause.cancel();
        if (!this.exited && this.sandboxed) signalQuietly(this.pid, 'SIGKILL');
      }
    }
    await this.settled;
  }

  private interpret(outcome: ProcessOutcome): T {
    const details = { exitCode: outcome.exitCode, signal: outcome.signal, stderr: this.stderrTail };
    const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
    if (outcome.timedOut) {
      throw new TimeoutError(`process ${this.pid} exceeded its timeout of ${this.timeoutMs} ms and was killed`);
    }
    if (outcome.aborted) {
      throw failure(`process ${this.pid} was aborted`, { ...details, code: 'ERR_BRANCH_PROCESS_ABORTED' });
    }
    if (outcome.startError) {
      if (outcome.startError instanceof ProcessBranchError) throw outcome.startError;
      throw failure(
        `process could not be started: ${outcome.startError.message}`,
        details,
        outcome.startError,
        ForkError,
      );
    }
    const result = outcome.result;
    if (result && !result.ok) {
      const remote = result.error;
      const err = failure(
        `the target threw ${remote.name}: ${remote.message}`,
        { ...details, code: 'ERR_BRANCH_PROCESS_THREW' },
        rebuildRemoteError(remote),
      );
      err.remoteError = remote;
      throw err;
    }
    if (outcome.exitCode !== 0 || outcome.signal) {
      const tail = this.stderrTail.trim() ? `\n${this.stderrTail.trim().split('\n').slice(-10).join('\n')}` : '';
      throw failure(`process ${this.pid} ${how}${tail}`, details);
    }
    if (this.isModule) {
      if (!result) throw failure(`process ${this.pid} exited without reporting a result`, details);
      return result.value as T;
    }
    return undefined as T;
  }
}

/** The contexts of `BranchContext.create`; `await using` aborts every one of them. */
export class BranchContextGroup<T = unknown> extends Array<BranchContext<T>> implements AsyncDisposable {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  /** Waits for all; rejects with the first failure (the others keep running until aborted). */
  waitAll(options?: { timeout?: number }): Promise<T[]> {
    return Promise.all(this.map((ctx) => ctx.wait(options)));
  }

  async abortAll(options?: { timeout?: number }): Promise<void> {
    await Promise.all(this.map((ctx) => ctx.abort(options)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.abortAll();
  }
}
