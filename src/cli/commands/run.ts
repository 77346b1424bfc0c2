import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ArgumentError, isBranchingError } from '../../base/errors.ts';
import { resolveStateDir } from '../../core/state.ts';
import { LaunchSpec, spawnSandboxed } from '../../sandbox/launcher.ts';
import { type Command, CommandFailure, EXIT, UsageError } from '../command.ts';
import type { OptionTable } from '../options.ts';

/** As a shell's "found but cannot run": the sandbox could not be set up. */
const SANDBOX_UNAVAILABLE = 126;
const COMMAND_NOT_FOUND = 127;

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function canonicalDir(path: string, argument: string): string {
  try {
    return realpathSync(resolve(path));
  } catch (err) {
    throw new ArgumentError(`${argument}: ${resolve(path)} does not exist`, { argument, path, cause: err });
  }
}

/**
 * Where the helper may mount: the working directory (the usual workspace),
 * the root of its branch state dirs (`<parent>/.branching` or
 * `$TMPDIR/branching-<uid>`), and whatever `--allow` adds.
 */
export function helperRootsFor(cwd: string, allow: readonly string[]): string[] {
  const roots = [cwd];
  try {
    roots.push(dirname(resolveStateDir(cwd)));
  } catch {
    // no state dir possible for cwd: branches of it would fail anyway, with their own error
  }
  for (const dir of allow) roots.push(canonicalDir(dir, '--allow'));
  return [...new Set(roots)];
}

/** The shell's statuses for a command that could not be started: 127 not found, 126 no sandbox for it. */
function runFailure(err: unknown): unknown {
  const message = (err as Error).message;
  if (isBranchingError(err, 'ArgumentError') && (err as ArgumentError).argument === 'command') {
    return new CommandFailure(message, COMMAND_NOT_FOUND, (err as { code: string }).code, { cause: err });
  }
  if (isBranchingError(err, 'NamespaceError') || isBranchingError(err, 'MountError')) {
    return new CommandFailure(message, SANDBOX_UNAVAILABLE, (err as { code: string }).code, { cause: err });
  }
  return err;
}

const OPTIONS = {
  cwd: { type: 'string', value: 'DIR', help: 'run it in DIR (default: the current directory)' },
  allow: { type: 'string', multiple: true, default: [], value: 'DIR', help: 'let it mount branches under DIR too' },
  pid: { type: 'boolean', default: false, help: 'a PID namespace as well' },
  json: {
    type: 'boolean',
    default: false,
    help: "a failure to start the command is one JSON error document on stdout (the command's output stays its own)",
  },
} as const satisfies OptionTable;

export const run: Command = {
  name: 'run',
  summary: 'run a command in its own user+mount namespace with a mount helper, so that it can use overlay branches',
  usage: 'branching run [options] -- <command> [args...]',
  options: OPTIONS,
  notes: "exit: the command's status; 2 usage, 126 the sandbox could not be set up, 127 no such command",
  schemaVersion: 1,
  async run(argv) {
    const dash = argv.indexOf('--');
    if (dash < 0) throw new UsageError('put `--` before the command');
    const { values } = parseArgs({
      args: argv.slice(0, dash),
      options: OPTIONS,
      allowPositionals: false,
    });
    const [command, ...args] = argv.slice(dash + 1);
    if (!command) throw new UsageError('no command after `--`');
    const cwd = canonicalDir(values.cwd ?? process.cwd(), '--cwd');
    const roots = helperRootsFor(cwd, values.allow ?? []);
    const spec = new LaunchSpec().userns().mountns();
    if (values.pid) spec.pidns();
    spec.helper(roots);
    const env = { ...process.env, BRANCHING_HELPER_ROOTS: roots.join(':') };

    let sandboxed: ReturnType<typeof spawnSandboxed>;
    try {
      sandboxed = spawnSandboxed(command, args, { spec, cwd, env, stdio: 'inherit' });
    } catch (err) {
      throw runFailure(err);
    }
    const { child, status } = sandboxed;
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const s of FORWARDED) process.on(s, forward);
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    // The launcher reports its own setup failures on stderr; the status only decides the exit code.
    const setupFailed = await status.then(
      () => false,
      () => true,
    );
    const { code, signal } = await exit;
    for (const s of FORWARDED) process.off(s, forward);
    if (signal) {
      // Die the way the command did, so that callers see the same status.
      process.kill(process.pid, signal);
      return 128 + ((await import('node:os')).constants.signals[signal] ?? 0);
    }
    if (setupFailed && code === null) return EXIT.failed;
    return code ?? EXIT.failed;
  },
};
