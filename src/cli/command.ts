import { type OptionTable, optionLines } from './options.ts';

/** One `branching <name>` subcommand; each lives in its own file under cli/commands. */
export interface Command {
  name: string;
  summary: string;
  /** The synopsis: the command, its required options, `[options]`, its operands. */
  usage: string;
  /** Every option it parses, with its help line. */
  options: OptionTable;
  /** Printed after the options in its help: operands, exit codes. */
  notes?: string;
  /** The schemaVersion of its `--json` documents: its report and its error document. */
  schemaVersion: number;
  /** Returns the exit code. Throw a UsageError for bad arguments (exit 2), a CommandFailure for another code. */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {
  override name = 'UsageError';
  readonly code = 'ERR_BRANCHING_USAGE';
}

/**
 * A failure told in one line (no stack), with its own exit code: e.g. `run`'s 126, an interrupt's 130.
 * It keeps the name of the error it stands for, which error documents report.
 */
export class CommandFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = (options.cause as Error | undefined)?.name ?? 'CommandFailure';
  }
}

export function helpText(command: Command): string {
  const notes = command.notes ? ['', command.notes] : [];
  return [
    `usage: ${command.usage}`,
    '',
    command.summary,
    '',
    'options:',
    ...optionLines(command.options),
    ...notes,
  ].join('\n');
}

/** Exit codes shared by every subcommand. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
