import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { Workspace } from '../../src/core/workspace.ts';
import { liveProcessesInGroup } from '../../src/suite/executor.ts';
import { bestOf, type CandidateResult, speculate } from '../../src/suite/speculate.ts';
import { copyFixture, patchFile } from '../helpers/fixture-project.ts';
import { type Snapshot, snapshot } from '../helpers/tree.ts';

/** src/math.js after the right fix: only `mul`'s return line differs from the fixture. */
function fixedMath(original: string): string {
  const lines = original.split('\n');
  expect(lines[5]).toBe('  return a + b;');
  lines[5] = '  return a * b;';
  return lines.join('\n');
}

const byName = (results: CandidateResult[], name: string) => results.find((r) => r.name === name)!;
const diff = (name: string) => ({ patchFile: patchFile(name) });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function project(framework: 'vitest' | 'jest'): Promise<{ path: string; before: Snapshot; math: string }> {
  const p = copyFixture(`${framework}-project`);
  cleanups.push(p.cleanup);
  return { path: p.path, before: await snapshot(p.path), math: readFileSync(join(p.path, 'src/math.js'), 'utf8') };
}

/** The workspace equals its old self except src/math.js, which holds exactly the right fix. */
async function expectRightFixCommitted(path: string, before: Snapshot, math: string): Promise<void> {
  expect(await fs.readFile(join(path, 'src/math.js'), 'utf8')).toBe(fixedMath(math));
  const after = await snapshot(path);
  expect(after['src/math.js']).not.toBe(before['src/math.js']);
  expect({ ...after, 'src/math.js': 'x' }).toEqual({ ...before, 'src/math.js': 'x' });
}

describe.each(['vitest', 'jest'] as const)('%s fixture', (framework) => {
  test('bestOf: of right, wrong, partial, non-applying and breaking candidates, the right one is committed', async () => {
    const { path, before, math } = await project(framework);
    const outcome = await bestOf({
      workspace: path,
      candidates: [
        diff('wrong'),
        diff('partial'),
        diff('non-applying'),
        diff('breaking'),
        diff('right'),
        // Also right, but with more changed lines: loses the tie on the default score.
        {
          name: 'right, verbose',
          files: { 'src/math.js': fixedMath(math).replace('function mul', '// multiplies\nfunction mul') },
        },
      ],
      test: { framework: 'auto' },
      maxParallel: 2,
    });
    expect(outcome.framework).toBe(framework);
    expect(outcome.baseline.failing).toEqual(['test/mul.test.js > multiplies']);
    expect(outcome.baseline.counts).toEqual({ passed: 1, failed: 1, skipped: 0 });
    const c = outcome.candidates;
    expect(byName(c, 'wrong.diff')).toMatchObject({
      state: 'failed',
      stage: 'related',
      stillFailing: ['test/mul.test.js > multiplies'],
      regressions: [],
    });
    expect(byName(c, 'partial.diff')).toMatchObject({
      state: 'failed',
      stillFailing: ['test/mul.test.js > multiplies'],
    });
    expect(byName(c, 'partial.diff').failures[0].message).toMatch(/-6/);
    const nonApplying = byName(c, 'non-applying.diff');
    expect(nonApplying).toMatchObject({
      state: 'error',
      error: { name: 'PatchError', code: 'ERR_PATCH_APPLY' },
      counts: null,
    });
    expect(nonApplying.error?.message).toMatch(/patch does not apply/);
    expect(byName(c, 'breaking.diff')).toMatchObject({
      state: 'failed',
      regressions: ['test/add.test.js > adds'],
      fixed: ['test/mul.test.js > multiplies'],
    });
    expect(byName(c, 'right, verbose')).toMatchObject({ state: 'passed', changedLines: 3, score: 2 });
    expect(byName(c, 'right.diff')).toMatchObject({
      state: 'winner',
      changedLines: 2,
      score: 2,
      changedFiles: ['src/math.js'],
    });
    expect(outcome.winner?.name).toBe('right.diff');
    expect(outcome.committed).toBe(true);
    await expectRightFixCommitted(path, before, math);
  });
});

test('firstWins: the first passing candidate is committed and a hanging one is killed with its process group', async () => {
  const { path, before, math } = await project('vitest');
  let hangStarted!: () => void;
  const hanging = new Promise<void>((resolve) => {
    hangStarted = resolve;
  });
  const outcome = await speculate({
    workspace: path,
    candidates: [
      diff('hang'),
      // Applies only once the hanging suite is running, so the win must kill a live suite.
      {
        name: 'right, once the hang runs',
        apply: async (dir: string) => {
          await hanging;
          await fs.writeFile(join(dir, 'src/math.js'), fixedMath(math));
        },
      },
    ],
    test: { framework: 'vitest' },
    maxParallel: 3,
    onProgress: (e) => {
      if (e.type === 'candidate' && e.candidate.name === 'hang.diff' && e.candidate.pgid) hangStarted();
    },
  });
  const [hang, right] = outcome.candidates;
  expect(right.state).toBe('winner');
  expect(hang.state).toBe('killed');
  expect(hang.pgid).toBeGreaterThan(0);
  expect(liveProcessesInGroup(hang.pgid!)).toEqual([]);
  expect(outcome.timings.commitMs).toBeGreaterThan(0);
  await expectRightFixCommitted(path, before, math);
});

/** Resolves once some running suite's progress file (see reporters/progress.cjs) names every one of `titles`. */
async function progressNamed(...titles: string[]): Promise<void> {
  for (;;) {
    for (const dir of readdirSync(tmpdir()).filter((d) => d.startsWith('branching-suite-'))) {
      const file = join(tmpdir(), dir, 'progress.jsonl');
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      if (titles.every((t) => text.includes(JSON.stringify(t)))) return;
    }
    await delay(20); // polling the file the suite appends to: the event itself, not a guess at its timing
  }
}

test.each(['vitest', 'jest'] as const)(
  '%s: a candidate killed by the winner reports the tests it had finished',
  async (framework) => {
    const { path } = await project(framework);
    const title = `finishes before the hang ${framework}`;
    // Jest's globals; the Vitest fixture is an ES module package
    const stuck = `${framework === 'vitest' ? "import { expect, test } from 'vitest';" : ''}
test(${JSON.stringify(title)}, () => expect(1).toBe(1));
test('never finishes', () => new Promise(() => {}), 600000);
`;
    const math = readFileSync(join(path, 'src/math.js'), 'utf8');
    const outcome = await speculate({
      workspace: path,
      candidates: [
        { name: 'hangs', files: { 'test/stuck.test.js': stuck } },
        {
          name: 'right, once the other has results',
          apply: async (dir: string) => {
            await progressNamed(title);
            await fs.writeFile(join(dir, 'src/math.js'), fixedMath(math));
          },
        },
      ],
      test: { framework },
      maxParallel: 3,
      dryRun: true,
    });
    const [hang, right] = outcome.candidates;
    expect(right.state).toBe('winner');
    expect(hang).toMatchObject({ state: 'killed', stage: 'related', counts: { passed: 1, skipped: 0 } });
    // Stage 1 may also have run the test that fails at baseline, if the baseline was in by then.
    expect(hang.failures.map((f) => f.id)).toEqual(hang.counts?.failed ? ['test/mul.test.js > multiplies'] : []);
  },
);

test('dryRun + keep: the winner is chosen, the workspace is untouched, and the branches stay for inspection', async () => {
  const { path, before } = await project('jest');
  const ws = await Workspace.open(path, { onNotice: () => {} });
  const outcome = await speculate({
    workspace: ws,
    candidates: [diff('wrong'), diff('right')],
    test: { framework: 'jest' },
    maxParallel: 3,
    dryRun: true,
    keep: true,
  });
  expect(outcome.winner?.name).toBe('right.diff');
  expect(outcome.committed).toBe(false);
  expect(await snapshot(path)).toEqual(before);
  const kept = outcome.winner!.branchDir!;
  expect(readFileSync(join(kept, 'src/math.js'), 'utf8')).toContain('return a * b;');
  const wrongKept = outcome.candidates[0].branchDir;
  if (outcome.candidates[0].state === 'failed')
    expect(readFileSync(join(wrongKept!, 'src/math.js'), 'utf8')).toContain('a - b');
  await ws.close();
  expect(existsSync(kept)).toBe(false);
  expect(readdirSync(join(ws.stateDir, 'branches'))).toEqual([]);
});

test('no candidate passes: nothing is committed and the workspace stays byte-identical', async () => {
  const { path, before } = await project('jest');
  const outcome = await speculate({
    workspace: path,
    candidates: [diff('breaking'), diff('partial')],
    test: { framework: 'jest' },
    maxParallel: 3,
  });
  expect(outcome.winner).toBeNull();
  expect(outcome.committed).toBe(false);
  expect(outcome.candidates.map((c) => c.state)).toEqual(['failed', 'failed']);
  expect(await snapshot(path)).toEqual(before);
});
