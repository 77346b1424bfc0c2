import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { liveTable } from '../../../src/cli/commands/speculate-progress.ts';
import type { BaselineResult, CandidateResult, ProgressEvent } from '../../../src/suite/speculate.ts';
import { assertBuilt, repoRoot } from '../../helpers/build.ts';
import { requireFeature } from '../../helpers/require-feature.ts';
import { commitAll, tempDir } from '../../helpers/tree.ts';
import { VirtualTerminal } from '../../helpers/virtual-terminal.ts';

const baseline = (state: BaselineResult['state'], done = false): ProgressEvent => ({
  type: 'baseline',
  baseline: {
    state,
    source: 'run',
    counts: done ? { passed: 120, failed: 3, skipped: 0 } : null,
    failing: [],
    durationMs: done ? 10_000 : null,
    pgid: null,
  },
});

const candidate = (
  index: number,
  state: CandidateResult['state'],
  durationMs: number | null = null,
): ProgressEvent => ({
  type: 'candidate',
  candidate: {
    index,
    name: `fix-${index}-with-a-name-long-enough-to-be-cut.diff`,
    state,
    counts: durationMs === null ? null : { passed: 123, failed: state === 'failed' ? 2 : 0, skipped: 0 },
    durationMs,
    error: null,
  } as CandidateResult,
});

let now = 0;
beforeEach(() => {
  vi.useFakeTimers();
  now = 0;
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

/** 40 s: a 10 s baseline, then four candidates for 30 s, with the table's clock ticking each second. */
function simulateRun(term: VirtualTerminal): void {
  const progress = liveTable(term, { clock: () => now, tickMs: 1000 });
  const advance = (ms: number) => {
    for (let t = 0; t < ms; t += 1000) {
      now += 1000;
      vi.advanceTimersByTime(1000);
    }
  };
  progress.update(baseline('running'));
  for (let i = 0; i < 4; i++) progress.update(candidate(i, 'queued'));
  advance(10_000);
  progress.update(baseline('done', true));
  progress.update({ type: 'notice', message: 'a notice in the middle of the run' });
  for (let i = 0; i < 4; i++) progress.update(candidate(i, 'running'));
  advance(20_000);
  progress.update(candidate(0, 'failed', 20_000));
  advance(10_000);
  for (let i = 1; i < 4; i++) progress.update(candidate(i, i === 1 ? 'winner' : 'cancelled', 30_000));
  progress.stop();
}

describe('the live table of speculate', () => {
  it('at 50 columns: nothing wraps, the final picture is the table, and no colour under NO_COLOR', () => {
    vi.stubEnv('NO_COLOR', '1');
    const term = new VirtualTerminal(50);
    simulateRun(term);
    expect(term.overflows).toBe(0);
    expect(term.unknownSequences).toEqual([]);
    expect(term.colorSequences).toBe(0);
    const screen = term.screen();
    expect(screen).toEqual([
      'branching: a notice in the middle of the run',
      '  candidate              state     pass/f… time',
      '  (baseline)             done      120/3   10.0s',
      '  1. fix-0-with-a-name-… failed    123/2   20.0s',
      '  2. fix-1-with-a-name-… winner    123/0   30.0s',
      '  3. fix-2-with-a-name-… cancelled 123/0   30.0s',
      '  4. fix-3-with-a-name-… cancelled 123/0   30.0s',
      '',
    ]);
  });

  it('a tick rewrites only the clocks of running rows', () => {
    const term = new VirtualTerminal(80);
    simulateRun(term);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape sequences are taken out to see the text.
    const ticks = term.writes.filter((w) => !/[a-z]{3}/.test(w.replace(/\x1b\[[?\d;]*[A-Za-z]/g, '')));
    expect(ticks.length).toBeGreaterThanOrEqual(35);
    for (const w of ticks) expect(Buffer.byteLength(w)).toBeLessThan(100);
    expect(term.bytesWritten).toBeLessThan(8_000);
  });

  it('colours states on a terminal without NO_COLOR', () => {
    vi.stubEnv('NO_COLOR', '');
    const term = new VirtualTerminal(80);
    simulateRun(term);
    expect(term.colorSequences).toBeGreaterThan(0);
  });
});

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const tmp = tempDir('branching-pty-');
afterAll(() => tmp.cleanup());

/** A one-file repository and a patch of it. */
function project(): { repo: string; patch: string } {
  const repo = join(tmp.path, 'repo');
  const patch = join(tmp.path, 'c.diff');
  mkdirSync(repo);
  writeFileSync(join(repo, 'f.txt'), 'a\n');
  commitAll(repo, 'one');
  writeFileSync(patch, '--- a/f.txt\n+++ b/f.txt\n@@ -1 +1,2 @@\n a\n+b\n');
  return { repo, patch };
}

/** `branching speculate` on a pseudo-terminal of `columns` columns (util-linux script), as a user sees it. */
function speculateOnTerminal(
  { repo, patch }: ReturnType<typeof project>,
  columns: number,
  env: NodeJS.ProcessEnv,
): string {
  const cli = [process.execPath, join(repoRoot, 'dist', 'cli.js'), 'speculate', '--dry-run', '-C', repo];
  const command = `stty cols ${columns} rows 30; exec ${cli.join(' ')} --patch ${patch} --framework none -- true`;
  const { CI: _ci, ...outside } = process.env; // the table is off under CI
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], { encoding: 'utf8', env: { ...outside, ...env } });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return r.stdout;
}

describe('speculate on a real pseudo-terminal', () => {
  it.skipIf(!requireFeature('script (util-linux), for a pseudo-terminal', hasScript))(
    'at 50 columns the table fits, every hidden cursor is shown again, and NO_COLOR holds',
    () => {
      assertBuilt();
      const files = project();
      for (const noColor of [false, true]) {
        const output = speculateOnTerminal(files, 50, noColor ? { NO_COLOR: '1' } : { NO_COLOR: '' });
        const table = output.slice(0, output.indexOf('winner:'));
        const term = new VirtualTerminal(50);
        term.write(table.replace(/\r\n/g, '\n'));
        expect(term.tableOverflows).toBe(0);
        expect(term.screen().join('\n')).toMatch(/1\. c\.diff +winner/);
        const hides = table.split('\x1b[?25l').length - 1;
        expect(hides).toBeGreaterThan(0);
        expect(table.split('\x1b[?25h').length - 1).toBe(hides);
        if (noColor) expect(term.colorSequences).toBe(0);
        else expect(term.colorSequences).toBeGreaterThan(0);
      }
    },
  );
});
