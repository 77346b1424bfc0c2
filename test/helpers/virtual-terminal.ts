/**
 * A terminal screen that interprets what the CLI's live table writes (cursor moves, line clears, SGR,
 * cursor visibility), so that tests can check the picture a user sees rather than the bytes.
 * Anything written past the last column counts as an overflow: a real terminal would have wrapped it.
 */
export class VirtualTerminal {
  readonly isTTY = true;
  readonly writes: string[] = [];
  private readonly grid: string[][] = [[]];
  private row = 0;
  private col = 0;
  overflows = 0;
  /** Overflows while the cursor was hidden: in what the live table itself drew. */
  tableOverflows = 0;
  private cursorHidden = false;
  colorSequences = 0;
  unknownSequences: string[] = [];

  constructor(readonly columns: number) {}

  write(chunk: string): boolean {
    this.writes.push(chunk);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it interprets.
    for (const m of chunk.matchAll(/\x1b\[([?\d;]*)([A-Za-z])|\x1b|([\r\n])|([^\x1b\r\n])/gsu)) {
      if (m[2] !== undefined) this.control(m[1] ?? '', m[2]);
      else if (m[3] === '\r') this.col = 0;
      else if (m[3] === '\n') this.moveTo(this.row + 1, 0);
      else if (m[4] !== undefined) this.put(m[4]);
      else this.unknownSequences.push(m[0]);
    }
    return true;
  }

  /** The screen, one string per line, without trailing blanks. */
  screen(): string[] {
    return this.grid.map((line) =>
      Array.from(line, (c) => c ?? ' ')
        .join('')
        .trimEnd(),
    );
  }

  get bytesWritten(): number {
    return this.writes.reduce((sum, w) => sum + Buffer.byteLength(w), 0);
  }

  private line(): string[] {
    while (this.grid.length <= this.row) this.grid.push([]);
    return this.grid[this.row] as string[];
  }

  private moveTo(row: number, col: number): void {
    this.row = Math.max(0, row);
    this.col = Math.max(0, col);
    this.line();
  }

  private put(ch: string): void {
    if (this.col >= this.columns) {
      this.overflows++;
      if (this.cursorHidden) this.tableOverflows++;
      return;
    }
    this.line()[this.col++] = ch;
  }

  private control(params: string, final: string): void {
    const n = Number(params || '1');
    if (final === 'A') this.moveTo(this.row - n, this.col);
    else if (final === 'B') this.moveTo(this.row + n, this.col);
    else if (final === 'G') this.moveTo(this.row, n - 1);
    else if (final === 'K' && params === '2') this.line().length = 0;
    else if (final === 'J') {
      this.grid.length = this.row + 1;
      this.line().length = Math.min(this.line().length, this.col);
    } else if (final === 'K') this.line().length = Math.min(this.line().length, this.col);
    else if (final === 'm') this.colorSequences++;
    else if ((final === 'l' || final === 'h') && params === '?25') this.cursorHidden = final === 'l';
    else this.unknownSequences.push(`CSI ${params}${final}`);
  }
}
