import { parseArgs } from 'node:util';
import type { FormatChoice } from '../../suite/flaky-results.ts';
import { findPolluter, type PolluterReport } from '../../suite/polluter.ts';
import { type Command, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { printJson } from '../json.ts';
import type { OptionTable } from '../options.ts';
import { progressWriter, splitAtDoubleDash, TEST_COMMAND_OPTIONS } from './flaky-args.ts';

const OPTIONS = {
  victim: {
    type: 'string',
    value: 'TEST',
    help: 'the test (with --granularity file: the test file) that fails after some other',
  },
  candidates: {
    type: 'string',
    multiple: true,
    value: 'A,B,...',
    help: 'the tests that run before the victim, in order (default: from one full run)',
  },
  granularity: { type: 'string', value: 'file|test', help: 'what a candidate is: a test file (default) or one test' },
  ...TEST_COMMAND_OPTIONS,
} as const satisfies OptionTable;

export const polluter: Command = {
  name: 'polluter',
  summary: 'find the test that makes a victim fail when it runs first (delta debugging; every trial in a fresh branch)',
  usage: 'branching polluter --victim TEST [options] -- <test command with {tests}>',
  options: OPTIONS,
  notes:
    'The command must run exactly the tests it is given, in order: in place of an argument {tests}, and in $BRANCHING_TESTS.\n' +
    'exit: 0 polluter found, 1 none (the victim fails alone, or passes after every candidate), 2 usage',
  schemaVersion: 1,
  async run(argv) {
    const { options, command } = splitAtDoubleDash(argv);
    const { values } = parseArgs({ args: options, options: OPTIONS });
    if (!values.victim) throw new UsageError('--victim TEST is required');
    const say = progressWriter(values.quiet);
    const report = await findPolluter({
      workspace: values.cwd ?? process.cwd(),
      victim: values.victim,
      command,
      candidates: values.candidates?.flatMap((c) => c.split(',')).filter(Boolean),
      granularity: values.granularity as 'file' | 'test' | undefined,
      format: values.format as FormatChoice | undefined,
      timeoutMs: values.timeout === undefined ? undefined : parseDuration(values.timeout),
      onProgress: (t) =>
        say(
          `trial ${t.trial}: ${t.tests.length - 1} before the victim -> victim ${t.victimFailed ? 'FAILED' : 'passed'}`,
        ),
    });
    if (values.json) printJson(polluter, report);
    else console.log(formatPolluter(report));
    return report.status === 'found' ? EXIT.ok : EXIT.failed;
  },
};

export function formatPolluter(r: PolluterReport): string {
  const head = `${r.candidates.length} candidate(s) before ${r.victim}; ${r.trials.length} trial(s), each in a fresh branch`;
  if (r.status === 'victim-fails-alone') return `${head}\n${r.victim} fails even alone: it is not order-dependent`;
  if (r.status === 'not-reproduced') return `${head}\n${r.victim} passed after all its candidates: not reproduced`;
  return `${head}\npolluter${r.polluters.length > 1 ? 's (all needed)' : ''}: ${r.polluters.join(', ')}`;
}
