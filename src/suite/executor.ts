import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { BranchContext } from '../process/context.ts';
import { probeSandbox } from '../sandbox/launcher.ts';
import { SuiteError } from './errors.ts';

/** One run of a test suite (or of any command) for one branch. */
export interface SuiteRequest {
  /** The branch's directory as this process sees it. */
  branchDir: string;
  /** The workspace the branch belongs to. */
  workspaceDir: string;
  /** argv[0] is the program; paths inside refer to `projectPath(...)`. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** Kill the whole process tree after this many ms (0 or undefined: no limit). */
  timeoutMs?: number;
  /** Aborting kills the whole process tree. */
  signal?: AbortSignal;
  /** Host directories the run must be able to write besides the branch (its report, its TMPDIR). */
  writable?: string[];
  /** Called once the process is started, with its pid and process group. */
  onStart?: (info: { pid: number; pgid: number }) => void;
}

export interface SuiteExit {
  /** Exit code, or null when a signal ended the runner. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The timeout killed it. */
  timedOut: boolean;
  /** The abort signal killed it. */
  aborted: boolean;
  durationMs: number;
  pid: number;
  pgid: number;
  /** The last few KiB of stdout and stderr, for error messages. */
  stdoutTail: string;
  stderrTail: string;
}

/** How runs are isolated, as reports state it: sandboxed or not, and why. */
export interface Isolation {
  sandboxed: boolean;
  reason: string;
}

/**
 * How a suite run is executed: ProcessGroupExecutor runs a plain child process
 * in its own process group with cwd = the branch directory; SandboxExecutor
 * runs it in a user+mount+PID namespace with the branch mounted at the
 * project's own path.
 */
export interface SuiteExecutor {
  /** Where the project's files appear to the processes started for this branch (their cwd). */
  projectPath(branchDir: string, workspaceDir: string): string;
  run(request: SuiteRequest): Promise<SuiteExit>;
  /** How its runs are isolated (an executor without it is reported as not sandboxed). */
  isolation?(): Isolation;
}

const TAIL_BYTES = 8192;

function tailCollector(): { push: (chunk: Buffer) => void; text: () => string } {
  let buffer = Buffer.alloc(0);
  return {
    push(chunk) {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length > TAIL_BYTES * 2) buffer = buffer.subarray(buffer.length - TAIL_BYTES);
    },
    text: () => buffer.subarray(Math.max(0, buffer.length - TAIL_BYTES)).toString('utf8'),
  };
}

/**
 * The processes of a process group that are still alive (zombies excluded:
 * where PID 1 does not reap, killed orphans stay zombies, which hold no
 * resources and run no code). Linux only; elsewhere it answers from kill(0).
 */
export function liveProcessesInGroup(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const live: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const group = Number(fields[2]);
    if (group === pgid && state !== 'Z' && state !== 'X') live.push(Number(name));
  }
  return live;
}

/**
 * Process groups still running. Detached groups outlive their parent, so when this process
 * exits (normally, by process.exit or an uncaught error) it kills them; only a SIGKILL of
 * this process can leave them behind (the sandbox executor's PID namespace closes that gap).
 */
const activeGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pgid: number): void {
  activeGroups.add(pgid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of activeGroups) killGroup(group);
  });
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: already gone.
  }
}

/** Waits (bounded) until no live process is left in the group, killing again while any is. */
async function reapGroup(pgid: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (liveProcessesInGroup(pgid).length === 0) return;
    killGroup(pgid);
    // SIGKILL is asynchronous: the kernel tears the processes down shortly; poll the outcome.
    await delay(attempt < 10 ? 5 : 20);
  }
}

/**
 * Runs the suite as a plain child process that leads its own process group
 * (detached), so a timeout or an abort can SIGKILL the whole tree with
 * kill(-pgid). A process that calls setsid() itself escapes the group; the
 * sandbox executor (a PID namespace) closes that gap.
 */
export class ProcessGroupExecutor implements SuiteExecutor {
  projectPath(branchDir: string): string {
    return branchDir;
  }

  isolation(): Isolation {
    return { sandboxed: false, reason: 'a plain process group in the branch directory (ProcessGroupExecutor)' };
  }

  run(request: SuiteRequest): Promise<SuiteExit> {
    const started = performance.now();
    return new Promise<SuiteExit>((resolve, reject) => {
      const [program, ...args] = request.argv;
      const child = spawn(program, args, {
        cwd: request.branchDir,
        env: request.env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stdout = tailCollector();
      const stderr = tailCollector();
      child.stdout.on('data', stdout.push);
      child.stderr.on('data', stderr.push);
      const pgid = child.pid ?? -1;
      let killers: Killers | undefined;
      child.once('error', (err) => {
        killers?.cleanup();
        reject(
          new SuiteError(`cannot start ${JSON.stringify(program)}: ${err.message}`, {
            code: 'ERR_SUITE_SPAWN',
            path: program,
            cause: err,
          }),
        );
      });
      if (pgid <= 0) return; // 'error' follows
      trackGroup(pgid);
      request.onStart?.({ pid: pgid, pgid });
      const armed = armKillers(request, pgid);
      killers = armed;
      const output = boundedOutput(child);
      child.once('exit', async (code, signal) => {
        armed.cleanup();
        await endGroup(pgid, output);
        resolve({
          code,
          signal,
          timedOut: armed.timedOut,
          aborted: armed.aborted,
          durationMs: performance.now() - started,
          pid: pgid,
          pgid,
          stdoutTail: stdout.text(),
          stderrTail: stderr.text(),
        });
      });
    });
  }
}

/** What ended a run early, and how to disarm it once the run is over. */
interface Killers {
  timedOut: boolean;
  aborted: boolean;
  cleanup(): void;
}

/** Kills the group when the request's timeout passes or its signal aborts. */
function armKillers(request: SuiteRequest, pgid: number): Killers {
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    killers.aborted = true;
    killGroup(pgid);
  };
  const killers: Killers = {
    timedOut: false,
    aborted: false,
    cleanup() {
      if (timer) clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    },
  };
  if (request.timeoutMs && request.timeoutMs > 0) {
    timer = setTimeout(() => {
      killers.timedOut = true;
      killGroup(pgid);
    }, request.timeoutMs);
  }
  if (request.signal?.aborted) onAbort();
  else request.signal?.addEventListener('abort', onAbort, { once: true });
  return killers;
}

/** The child's pipes: closed, or given up on and destroyed after a bounded wait. */
function boundedOutput(child: ChildProcessByStdio<null, Readable, Readable>) {
  let closed = false;
  const streamsClosed = new Promise<void>((done) => child.once('close', done)).then(() => {
    closed = true;
  });
  return {
    async finish(): Promise<void> {
      // A process that escaped the group could hold the pipes forever: read the tails for a bounded time.
      if (!closed) await Promise.race([streamsClosed, delay(500)]);
      child.stdout.destroy();
      child.stderr.destroy();
    },
  };
}

/**
 * 'exit' only means the leader is gone: helpers it left (workers, watchers) may still hold the
 * pipes open forever. So on the leader's exit the whole group goes too, then we wait for it.
 */
async function endGroup(pgid: number, output: ReturnType<typeof boundedOutput>): Promise<void> {
  killGroup(pgid);
  await reapGroup(pgid);
  activeGroups.delete(pgid);
  await output.finish();
}

/**
 * Runs the suite through BranchContext: in a user+mount+PID namespace with
 * the branch mounted at the project's own path, a private TMPDIR, and the
 * rest of the filesystem read-only. A timeout or abort kills the namespace's
 * every process, setsid'd daemons included. Where the sandbox is unavailable
 * BranchContext downgrades to a plain child (and says so), and the project
 * path is then the branch directory.
 */
export class SandboxExecutor implements SuiteExecutor {
  private readonly probe = probeSandbox();
  private readonly sandboxed = this.probe.available;

  projectPath(branchDir: string, workspaceDir: string): string {
    return this.sandboxed ? workspaceDir : branchDir;
  }

  isolation(): Isolation {
    if (this.sandboxed) {
      return { sandboxed: true, reason: 'user, mount and PID namespaces; the branch is mounted at the project path' };
    }
    return { sandboxed: false, reason: `a plain process group in the branch directory: ${this.probe.reason}` };
  }

  async run(request: SuiteRequest): Promise<SuiteExit> {
    const started = performance.now();
    const stdout = tailCollector();
    const stderr = tailCollector();
    const [program, ...args] = request.argv;
    const context = new BranchContext([program, ...args], {
      workspace: request.branchDir,
      mountAt: this.sandboxed ? request.workspaceDir : undefined,
      writable: request.writable,
      env: request.env,
      timeout: request.timeoutMs || undefined,
      stdio: ['ignore', 'pipe', 'pipe'],
      onNotice: () => {},
    });
    context.stdout?.on('data', stdout.push);
    context.stderr?.on('data', stderr.push);
    request.onStart?.({ pid: context.pid, pgid: context.pid });
    // An aborted run's branch is thrown away, so nothing it could still flush matters: SIGKILL at
    // once instead of BranchContext's SIGTERM grace, and the losers of a race are gone promptly.
    const kill = () => void context.abort({ timeout: 0 });
    if (request.signal?.aborted) kill();
    else request.signal?.addEventListener('abort', kill, { once: true });
    const outcome = await context.settled.finally(() => request.signal?.removeEventListener('abort', kill));
    if (outcome.startError && outcome.exitCode === null && outcome.signal === null) {
      throw new SuiteError(`cannot start ${JSON.stringify(program)}: ${outcome.startError.message}`, {
        code: 'ERR_SUITE_SPAWN',
        path: program,
      });
    }
    return {
      code: outcome.exitCode,
      signal: outcome.signal,
      timedOut: outcome.timedOut,
      aborted: outcome.aborted && !outcome.timedOut,
      durationMs: performance.now() - started,
      pid: context.pid,
      pgid: context.pid,
      stdoutTail: stdout.text(),
      stderrTail: stderr.text(),
    };
  }
}
