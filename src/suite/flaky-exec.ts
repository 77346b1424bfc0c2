import { spawn } from 'node:child_process';
import type { Branch } from '../core/branch.ts';

/**
 * How the flaky-test tools start a test command. Today a plain child process
 * whose cwd is the branch's directory; a sandbox launcher can implement the
 * same interface to mount the branch at the project's own path instead
 * (it gets `projectPath` and the `branch` for that).
 */
export interface ExecRequest {
  argv: string[];
  /** Where to run: the branch's directory. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The workspace the branch was made from (where a sandbox would mount it). */
  projectPath: string;
  branch?: Branch;
  /** Kill the whole process group after this many ms (0: no limit). */
  timeoutMs?: number;
}

export interface ExecOutcome {
  /** null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last OUTPUT_TAIL bytes of each stream, for reports. */
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface Executor {
  run(request: ExecRequest): Promise<ExecOutcome>;
}

const OUTPUT_TAIL = 16 * 1024;

function tailCollector(): { push(chunk: Buffer): void; text(): string } {
  let kept = Buffer.alloc(0);
  return {
    push(chunk) {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > 2 * OUTPUT_TAIL) kept = kept.subarray(kept.length - OUTPUT_TAIL);
    },
    text: () => kept.subarray(Math.max(0, kept.length - OUTPUT_TAIL)).toString('utf8'),
  };
}

/** Runs commands as ordinary child processes, each in its own process group so a timeout kills all of it. */
export const childProcessExecutor: Executor = {
  run(request) {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const [file, ...args] = request.argv;
      const child = spawn(file as string, args, {
        cwd: request.cwd,
        env: request.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const out = tailCollector();
      const err = tailCollector();
      child.stdout.on('data', out.push);
      child.stderr.on('data', err.push);
      let timedOut = false;
      const timer =
        request.timeoutMs && request.timeoutMs > 0
          ? setTimeout(() => {
              timedOut = true;
              killGroup(child.pid);
            }, request.timeoutMs)
          : null;
      child.on('error', (error) => {
        if (timer) clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        // Leftover background processes of the test command must not outlive its branch.
        killGroup(child.pid);
        resolve({
          exitCode: code,
          signal,
          timedOut,
          stdout: out.text(),
          stderr: err.text(),
          durationMs: performance.now() - started,
        });
      });
    });
  },
};

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** The environment a test command gets: ours, minus git variables that would point it at the user's repository. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_COMMON_DIR', 'GIT_PREFIX']) delete env[key];
  return { ...env, ...extra };
}
