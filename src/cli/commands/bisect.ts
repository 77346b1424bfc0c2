import { parseArgs } from 'node:util';
import { type BisectProgress, type BisectReport, bisectFlaky } from '../../suite/bisect.ts';
import { loadFlakePrior } from '../../suite/bisect-evidence.ts';
import { parseFormat } from '../../suite/flaky-results.ts';
import { type Command, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { printJson } from '../json.ts';
import type { OptionTable } from '../options.ts';
import { numberOption, pct, progressWriter, short, splitAtDoubleDash, TEST_COMMAND_OPTIONS } from './flaky-args.ts';

/** 3: the run budget ran out before the culprit reached the confidence asked for. */
export const EXIT_INCONCLUSIVE = 3;

const OPTIONS = {
  good: { type: 'string', value: 'REV', help: 'a revision where the test does not fail' },
  bad: { type: 'string', value: 'REV', help: 'a revision where it fails (sometimes)' },
  test: {
    type: 'string',
    value: 'ID|FILE|NAME',
    help: 'judge only this test (an id from branching flaky, a file or a name)',
  },
  confidence: { type: 'string', value: 'P', help: "stop when the best culprit's probability reaches P (default 0.95)" },
  runs: { type: 'string', value: 'MAX', help: 'the most runs to spend, all revisions together (default 300)' },
  parallel: { type: 'string', value: 'P', help: 'runs at once (default 1)' },
  'flake-rate': { type: 'string', value: 'X', help: 'the flake rate, if known' },
  prior: { type: 'string', value: 'FILE', help: 'the flake rate from a branching flaky --json report' },
  setup: {
    type: 'string',
    value: 'COMMAND',
    help: "a shell command run once per revision before its runs, e.g. 'npm ci'",
  },
  'cache-dir': { type: 'string', value: 'DIR', help: 'keep the setup cache here (default: a temporary directory)' },
  ...TEST_COMMAND_OPTIONS,
  cwd: {
    type: 'string',
    short: 'C',
    value: 'DIR',
    help: 'a directory in the repository (default: the current directory)',
  },
} as const satisfies OptionTable;

export const bisect: Command = {
  name: 'bisect',
  summary: 'find the commit that introduced a flaky failure (noisy bisection; every revision in its own branch)',
  usage: 'branching bisect --good REV --bad REV [options] -- <test command>',
  options: OPTIONS,
  notes:
    'exit: 0 culprit found, 1 the bad revision never failed (or gave no evidence), 2 usage, ' +
    '3 budget spent below the confidence, or only skipped revisions left (best guess reported)',
  schemaVersion: 1,
  async run(argv) {
    const { options, command } = splitAtDoubleDash(argv);
    const { values } = parseArgs({ args: options, options: OPTIONS });
    if (!values.good || !values.bad) throw new UsageError('--good REV and --bad REV are both required');
    const say = progressWriter(values.quiet);
    if (values.prior && values['flake-rate']) throw new UsageError('give --flake-rate or --prior, not both');
    const prior = values.prior ? await loadFlakePrior(values.prior, values.test) : undefined;
    if (prior)
      say(
        `flake-rate prior from ${values.prior}: ${prior.id} failed ${prior.failed} of ${prior.failed + prior.passed}`,
      );
    const report = await bisectFlaky({
      repository: values.cwd ?? process.cwd(),
      good: values.good,
      bad: values.bad,
      command,
      test: values.test,
      format: values.format === undefined ? undefined : parseFormat(values.format, 'format'),
      runs: numberOption(values.runs, 'runs', { integer: true }),
      confidence: numberOption(values.confidence, 'confidence'),
      parallel: numberOption(values.parallel, 'parallel', { integer: true }),
      flakeRate: numberOption(values['flake-rate'], 'flake-rate'),
      flakeEvidence: prior && { failed: prior.failed, passed: prior.passed },
      setup: values.setup,
      cacheDir: values['cache-dir'],
      timeoutMs: values.timeout === undefined ? undefined : parseDuration(values.timeout),
      onProgress: (e) => say(progressLine(e)),
    });
    // `command` names the subcommand in every document; the test command it ran is `testCommand`.
    const { command: testCommand, ...rest } = report;
    if (values.json) printJson(bisect, { ...rest, testCommand });
    else console.log(formatBisect(report));
    if (report.status === 'found') return EXIT.ok;
    return report.status === 'inconclusive' || report.status === 'skipped-range' ? EXIT_INCONCLUSIVE : EXIT.failed;
  },
};

function progressLine(e: BisectProgress): string {
  if (e.kind === 'notice') return `note: ${e.message}`;
  if (e.kind === 'revision') {
    return `revision #${e.index} ${short(e.sha)}: checked out in a branch, setup ${e.setup}${e.ok ? '' : ' FAILED (skipped)'}`;
  }
  const outcome = e.verdict === 'skip' ? `SKIP (${e.reason}: no evidence)` : e.verdict === 'fail' ? 'FAIL' : 'pass';
  const ran = `${e.testsRun} test${e.testsRun === 1 ? '' : 's'} ran`;
  return `run ${e.runs} at #${e.index} ${short(e.sha)}: ${outcome}, ${ran}; best #${e.best.index} ${short(e.best.sha)} ${pct(e.best.probability)}`;
}

export function formatBisect(r: BisectReport): string {
  const skipped = r.skippedRuns ? ` (${r.skippedRuns} skipped: no evidence)` : '';
  const head = `${r.commits} commit(s) after good ${short(r.good)}; ${r.runs} run(s)${skipped} over ${r.revisionsTested} revision(s); setup ran ${r.setup.ran}, cached ${r.setup.cached}`;
  const skips = r.skipped.map((s) => `  skipped #${s.index} ${short(s.sha)}: ${s.reason}`);
  if (r.status === 'no-evidence') {
    const hint = r.skipped.some((s) => s.reason.startsWith('no test report'))
      ? ['  (a command that writes no per-test report: name vitest or jest in it, or pass --format exit-code)']
      : [];
    return [head, `the bad revision ${short(r.bad)} gave no usable run: nothing to bisect`, ...skips, ...hint].join(
      '\n',
    );
  }
  if (r.status === 'bad-never-failed' || !r.culprit) {
    return `${head}\nthe bad revision ${short(r.bad)} passed all ${r.runs} run(s): no failure to bisect`;
  }
  if (r.status === 'skipped-range' && r.possibleCulprits) {
    const list = r.possibleCulprits.map((c) => `  ${c.sha} ${c.subject}`);
    return [head, 'only skipped revisions left to test; the culprit is one of:', ...list, ...skips].join('\n');
  }
  const verdict = r.status === 'found' ? 'culprit' : `inconclusive (below ${pct(r.confidence)}); best guess`;
  return [
    head,
    `${verdict}: ${r.culprit.sha} ${r.culprit.subject}`,
    `  probability ${pct(r.culprit.probability)}, flake rate there ≈ ${pct(r.flakeRate ?? 0)}`,
    ...r.candidates.slice(1, 3).map((c) => `  next: ${short(c.sha)} ${pct(c.probability)} ${c.subject}`),
    ...skips,
  ].join('\n');
}
