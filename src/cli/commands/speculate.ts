import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ArgumentError, isBranchingError } from '../../base/errors.ts';
import type { PatchCandidate } from '../../suite/patch.ts';
import { REPORT_SCHEMA_VERSION, toReport } from '../../suite/report.ts';
import { bestOf, type SpeculateOutcome, type SuiteSpeculateOptions, speculate } from '../../suite/speculate.ts';
import type { TestSpec } from '../../suite/suite-run.ts';
import { frameworkOfCommand } from '../../suite/test-report.ts';
import { type Command, CommandFailure, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { printJson } from '../json.ts';
import { JSON_OPTION, type OptionTable } from '../options.ts';
import { createProgress } from './speculate-progress.ts';

type CommandName = 'speculate' | 'best-of';

const OPTIONS = {
  patch: { type: 'string', multiple: true, short: 'p', value: 'FILE', help: 'a candidate: a patch (unified diff)' },
  dir: { type: 'string', multiple: true, value: 'DIR', help: 'every *.diff and *.patch in DIR is a candidate' },
  parallel: { type: 'string', value: 'N', help: 'suite runs at once, the baseline included (default: the CPUs)' },
  timeout: { type: 'string', value: 'DURATION', help: 'kill a suite run still going after this long: 90s, 10m' },
  json: JSON_OPTION,
  'dry-run': { type: 'boolean', default: false, help: 'pick the winner but do not commit it' },
  keep: {
    type: 'boolean',
    default: false,
    help: "leave the losers' branches for inspection (branching gc reclaims them)",
  },
  framework: {
    type: 'string',
    value: 'RUNNER',
    help: 'per-test results from vitest, jest or auto (default: named by the command); none: its exit code judges',
  },
  'must-pass': {
    type: 'string',
    multiple: true,
    value: 'TEST',
    help: 'a test that must pass (default: those failing now)',
  },
  workspace: { type: 'string', short: 'C', value: 'DIR', help: 'the project (default: the current directory)' },
  cwd: { type: 'string', value: 'DIR', help: "run the test command in this subdirectory (e.g. a monorepo's package)" },
  'baseline-from': {
    type: 'string',
    value: 'FILE',
    help: 'judge against this Jest-shaped report instead of a baseline run',
  },
  'no-cache': { type: 'boolean', default: false, help: 'run the baseline even if an identical tree has a cached one' },
} as const satisfies OptionTable;

const SPECULATE_OPTIONS = {
  best: { type: 'boolean', default: false, help: 'commit the passing candidate with the best score (as best-of)' },
  ...OPTIONS,
} as const satisfies OptionTable;

const NOTES =
  'exit: 0 a winner (committed, or picked under --dry-run), 1 no candidate passed, 2 usage or bad input, 130 interrupted';

export const speculateCommand: Command = {
  name: 'speculate',
  summary: 'test candidate patches in parallel branches; commit the first that passes (--best: the best)',
  usage: 'branching speculate --patch FILE... [options] [-- test command...]',
  options: SPECULATE_OPTIONS,
  notes: NOTES,
  schemaVersion: REPORT_SCHEMA_VERSION,
  run: (argv) => runSpeculate(speculateCommand, argv),
};

export const bestOfCommand: Command = {
  name: 'best-of',
  summary: 'test every candidate patch in its own branch; commit the passing one with the best score',
  usage: 'branching best-of --patch FILE... [options] [-- test command...]',
  options: OPTIONS,
  notes: NOTES,
  schemaVersion: REPORT_SCHEMA_VERSION,
  run: (argv) => runSpeculate(bestOfCommand, argv),
};

function indexOfTerminator(argv: string[]): number {
  const i = argv.indexOf('--');
  return i === -1 ? argv.length : i;
}

async function runSpeculate(command: Command, argv: string[]): Promise<number> {
  const name = command.name as CommandName;
  const cut = indexOfTerminator(argv);
  const testCommand = argv.slice(cut + 1);
  const table = name === 'best-of' ? OPTIONS : SPECULATE_OPTIONS;
  const { values, positionals } = parseArgs({ args: argv.slice(0, cut), options: table, allowPositionals: true });
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}: put the test command after --`);
  }
  const candidates = collectCandidates(values.patch ?? [], values.dir ?? []);
  const test = testSpecOf(testCommand, values.framework);
  const bestMode = name === 'best-of' || ('best' in values && values.best === true);
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  // Progress goes to stderr, so that stdout carries only the result (the JSON document with --json).
  const progress = createProgress(
    values.json ? 'quiet' : process.stderr.isTTY === true && !process.env.CI ? 'table' : 'lines',
  );
  const options: SuiteSpeculateOptions = {
    workspace: resolve(values.workspace ?? process.cwd()),
    candidates,
    test,
    maxParallel: values.parallel === undefined ? undefined : parseParallel(values.parallel),
    timeout: values.timeout === undefined ? undefined : parseDuration(values.timeout),
    mustPass: values['must-pass'],
    dryRun: values['dry-run'],
    keep: values.keep,
    cwd: values.cwd,
    baselineFrom: values['baseline-from'],
    cacheBaseline: !values['no-cache'],
    signal: controller.signal,
    onProgress: progress.update,
  };
  let outcome: SpeculateOutcome;
  try {
    outcome = await judgeCandidates(bestMode, options, () => controller.signal.aborted);
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  if (values.json) printJson(command, toReport(outcome, name));
  else console.log(summary(outcome));
  return outcome.winner ? EXIT.ok : EXIT.failed;
}

/** Runs the candidates; an interrupt, or a baseline that cannot be judged, becomes the command's failure. */
async function judgeCandidates(
  bestMode: boolean,
  options: SuiteSpeculateOptions,
  interrupted: () => boolean,
): Promise<SpeculateOutcome> {
  try {
    return bestMode ? await bestOf(options) : await speculate({ ...options, firstWins: true });
  } catch (err) {
    if (interrupted()) {
      throw new CommandFailure(
        'interrupted; every branch was aborted, the workspace is unchanged',
        130,
        'ERR_BRANCHING_INTERRUPTED',
      );
    }
    // A baseline that cannot be judged (crashed, hung, not JSON) means the test command is unusable: bad input.
    if (isBranchingError(err, 'SuiteError') || isBranchingError(err, 'TimeoutError')) {
      throw new ArgumentError(`the baseline run failed, so no candidate can be judged: ${(err as Error).message}`, {
        argument: 'test command',
        code: (err as { code: string }).code,
        cause: err,
      });
    }
    throw err;
  }
}

function collectCandidates(patches: string[], dirs: string[]): PatchCandidate[] {
  const files = [...patches.map((p) => resolve(p))];
  for (const dir of dirs) {
    const abs = resolve(dir);
    let names: string[];
    try {
      if (!statSync(abs).isDirectory()) throw new Error('not a directory');
      names = readdirSync(abs);
    } catch (err) {
      throw new ArgumentError(`--dir ${abs}: ${(err as Error).message}`, { argument: '--dir', path: abs });
    }
    const diffs = names.filter((n) => /\.(diff|patch)$/.test(n)).sort();
    if (diffs.length === 0)
      throw new ArgumentError(`--dir ${abs} holds no *.diff or *.patch file`, { argument: '--dir', path: abs });
    files.push(...diffs.map((n) => join(abs, n)));
  }
  if (files.length === 0) throw new UsageError('no candidates: give --patch FILE or --dir DIR');
  return files.map((patchFile) => ({ patchFile }));
}

/** `-- npx vitest run` gets per-test results when the command names vitest or jest; any other command is judged by its exit code. */
function testSpecOf(command: string[], framework: string | undefined): TestSpec {
  if (framework === 'none') {
    if (command.length === 0) throw new UsageError('--framework none needs a test command after --');
    return { command };
  }
  if (command.length === 0) return { framework: (framework ?? 'auto') as 'auto' };
  const chosen = framework ?? frameworkOfCommand(command);
  return chosen ? { framework: chosen as 'auto', command } : { command };
}

function parseParallel(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--parallel must be a positive integer; got ${JSON.stringify(text)}`);
  return n;
}

function summary(outcome: SpeculateOutcome): string {
  const w = outcome.winner;
  const lines: string[] = [];
  for (const c of outcome.candidates) {
    if (c.error && c.state === 'error') lines.push(`${c.name}: ${c.error.message}`);
  }
  if (!w) lines.push(`no candidate passed; ${outcome.workspace} is unchanged`);
  else if (outcome.committed) lines.push(`winner: ${w.name}, committed into ${outcome.workspace}`);
  else lines.push(`winner: ${w.name} (dry run: not committed; ${outcome.workspace} is unchanged)`);
  for (const c of outcome.candidates) if (c.branchDir) lines.push(`kept ${c.name}: ${c.branchDir}`);
  return lines.join('\n');
}
