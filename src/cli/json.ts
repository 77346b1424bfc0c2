import { isBranchingError } from '../base/errors.ts';
import { type ErrorInfo, errorInfo } from '../suite/speculate.ts';
import { type Command, CommandFailure, EXIT, UsageError } from './command.ts';

/**
 * The one writer of `--json` documents: every command's report, and the
 * error document of a command that failed. Each is one JSON object on stdout
 * that starts with the command's `schemaVersion` and its `command` name.
 */
type Documented = Pick<Command, 'name' | 'schemaVersion'>;

export interface ErrorDocument {
  schemaVersion: number;
  command: string;
  error: ErrorInfo;
}

/** `--json` among the command's own options (before `--`; after it, the words belong to the test command). */
export function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** A report's own `command` may only repeat the command's name (speculate's does). */
type Body<T> = T & { schemaVersion?: number; command?: string };

function jsonDocument<T extends object>(command: Documented, body: Body<T>): object {
  return { schemaVersion: command.schemaVersion, command: command.name, ...body };
}

export function printJson<T extends object>(command: Documented, body: Body<T>): void {
  console.log(JSON.stringify(jsonDocument(command, body), null, 2));
}

export function errorDocument(command: Documented, err: unknown): ErrorDocument {
  return jsonDocument(command, { error: errorInfo(err) }) as ErrorDocument;
}

export function printErrorDocument(command: Documented, err: unknown): void {
  console.log(JSON.stringify(errorDocument(command, err), null, 2));
}

export function isUsageError(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  return err instanceof UsageError || code.startsWith('ERR_PARSE_ARGS') || isBranchingError(err, 'ArgumentError');
}

/** 2 for bad input, a CommandFailure's own code (e.g. 126, 130), else 1. */
export function exitCodeOf(err: unknown): number {
  if (isUsageError(err)) return EXIT.usage;
  if (err instanceof CommandFailure) return err.exitCode;
  return EXIT.failed;
}

/** Reports a failed command (an error document under --json, else lines on stderr) and returns its exit code. */
export function reportFailure(command: Command, err: unknown, json: boolean): number {
  if (json) printErrorDocument(command, err);
  else console.error(failureText(command, err));
  return exitCodeOf(err);
}

function failureText(command: Command, err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  const prefix = `branching ${command.name}`;
  if (isUsageError(err)) return `${prefix}: ${message}\nusage: ${command.usage}`;
  if (err instanceof CommandFailure) return `${prefix}: ${message}`;
  return `${prefix}: ${isBranchingError(err) ? `${(err as Error).name}: ` : ''}${(err as Error)?.stack ?? err}`;
}
