import { parseArgs } from 'node:util';
import { type BisectProgress, type BisectReport, bisectFlaky } from '../../suite/bisect.ts';
import { loadFlakePrior } from '../../suite/bisect-evidence.ts';
import { parseFormat } from '../../suite/flaky-results.ts';
import { type Command, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { numberOption, pct, progressWriter, short, splitAtDoubleDash } from './flaky-args.ts';

/** 3: the run budget ran out before the culprit reached the confidence asked for. */
export const EXIT_INCONCLUSIVE = 3;

export const bisect: Command = {
  name: 'bisect',
  summary: 'find the commit that introduced a flaky failure (noisy bisection; every revision in its own branch)',
  usage:
    'branching bisect --good REV --bad REV [--test ID|FILE|NAME] [--confidence 0.95] [--runs MAX=300] [--parallel P=1] ' +
    "[--flake-rate X | --prior flaky-report.json] [--format auto|vitest|jest|json-file|exit-code] [--setup 'npm ci'] " +
    '[--cache-dir DIR] [--timeout 90s|10m] [--json] [--quiet] [-C dir] -- <test command>\n' +
    'exit: 0 culprit found, 1 the bad revision never failed (or gave no evidence), 2 usage, ' +
    '3 budget spent below the confidence, or only skipped revisions left (best guess reported)',
  async run(argv) {
    const { options, command } = splitAtDoubleDash(argv);
    const { values } = parseArgs({
      args: options,
      options: {
        good: { type: 'string' },
        bad: { type: 'string' },
        runs: { type: 'string' },
        confidence: { type: 'string' },
        parallel: { type: 'string' },
        test: { type: 'string' },
        format: { type: 'string' },
        'flake-rate': { type: 'string' },
        prior: { type: 'string' },
        setup: { type: 'string' },
        'cache-dir': { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        cwd: { type: 'string', short: 'C' },
      },
    });
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
    if (values.json) console.log(JSON.stringify(report, null, 2));
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
