/**
 * A table redrawn in place on a terminal. Every line is cut to the terminal
 * width (one column short of it, so that no terminal wraps or enters its
 * pending-wrap state), and each redraw rewrites only the cells that changed,
 * from the first changed cell of a row to its end. The cursor is hidden
 * within each write and shown again at its end, so that no exit, signal or
 * crash between two writes can leave the terminal without a cursor.
 */

const CSI = '\x1b[';
const HIDE_CURSOR = `${CSI}?25l`;
const SHOW_CURSOR = `${CSI}?25h`;

export type Color = 'green' | 'red' | 'yellow' | 'dim';
const SGR: Record<Color, [on: string, off: string]> = {
  green: ['32', '39'],
  red: ['31', '39'],
  yellow: ['33', '39'],
  dim: ['2', '22'],
};

/** What the table writes to: process.stderr, or any stream with the same fields (tests pass their own). */
export interface TerminalStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Cell {
  text: string;
  /** Shown instead of `text` when `text` does not fit (e.g. `12/3` for `12 passed, 3 failed`). */
  short?: string;
  color?: Color;
}

/** `ideal` is the width wanted; when the terminal is narrower, columns shrink towards `min` in proportion. */
export interface Column {
  ideal: number;
  min: number;
}

const INDENT = 2;
const SEPARATOR = 1;
const DEFAULT_COLUMNS = 80;

/** Colour only on a terminal, and never under NO_COLOR (https://no-color.org: set and not empty). */
export function colorEnabled(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** The widths of `columns` in `width` terminal columns; a width of 0 drops the column. */
export function layout(columns: Column[], width: number): number[] {
  const ideal = columns.map((c) => Math.max(c.ideal, c.min));
  const needed = (widths: number[]) =>
    INDENT + widths.reduce((sum, w) => sum + w, 0) + SEPARATOR * (widths.filter((w) => w > 0).length - 1);
  const over = needed(ideal) - width;
  if (over <= 0) return ideal;
  const slack = ideal.map((w, i) => w - (columns[i]?.min ?? 0));
  const totalSlack = slack.reduce((sum, s) => sum + s, 0);
  if (totalSlack <= over) return columns.map((c) => c.min);
  const widths = ideal.map((w, i) => w - Math.floor((over * (slack[i] ?? 0)) / totalSlack));
  for (let i = 0; needed(widths) > width && i < widths.length * 2; i++) {
    const j = i % widths.length;
    if ((widths[j] ?? 0) > (columns[j]?.min ?? 0)) widths[j] = (widths[j] ?? 0) - 1;
  }
  return widths;
}

/** `text` in exactly `width` columns: control characters become spaces, a cut shows as `…`. */
export function fitText(text: string, width: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not reach the terminal.
  const chars = [...text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')];
  if (chars.length <= width) return chars.join('') + ' '.repeat(width - chars.length);
  return width <= 0 ? '' : `${chars.slice(0, width - 1).join('')}…`;
}

interface DrawnRow {
  /** Each cell as written, with its leading indent or separator and its colour. */
  cells: string[];
  /** The terminal column (0-based) where each of `cells` starts. */
  starts: number[];
  width: number;
}

function renderRow(row: Cell[], widths: number[], color: boolean): DrawnRow {
  const cells: string[] = [];
  const starts: number[] = [];
  let at = 0;
  widths.forEach((width, i) => {
    if (width <= 0) return;
    const lead = cells.length === 0 ? ' '.repeat(INDENT) : ' '.repeat(SEPARATOR);
    const cell = row[i] ?? { text: '' };
    const fits = [...cell.text].length <= width || cell.short === undefined;
    const text = fitText(fits ? cell.text : (cell.short ?? ''), width);
    const sgr = color && cell.color ? SGR[cell.color] : null;
    starts.push(at);
    cells.push(sgr ? `${lead}${CSI}${sgr[0]}m${text}${CSI}${sgr[1]}m` : `${lead}${text}`);
    at += lead.length + width;
  });
  return { cells, starts, width: at };
}

function firstDifference(a: string[], b: string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

export class LiveTable {
  /** The rows as they are on screen; the cursor rests at the start of the line below them. */
  private drawn: DrawnRow[] = [];
  private last: { columns: Column[]; rows: Cell[][] } | null = null;
  private readonly color: boolean;

  constructor(
    private readonly stream: TerminalStream,
    options: { color?: boolean } = {},
  ) {
    this.color = options.color ?? colorEnabled(stream);
  }

  /** Brings the screen to `rows`, in one write of only what changed (none when nothing did). */
  draw(columns: Column[], rows: Cell[][]): void {
    this.last = { columns, rows };
    const next = this.render(columns, rows);
    const update = this.changes(next);
    if (update) this.stream.write(`${HIDE_CURSOR}${update}${SHOW_CURSOR}`);
    this.drawn = next;
  }

  /** Prints `text` where the table was and draws the table again below it: a notice never lands inside it. */
  log(text: string): void {
    const clear = this.drawn.length ? `${CSI}${this.drawn.length}A\r${CSI}J` : '';
    this.stream.write(`${clear}${text}\n`);
    this.drawn = [];
    if (this.last) this.draw(this.last.columns, this.last.rows);
  }

  private render(columns: Column[], rows: Cell[][]): DrawnRow[] {
    const widths = layout(columns, (this.stream.columns || DEFAULT_COLUMNS) - 1);
    return rows.map((row) => renderRow(row, widths, this.color));
  }

  private changes(next: DrawnRow[]): string {
    let out = '';
    let line = this.drawn.length;
    const moveTo = (target: number) => {
      if (target < line) out += `${CSI}${line - target}A`;
      else if (target > line) out += `${CSI}${target - line}B`;
      line = target;
    };
    this.drawn.forEach((old, i) => {
      const row = next[i] ?? { cells: [], starts: [], width: 0 };
      const from = firstDifference(old.cells, row.cells);
      if (from < 0) return;
      moveTo(i);
      out += `${CSI}${(row.starts[from] ?? row.width) + 1}G${row.cells.slice(from).join('')}${CSI}K`;
    });
    if (out) {
      moveTo(this.drawn.length);
      out += '\r';
    }
    for (const row of next.slice(this.drawn.length)) out += `${row.cells.join('')}\n`;
    return out;
  }
}
