/**
 * `branch.spawn(cmd, args, opts)` / `branch.exec(...)`: a tinyexec-style
 * convenience over BranchContext. The subprocess is awaitable and resolves
 * with `{ stdout, stderr, exitCode, signal, ... }`; a non-zero exit is a
 * result, not an error, unless `throwOnError` is set.
 */
import type { Readable } from 'node:stream';
import { ArgumentError } from '../base/errors.ts';
import { Branch } from '../core/branch.ts';
import { BranchContext, failure, type ProcessOutcome } from './context.ts';
import type { BranchContextOptions } from './options.ts';

export interface ExecOptions extends Omit<BranchContextOptions, 'workspace' | 'stdio'> {
  /** Written to the child's stdin, which is then closed. Default: stdin is empty. */
  input?: string | Buffer;
  /** Reject with ProcessBranchError on a non-zero exit, a signal or a timeout. Default false. */
  throwOnError?: boolean;
}

export interface ExecResult {
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Non-zero exit, killed by a signal, timed out, aborted, or could not start. */
  failed: boolean;
  timedOut: boolean;
  aborted: boolean;
  sandboxed: boolean;
  durationMs: number;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

/** A running command: `await` it for the result; `abort()` or `await using` ends its whole tree. */
export class BranchSubprocess implements PromiseLike<ExecResult>, AsyncDisposable {
  readonly context: BranchContext<void>;
  readonly command: string;
  private readonly started = Date.now();
  private readonly chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  private readonly throwOnError: boolean;
  private resultPromise: Promise<ExecResult> | null = null;

  constructor(workspace: BranchContextOptions['workspace'], cmd: string, args: readonly string[], opts: ExecOptions) {
    if (typeof cmd !== 'string' || cmd === '') {
      throw new ArgumentError('command must be a non-empty string', { argument: 'command' });
    }
    if (!Array.isArray(args)) throw new ArgumentError('args must be an array of strings', { argument: 'args' });
    const { input, throwOnError, ...rest } = opts;
    if (input !== undefined && typeof input !== 'string' && !Buffer.isBuffer(input)) {
      throw new ArgumentError('input must be a string or a Buffer', { argument: 'input' });
    }
    this.throwOnError = throwOnError ?? false;
    this.command = [cmd, ...args].map(quote).join(' ');
    this.context = new BranchContext<void>([cmd, ...args], {
      ...rest,
      workspace,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    this.context.stdout?.on('data', (c: Buffer) => this.chunks.stdout.push(c));
    this.context.stderr?.on('data', (c: Buffer) => this.chunks.stderr.push(c));
    if (input !== undefined && this.context.stdin) {
      this.context.stdin.on('error', () => {}); // the child may exit without reading it all
      this.context.stdin.end(input);
    }
  }

  get pid(): number {
    return this.context.pid;
  }
  get stdout(): Readable | null {
    return this.context.stdout;
  }
  get stderr(): Readable | null {
    return this.context.stderr;
  }

  abort(options?: { timeout?: number }): Promise<void> {
    return this.context.abort(options);
  }

  // biome-ignore lint/suspicious/noThenProperty: an awaitable subprocess is the tinyexec/execa idiom.
  then<R1 = ExecResult, R2 = never>(
    onFulfilled?: ((value: ExecResult) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.resultPromise ??= this.collect();
    return this.resultPromise.then(onFulfilled, onRejected);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.context.abort();
  }

  private async collect(): Promise<ExecResult> {
    const outcome: ProcessOutcome = await this.context.settled;
    const result: ExecResult = {
      command: this.command,
      stdout: Buffer.concat(this.chunks.stdout).toString('utf8'),
      stderr: Buffer.concat(this.chunks.stderr).toString('utf8'),
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      failed:
        outcome.exitCode !== 0 ||
        outcome.signal !== null ||
        outcome.timedOut ||
        outcome.aborted ||
        outcome.startError !== null,
      timedOut: outcome.timedOut,
      aborted: outcome.aborted,
      sandboxed: this.context.sandboxed,
      durationMs: Date.now() - this.started,
    };
    if (this.throwOnError && result.failed) {
      const why = outcome.startError
        ? `could not start: ${outcome.startError.message}`
        : outcome.timedOut
          ? 'timed out'
          : outcome.signal
            ? `was killed by ${outcome.signal}`
            : `exited with code ${outcome.exitCode}`;
      const err = failure(`command ${this.command} ${why}`, {
        exitCode: result.exitCode,
        signal: result.signal,
        stderr: result.stderr.slice(-16 * 1024),
      });
      Object.assign(err, { result });
      throw err;
    }
    return result;
  }
}

/** Starts `cmd args` in the branch (sandboxed where possible). */
export function spawnIn(
  workspace: Branch | string,
  cmd: string,
  args: readonly string[] = [],
  opts: ExecOptions = {},
): BranchSubprocess {
  return new BranchSubprocess(workspace, cmd, args, opts);
}

/** Runs `cmd args` in the branch to completion and returns its output. */
export function execIn(
  workspace: Branch | string,
  cmd: string,
  args: readonly string[] = [],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  return Promise.resolve(spawnIn(workspace, cmd, args, opts));
}

// `branch.spawn` and `branch.exec` belong to the process layer, which sits above core: it installs
// them on Branch here (core only declares them), so core never loads process. Loading the package
// (index) installs them.
Branch.prototype.spawn = function spawn(this: Branch, cmd, args, options) {
  return spawnIn(this, cmd, args, options);
};
Branch.prototype.exec = function exec(this: Branch, cmd, args, options) {
  return execIn(this, cmd, args, options);
};
