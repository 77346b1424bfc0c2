import { parseArgs } from 'node:util';
import { type BisectReport, bisectFlaky } from '../../suite/bisect.ts';
import { type Command, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';
import { numberOption, pct, progressWriter, short, splitAtDoubleDash } from './flaky-args.ts';

/** 3: the run budget ran out before the culprit reached the confidence asked for. */
export const EXIT_INCONCLUSIVE = 3;

export const bisect: Command = {
  name: 'bisect',
  summary: 'find the commit that introduced a flaky failure (noisy bisection; every revision in its own branch)',
  usage:
    'branching bisect --good REV --bad REV [--confidence 0.95] [--runs MAX=300] [--parallel P=1] ' +
    "[--setup 'npm ci'] [--cache-dir DIR] [--timeout 90s|10m] [--json] [--quiet] [-C dir] -- <test command>\n" +
    'exit: 0 culprit found, 1 the bad revision never failed, 2 usage, 3 budget spent below the confidence (best guess reported)',
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
    const report = await bisectFlaky({
      repository: values.cwd ?? process.cwd(),
      good: values.good,
      bad: values.bad,
      command,
      runs: numberOption(values.runs, 'runs', { integer: true }),
      confidence: numberOption(values.confidence, 'confidence'),
      parallel: numberOption(values.parallel, 'parallel', { integer: true }),
      setup: values.setup,
      cacheDir: values['cache-dir'],
      timeoutMs: values.timeout === undefined ? undefined : parseDuration(values.timeout),
      onProgress: (e) => {
        if (e.kind === 'revision') {
          say(
            `revision #${e.index} ${short(e.sha)}: checked out in a branch, setup ${e.setup}${e.ok ? '' : ' FAILED (skipped)'}`,
          );
        } else {
          say(
            `run ${e.runs} at #${e.index} ${short(e.sha)}: ${e.failed ? 'FAIL' : 'pass'}; best #${e.best.index} ${short(e.best.sha)} ${pct(e.best.probability)}`,
          );
        }
      },
    });
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(formatBisect(report));
    if (report.status === 'found') return EXIT.ok;
    return report.status === 'inconclusive' ? EXIT_INCONCLUSIVE : EXIT.failed;
  },
};

export function formatBisect(r: BisectReport): string {
  const head = `${r.commits} commit(s) after good ${short(r.good)}; ${r.runs} run(s) over ${r.revisionsTested} revision(s); setup ran ${r.setup.ran}, cached ${r.setup.cached}`;
  if (r.status === 'bad-never-failed' || !r.culprit) {
    return `${head}\nthe bad revision ${short(r.bad)} passed all ${r.runs} run(s): no failure to bisect`;
  }
  const verdict = r.status === 'found' ? 'culprit' : `inconclusive (below ${pct(r.confidence)}); best guess`;
  return [
    head,
    `${verdict}: ${r.culprit.sha} ${r.culprit.subject}`,
    `  posterior ${pct(r.culprit.probability)}, flake rate there ≈ ${pct(r.flakeRate ?? 0)}`,
    ...r.candidates.slice(1, 3).map((c) => `  next: ${short(c.sha)} ${pct(c.probability)} ${c.subject}`),
  ].join('\n');
}
