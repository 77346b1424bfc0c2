/** One `branching <name>` subcommand; each lives in its own file under cli/commands. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the exit code. Throw a UsageError for bad arguments (exit 2). */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Exit codes shared by every subcommand. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
