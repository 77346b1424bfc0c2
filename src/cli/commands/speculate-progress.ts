import type { CandidateResult, ProgressEvent } from '../../suite/speculate.ts';
import { type Cell, type Color, type Column, LiveTable, type TerminalStream } from '../live-table.ts';

/** How speculate and best-of report progress, on stderr: a live table on a terminal, plain lines elsewhere. */
export interface Progress {
  update: (event: ProgressEvent) => void;
  stop: () => void;
}

/** Notices go to stderr in every mode (also under --json, whose stdout is the report alone). */
export function createProgress(mode: 'table' | 'lines' | 'quiet'): Progress {
  if (mode === 'table') return liveTable(process.stderr);
  const inner = mode === 'lines' ? plainLines() : null;
  return {
    update(event) {
      if (event.type === 'notice') console.error(noticeText(event.message));
      else inner?.update(event);
    },
    stop: () => inner?.stop(),
  };
}

const noticeText = (message: string) => `branching: ${message}`;

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

interface Row {
  name: string;
  state: string;
  result: string;
  /** `result` in a narrow column: `passed/failed`. */
  shortResult?: string;
  started: number;
  ms: number | null;
}

const STATE_COLORS: Record<string, Color> = {
  winner: 'green',
  passed: 'green',
  failed: 'red',
  error: 'red',
  timeout: 'red',
  killed: 'red',
  running: 'yellow',
  queued: 'dim',
  cancelled: 'dim',
  done: 'green',
};

const HEADER: Cell[] = [
  { text: 'candidate' },
  { text: 'state' },
  { text: 'passed/failed', short: 'pass/fail' },
  { text: 'time' },
];

/** A running row's clock ticks in whole seconds, so that it changes once a second, not at every redraw. */
function timeText(row: Row, now: number): string {
  if (row.ms !== null) return seconds(row.ms);
  if (FINAL.has(row.state) || row.state === 'queued' || row.state === '') return '';
  return `${Math.floor((now - row.started) / 1000)}s`;
}

function tableOf(rows: Row[], now: number): { columns: Column[]; cells: Cell[][] } {
  const longestName = Math.max(...rows.map((r) => [...r.name].length));
  const columns: Column[] = [
    { ideal: Math.min(40, Math.max(HEADER[0]?.text.length ?? 0, longestName)), min: 12 },
    { ideal: 9, min: 9 },
    { ideal: 20, min: 0 },
    { ideal: 6, min: 5 },
  ];
  const cells = rows.map((r): Cell[] => [
    { text: r.name },
    { text: r.state, color: STATE_COLORS[r.state] },
    { text: r.result, short: r.shortResult },
    { text: timeText(r, now) },
  ]);
  return { columns, cells: [HEADER, ...cells] };
}

function updateRow(rows: Map<string, Row>, event: Exclude<ProgressEvent, { type: 'notice' }>, now: number): void {
  const key = event.type === 'baseline' ? 'baseline' : `c${event.candidate.index}`;
  const name = event.type === 'baseline' ? '(baseline)' : `${event.candidate.index + 1}. ${event.candidate.name}`;
  const row = rows.get(key) ?? { name, state: '', result: '', started: now, ms: null };
  const next = event.type === 'baseline' ? event.baseline : event.candidate;
  if (row.state === 'queued' && next.state !== 'queued') row.started = now;
  row.state = next.state;
  const error = 'error' in next ? next.error : null;
  row.result = error ? error.code : countsText(next.counts);
  row.shortResult = error || !next.counts ? undefined : `${next.counts.passed}/${next.counts.failed}`;
  row.ms = next.durationMs;
  rows.set(key, row);
}

/** The live table of a terminal; `clock` and `tickMs` are there for tests, which drive time themselves. */
export function liveTable(
  stream: TerminalStream,
  { clock = () => performance.now(), tickMs = 1000 }: { clock?: () => number; tickMs?: number | null } = {},
): Progress {
  const rows = new Map<string, Row>();
  const table = new LiveTable(stream);
  const draw = () => {
    if (rows.size === 0) return;
    const { columns, cells } = tableOf([...rows.values()], clock());
    table.draw(columns, cells);
  };
  const timer = tickMs === null ? null : setInterval(draw, tickMs);
  timer?.unref();
  return {
    update(event) {
      if (event.type === 'notice') return table.log(noticeText(event.message));
      updateRow(rows, event, clock());
      draw();
    },
    stop() {
      if (timer) clearInterval(timer);
      draw();
    },
  };
}
