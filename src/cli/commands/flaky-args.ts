import { UsageError } from '../command.ts';

/** Shared argument handling of `flaky`, `bisect` and `polluter`: options, then `--`, then the test command. */
export function splitAtDoubleDash(argv: string[]): { options: string[]; command: string[] } {
  const at = argv.indexOf('--');
  if (at < 0 || at === argv.length - 1) throw new UsageError('the test command goes after --, e.g. -- npm test');
  return { options: argv.slice(0, at), command: argv.slice(at + 1) };
}

export function numberOption(value: string | undefined, name: string, { integer = false } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}; got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Progress lines go to stderr, so `--json` output on stdout stays parseable. */
export function progressWriter(quiet: boolean): (line: string) => void {
  return quiet ? () => {} : (line) => process.stderr.write(`${line}\n`);
}

export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
export const short = (sha: string) => sha.slice(0, 10);
