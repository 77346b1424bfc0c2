import { parseArgs } from 'node:util';
import { type FlakyReport, measureFlakiness } from '../../suite/flaky.ts';
import type { FormatChoice } from '../../suite/flaky-results.ts';
import { type Command, EXIT } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { printJson } from '../json.ts';
import type { OptionTable } from '../options.ts';
import { numberOption, pct, progressWriter, splitAtDoubleDash, TEST_COMMAND_OPTIONS } from './flaky-args.ts';

/** 3: --until-confident spent every run and some verdict is still open (and nothing flaky was found). */
export const EXIT_NOT_SETTLED = 3;

const OPTIONS = {
  runs: {
    type: 'string',
    value: 'N',
    help: 'isolated runs, each in a fresh branch (default 10; with --until-confident the most)',
  },
  parallel: { type: 'string', value: 'P', help: 'isolated runs at once (default 1)' },
  'shared-runs': {
    type: 'string',
    value: 'M',
    help: 'runs one after another in ONE branch, to find state carryover (default min(runs, 10); 0 skips)',
  },
  'until-confident': { type: 'boolean', default: false, help: 'stop as soon as every verdict is settled' },
  threshold: { type: 'string', value: 'RATE', help: 'the flake rate below which a test is stable (default 0.1)' },
  ...TEST_COMMAND_OPTIONS,
} as const satisfies OptionTable;

export const flaky: Command = {
  name: 'flaky',
  summary: 'run a test command many times, each in a fresh branch: flake rates, and flaky vs state-carryover tests',
  usage: 'branching flaky [options] -- <test command>',
  options: OPTIONS,
  notes:
    'exit: 0 every test stable, 1 a test is flaky, carryover-dependent or failing, 2 usage, ' +
    '3 --until-confident ran out of runs before every verdict settled',
  schemaVersion: 1,
  async run(argv) {
    const { options, command } = splitAtDoubleDash(argv);
    const { values } = parseArgs({ args: options, options: OPTIONS });
    const say = progressWriter(values.quiet);
    const report = await measureFlakiness({
      workspace: values.cwd ?? process.cwd(),
      command,
      runs: numberOption(values.runs, 'runs', { integer: true }),
      parallel: numberOption(values.parallel, 'parallel', { integer: true }),
      sharedRuns: numberOption(values['shared-runs'], 'shared-runs', { integer: true }),
      untilConfident: values['until-confident'],
      threshold: numberOption(values.threshold, 'threshold'),
      format: values.format as FormatChoice | undefined,
      timeoutMs: values.timeout === undefined ? undefined : parseDuration(values.timeout),
      onProgress: ({ phase, run, done, planned }) => {
        const failed = run.tests.filter((t) => t.status === 'failed').map((t) => t.id);
        say(
          `${phase} run ${done}/${planned}: ${failed.length ? `failed ${failed.join(', ')}` : 'all passed'} (${(run.durationMs / 1000).toFixed(1)} s)`,
        );
      },
    });
    // `command` names the subcommand in every document; the test command it ran is `testCommand`.
    const { command: testCommand, ...rest } = report;
    if (values.json) printJson(flaky, { ...rest, testCommand });
    else console.log(formatFlaky(report));
    const bad = report.tests.some((t) => t.verdict !== 'stable');
    if (bad) return EXIT.failed;
    return values['until-confident'] && !report.settled ? EXIT_NOT_SETTLED : EXIT.ok;
  },
};

export function formatFlaky(report: FlakyReport): string {
  const rows = report.tests.map((t) => [
    t.verdict + (t.settled ? '' : '?'),
    `${t.isolated.failed}/${t.isolated.passed + t.isolated.failed}`,
    pct(t.isolated.failRate),
    `[${pct(t.isolated.interval.low)}, ${pct(t.isolated.interval.high)}]`,
    `${t.shared.failed}/${t.shared.passed + t.shared.failed}`,
    t.id,
  ]);
  const header = ['verdict', 'failed', 'rate', '95% CI', 'shared', 'test'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [
    `${report.isolatedRuns} isolated run(s) (fresh branch each), ${report.sharedRuns} run(s) sharing one branch; ` +
      `${report.settled ? 'every verdict settled' : 'verdicts marked ? are not settled'} (threshold ${pct(report.threshold)})`,
    line(header),
    ...rows.map(line),
  ].join('\n');
}
