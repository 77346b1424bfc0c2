import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ArgumentError, isBranchingError } from '../../base/errors.ts';
import type { PatchCandidate } from '../../suite/patch.ts';
import { toErrorReport, toReport } from '../../suite/report.ts';
import {
  bestOf,
  type CandidateResult,
  type ProgressEvent,
  type SpeculateOutcome,
  type SuiteSpeculateOptions,
  speculate,
} from '../../suite/speculate.ts';
import type { TestSpec } from '../../suite/suite-run.ts';
import { frameworkOfCommand } from '../../suite/test-report.ts';
import { type Command, EXIT, UsageError } from '../command.ts';
import { parseDuration } from '../duration.ts';

type CommandName = 'speculate' | 'best-of';

const OPTIONS = {
  patch: { type: 'string', multiple: true, short: 'p' },
  dir: { type: 'string', multiple: true },
  best: { type: 'boolean', default: false },
  parallel: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  framework: { type: 'string' },
  'must-pass': { type: 'string', multiple: true },
  workspace: { type: 'string', short: 'C' },
  cwd: { type: 'string' },
  'baseline-from': { type: 'string' },
  'no-cache': { type: 'boolean', default: false },
} as const;

const USAGE_TAIL =
  '--patch a.diff [--patch b.diff] [--dir patches/] [--parallel N] [--timeout 10m] [--json] [--dry-run] [--keep]\n' +
  '       [--framework vitest|jest|auto|none] [--must-pass TEST]... [-C workspace] [--cwd DIR]\n' +
  '       [--baseline-from report.json] [--no-cache] [-- test command...]';

export const speculateCommand: Command = {
  name: 'speculate',
  summary: 'test candidate patches in parallel branches; commit the first that passes (--best: the best)',
  usage: `branching speculate [--best] ${USAGE_TAIL}`,
  run: (argv) => runSpeculate('speculate', argv),
};

export const bestOfCommand: Command = {
  name: 'best-of',
  summary: 'test every candidate patch in its own branch; commit the passing one with the best score',
  usage: `branching best-of ${USAGE_TAIL}`,
  run: (argv) => runSpeculate('best-of', argv),
};

async function runSpeculate(name: CommandName, argv: string[]): Promise<number> {
  const json = argv.slice(0, indexOfTerminator(argv)).includes('--json');
  try {
    return await runParsed(name, argv);
  } catch (err) {
    const badInput = err instanceof UsageError || isBranchingError(err, 'ArgumentError') || isParseError(err);
    if (!json) throw err; // main.ts prints it (with usage for bad input) and picks the exit code
    console.log(JSON.stringify(toErrorReport(err, name), null, 2));
    return badInput ? EXIT.usage : EXIT.failed;
  }
}

function indexOfTerminator(argv: string[]): number {
  const i = argv.indexOf('--');
  return i === -1 ? argv.length : i;
}

function isParseError(err: unknown): boolean {
  return String((err as { code?: unknown })?.code ?? '').startsWith('ERR_PARSE_ARGS');
}

async function runParsed(name: CommandName, argv: string[]): Promise<number> {
  const cut = indexOfTerminator(argv);
  const testCommand = argv.slice(cut + 1);
  const { values, positionals } = parseArgs({ args: argv.slice(0, cut), options: OPTIONS, allowPositionals: true });
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}: put the test command after --`);
  }
  const candidates = collectCandidates(values.patch ?? [], values.dir ?? []);
  const test = testSpecOf(testCommand, values.framework);
  const bestMode = name === 'best-of' || values.best;
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  // Progress goes to stderr, so that stdout carries only the result (the JSON document with --json).
  const progress = createProgress(process.stderr.isTTY === true && !process.env.CI && !values.json, values.json);
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
    onProgress: progress?.update,
  };
  let outcome: SpeculateOutcome;
  try {
    outcome = bestMode ? await bestOf(options) : await speculate({ ...options, firstWins: true });
  } catch (err) {
    progress?.stop();
    if (controller.signal.aborted) {
      console.error(`branching ${name}: interrupted; every branch was aborted, the workspace is unchanged`);
      return 130;
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
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  progress?.stop();
  if (values.json) console.log(JSON.stringify(toReport(outcome, name), null, 2));
  else console.log(summary(outcome));
  return outcome.winner ? EXIT.ok : EXIT.failed;
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

// ---- progress: a live table on a TTY, plain lines elsewhere ----

interface Progress {
  update: (event: ProgressEvent) => void;
  stop: () => void;
}

/** Notices go to stderr in every mode (also under --json, whose stdout is the report alone). */
function createProgress(tty: boolean, json: boolean): Progress {
  const inner = json ? null : tty ? liveTable() : plainLines();
  return {
    update(event) {
      if (event.type === 'notice') console.error(`branching: ${event.message}`);
      else inner?.update(event);
    },
    stop: () => inner?.stop(),
  };
}

function countsText(c: { passed: number; failed: number } | null): string {
  return c ? `${c.passed} passed, ${c.failed} failed` : '';
}

function seconds(ms: number | null): string {
  return ms === null ? '' : `${(ms / 1000).toFixed(1)}s`;
}

const FINAL = new Set(['winner', 'passed', 'failed', 'error', 'timeout', 'killed', 'cancelled']);

function plainLines(): Progress {
  let baselineState = '';
  return {
    update(event) {
      if (event.type === 'notice') return;
      if (event.type === 'baseline') {
        const b = event.baseline;
        if (b.state === baselineState) return; // a repeat (e.g. its process started)
        baselineState = b.state;
        const from = b.source === 'run' ? '' : ` (from the ${b.source})`;
        if (b.state === 'done') console.error(`baseline${from}: ${countsText(b.counts)} (${seconds(b.durationMs)})`);
        else if (b.state === 'running') console.error('baseline: running');
        return;
      }
      const c = event.candidate;
      if (c.state === 'running' && c.pgid !== null) return; // the start was already reported
      if (!FINAL.has(c.state) && c.state !== 'running') return;
      console.error(`[${c.index + 1}] ${c.name}: ${describeCandidate(c)}`);
    },
    stop() {},
  };
}

function describeCandidate(c: CandidateResult): string {
  const parts: string[] = [c.state];
  if (c.counts) parts.push(`${countsText(c.counts)}${c.stage === 'related' ? ' (related tests only)' : ''}`);
  if (c.regressions.length) parts.push(`breaks ${c.regressions.join(', ')}`);
  if (c.state === 'failed' && c.stillFailing.length) parts.push(`still failing: ${c.stillFailing.join(', ')}`);
  if (c.error) parts.push(c.error.message.split('\n').slice(0, 3).join(' | '));
  if (c.durationMs !== null) parts.push(seconds(c.durationMs));
  return parts.join('; ');
}

function liveTable(): Progress {
  const rows = new Map<string, { name: string; state: string; result: string; started: number; ms: number | null }>();
  let drawn = 0;
  const draw = () => {
    const now = performance.now();
    const lines = [...rows.values()].map((r) => {
      const time = r.ms ?? (FINAL.has(r.state) || r.state === 'queued' ? null : now - r.started);
      return `  ${r.name.padEnd(28).slice(0, 28)} ${r.state.padEnd(10)} ${r.result.padEnd(24)} ${seconds(time)}`;
    });
    const header = `  ${'candidate'.padEnd(28)} ${'state'.padEnd(10)} ${'passed/failed'.padEnd(24)} time`;
    const text = [header, ...lines];
    // Move up over the previous drawing and overwrite it line by line.
    process.stderr.write(`${drawn ? `\x1b[${drawn}A` : ''}${text.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
    drawn = text.length;
  };
  const timer = setInterval(draw, 250);
  timer.unref();
  return {
    update(event) {
      if (event.type === 'notice') return;
      if (event.type === 'baseline') {
        const b = event.baseline;
        const row = rows.get('baseline') ?? {
          name: '(baseline)',
          state: '',
          result: '',
          started: performance.now(),
          ms: null,
        };
        row.state = b.state;
        row.result = countsText(b.counts);
        row.ms = b.durationMs;
        rows.set('baseline', row);
      } else {
        const c = event.candidate;
        const key = `c${c.index}`;
        const row = rows.get(key) ?? {
          name: `${c.index + 1}. ${c.name}`,
          state: '',
          result: '',
          started: performance.now(),
          ms: null,
        };
        if (row.state === 'queued' && c.state !== 'queued') row.started = performance.now();
        row.state = c.state;
        row.result = c.error ? c.error.code : countsText(c.counts);
        row.ms = c.durationMs;
        rows.set(key, row);
      }
      draw();
    },
    stop() {
      clearInterval(timer);
      if (drawn) draw();
    },
  };
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
