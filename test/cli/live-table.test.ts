import { describe, expect, it } from 'vitest';
import { type Cell, type Column, colorEnabled, fitText, LiveTable, layout } from '../../src/cli/live-table.ts';
import { VirtualTerminal } from '../helpers/virtual-terminal.ts';

const COLUMNS: Column[] = [
  { ideal: 30, min: 8 },
  { ideal: 9, min: 7 },
  { ideal: 24, min: 0 },
  { ideal: 6, min: 5 },
];

const row = (name: string, state: string, result: string, time: string): Cell[] => [
  { text: name },
  { text: state, color: state === 'failed' ? 'red' : 'green' },
  { text: result },
  { text: time },
];

const rows = (): Cell[][] => [
  row('candidate', 'state', 'passed/failed', 'time'),
  row('(baseline)', 'done', '120 passed, 3 failed', '4.2s'),
  row('1. a-rather-long-patch-name-that-never-fits.diff', 'failed', '118 passed, 5 failed', '3.9s'),
  row('2. fix\nwith a newline.diff', 'running', '', '2s'),
  row('3. fix-c.diff', 'queued', '', ''),
];

describe('the live table', () => {
  it('fits 50 columns without wrapping, and draws the table it was given', () => {
    const term = new VirtualTerminal(50);
    const table = new LiveTable(term, { color: true });
    table.draw(COLUMNS, rows());
    const screen = term.screen();
    expect(term.overflows).toBe(0);
    expect(term.unknownSequences).toEqual([]);
    expect(screen.slice(0, 5).every((line) => line.length < 50)).toBe(true);
    expect(screen[2]).toBe('  1. a-rather-long-… failed   118 passed,… 3.9s');
    expect(screen[3]).toMatch(/^ {2}2\. fix with a \S*… running +2s$/);
    expect(screen).toHaveLength(6); // five rows and the empty line where the cursor rests
  });

  it('a redraw where one row changed writes only that row, from its first changed cell', () => {
    const term = new VirtualTerminal(80);
    const table = new LiveTable(term, { color: false });
    table.draw(COLUMNS, rows());
    const full = term.bytesWritten;
    const next = rows();
    next[4] = row('3. fix-c.diff', 'running', '', '0s');
    table.draw(COLUMNS, next);
    const update = term.writes.at(-1) ?? '';
    expect(update).toContain('running');
    expect(update).not.toMatch(/baseline|fix-c|a-rather-long|passed/);
    expect(Buffer.byteLength(update)).toBeLessThan(full / 5);
    expect(term.screen()[4]).toMatch(/^ {2}3\. fix-c\.diff +running +0s$/);
    table.draw(COLUMNS, next);
    expect(term.writes).toHaveLength(2); // nothing changed: nothing written
  });

  it('hides the cursor within each write and shows it again at its end', () => {
    const term = new VirtualTerminal(50);
    const table = new LiveTable(term, { color: true });
    table.draw(COLUMNS, rows());
    const next = rows();
    next[3] = row('2. fix.diff', 'passed', '123 passed, 0 failed', '5.0s');
    table.draw(COLUMNS, next);
    for (const w of term.writes) {
      expect(w.startsWith('\x1b[?25l')).toBe(true);
      expect(w.endsWith('\x1b[?25h')).toBe(true);
      expect(w.split('\x1b[?25l').length).toBe(w.split('\x1b[?25h').length);
    }
  });

  it('colours only on a terminal without NO_COLOR', () => {
    expect(colorEnabled({ write: () => true, isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ write: () => true, isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ write: () => true }, {})).toBe(false);
    const plain = new VirtualTerminal(80);
    new LiveTable(plain, { color: false }).draw(COLUMNS, rows());
    expect(plain.colorSequences).toBe(0);
    const coloured = new VirtualTerminal(80);
    new LiveTable(coloured, { color: true }).draw(COLUMNS, rows());
    expect(coloured.colorSequences).toBeGreaterThan(0);
  });

  it('a notice goes where the table was, and the table is drawn again below it', () => {
    const term = new VirtualTerminal(50);
    const table = new LiveTable(term, { color: false });
    table.draw(COLUMNS, rows());
    const before = term.screen().slice(0, 5);
    table.log('branching: a notice');
    table.log('branching: another notice');
    expect(term.screen()).toEqual(['branching: a notice', 'branching: another notice', ...before, '']);
    expect(term.tableOverflows).toBe(0);
  });

  it('a narrower terminal redraws every row at the new width', () => {
    const term = new VirtualTerminal(80);
    const table = new LiveTable(term, { color: false });
    table.draw(COLUMNS, rows());
    (term as { columns: number }).columns = 40;
    table.draw(COLUMNS, rows());
    expect(term.overflows).toBe(0);
    expect(term.screen().every((line) => line.length < 40)).toBe(true);
  });
});

describe('layout and fit', () => {
  it('shrinks columns in proportion to their slack, never below their minimum', () => {
    expect(layout(COLUMNS, 120)).toEqual([30, 9, 24, 6]);
    const narrow = layout(COLUMNS, 49);
    expect(2 + narrow.reduce((a, b) => a + b, 0) + 3).toBeLessThanOrEqual(49);
    for (const [i, w] of narrow.entries()) expect(w).toBeGreaterThanOrEqual(COLUMNS[i]?.min ?? 0);
    expect(layout(COLUMNS, 10)).toEqual([8, 7, 0, 5]);
  });

  it('cuts with an ellipsis and pads to the exact width', () => {
    expect(fitText('abcdef', 4)).toBe('abc…');
    expect(fitText('ab', 4)).toBe('ab  ');
    expect(fitText('a\tb', 3)).toBe('a b');
    expect(fitText('x', 0)).toBe('');
  });
});
