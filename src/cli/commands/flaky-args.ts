import { UsageError } from '../command.ts';
import { JSON_OPTION, type OptionTable } from '../options.ts';

/** The options `flaky`, `bisect` and `polluter` share. */
export const TEST_COMMAND_OPTIONS = {
  format: {
    type: 'string',
    value: 'FORMAT',
    help: 'where per-test results come from: auto (default), vitest, jest, json-file, or exit-code (the status decides)',
  },
  timeout: { type: 'string', value: 'DURATION', help: 'kill a test run still going after this long: 90s, 10m, 500ms' },
  json: JSON_OPTION,
  quiet: { type: 'boolean', default: false, help: 'no progress lines on stderr' },
  cwd: { type: 'string', short: 'C', value: 'DIR', help: 'the project (default: the current directory)' },
} as const satisfies OptionTable;

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
