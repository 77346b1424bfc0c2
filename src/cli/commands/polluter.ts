import { parseArgs } from 'node:util';
import type { FormatChoice } from '../../suite/flaky-results.ts';
import { findPolluter, type PolluterReport } from '../../suite/polluter.ts';
import { type Command, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { printJson } from '../json.ts';
import { progressWriter, splitAtDoubleDash } from './flaky-args.ts';

export const polluter: Command = {
  name: 'polluter',
  summary: 'find the test that makes a victim fail when it runs first (delta debugging; every trial in a fresh branch)',
  usage:
    'branching polluter --victim TEST [--candidates a,b,...] [--granularity file|test] ' +
    '[--format auto|vitest|jest|json-file|exit-code] [--timeout 90s|10m] [--json] [--quiet] [-C dir] -- <test command with {tests}>\n' +
    'The command must run exactly the tests it is given, in order: in place of an argument {tests}, and in $BRANCHING_TESTS.\n' +
    'exit: 0 polluter found, 1 none (the victim fails alone, or passes after every candidate), 2 usage',
  schemaVersion: 1,
  async run(argv) {
    const { options, command } = splitAtDoubleDash(argv);
    const { values } = parseArgs({
      args: options,
      options: {
        victim: { type: 'string' },
        candidates: { type: 'string', multiple: true },
        granularity: { type: 'string' },
        format: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        cwd: { type: 'string', short: 'C' },
      },
    });
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
