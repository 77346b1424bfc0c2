// speculate / best-of: four candidate patches on the Vitest fixture project, against the loop bots run
// today (`git apply p && <test> && break; git checkout .`, one candidate at a time) in the same run.
// Reports time to the first commit and parallel efficiency (speedup over the loop / slots used).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, speculate } from '../dist/index.js';
import { benchDir, fmtMs, median, now, printTable } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'test', 'fixtures', 'speculate');
const REPS = Number(process.env.BENCH_REPS ?? 3);
const PARALLEL = Number(process.env.BENCH_SPECULATE_PARALLEL ?? availableParallelism());
const ORDERS = {
  'right last': ['wrong', 'partial', 'breaking', 'right'],
  'right first': ['right', 'wrong', 'partial', 'breaking'],
};
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };

/** A fresh git-tracked copy of the fixture. */
function freshProject(work, name) {
  const dir = join(work, name);
  cpSync(join(fixtures, 'vitest-project'), dir, { recursive: true });
  // A node_modules of links to the repository's packages: runners can write into it (.vite-temp).
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (!name.startsWith('.') || name === '.bin') symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
  }
  execFileSync('git', ['init', '-q'], { cwd: dir, env: gitEnv });
  execFileSync('git', ['add', '-A'], { cwd: dir, env: gitEnv });
  execFileSync('git', ['commit', '-qm', 'fixture'], { cwd: dir, env: gitEnv });
  return dir;
}

const vitestBin = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const patch = (name) => join(fixtures, 'patches', `${name}.diff`);

/** The sequential loop: apply, test, keep the first that passes, otherwise reset. */
function sequentialLoop(dir, order) {
  const start = now();
  for (const name of order) {
    const applied = spawnSync('git', ['apply', patch(name)], { cwd: dir });
    if (applied.status === 0) {
      const test = spawnSync(process.execPath, [vitestBin, 'run'], { cwd: dir, stdio: 'ignore' });
      if (test.status === 0) return { ms: now() - start, winner: name };
    }
    spawnSync('git', ['checkout', '-q', '.'], { cwd: dir });
  }
  return { ms: now() - start, winner: null };
}

function checkFixed(dir) {
  if (!readFileSync(join(dir, 'src', 'math.js'), 'utf8').includes('return a * b;')) throw new Error(`${dir}: not fixed`);
}

export async function run() {
  const rows = [];
  for (const [label, order] of Object.entries(ORDERS)) {
    const loop = [];
    const first = [];
    const firstTotal = [];
    const best = [];
    let suiteRuns = 0;
    let suiteMs = 0;
    for (let r = 0; r < REPS; r++) {
      const work = benchDir('branching-bench-spec-');
      try {
        const seqDir = freshProject(work, 'seq');
        const seq = sequentialLoop(seqDir, order);
        if (seq.winner !== 'right') throw new Error(`sequential loop picked ${seq.winner}`);
        loop.push(seq.ms);
        const candidates = order.map((n) => ({ patchFile: patch(n) }));
        const test = { framework: 'vitest' };
        const specDir = freshProject(work, 'spec');
        const s = await speculate({ workspace: specDir, candidates, test, maxParallel: PARALLEL });
        if (s.winner?.name !== 'right.diff') throw new Error('speculate picked the wrong winner');
        checkFixed(specDir);
        first.push(s.timings.commitMs);
        firstTotal.push(s.timings.totalMs);
        const bestDir = freshProject(work, 'best');
        const b = await bestOf({ workspace: bestDir, candidates, test, maxParallel: PARALLEL });
        if (b.winner?.name !== 'right.diff') throw new Error('bestOf picked the wrong winner');
        checkFixed(bestDir);
        best.push(b.timings.totalMs);
        // Work done by bestOf's suite runs (baseline included): what a perfectly parallel run would divide.
        const runs = [b.baseline.durationMs, ...b.candidates.map((c) => c.durationMs)].filter((x) => x !== null);
        suiteRuns += runs.length;
        suiteMs += runs.reduce((x, y) => x + y, 0);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
    const loopMs = median(loop);
    const firstMs = median(first);
    const bestMs = median(best);
    const serialWork = suiteMs / REPS;
    rows.push({
      order: label,
      'sequential loop': fmtMs(loopMs),
      'speculate: first commit': fmtMs(firstMs),
      'speculate: done': fmtMs(median(firstTotal)),
      'best-of: done': fmtMs(bestMs),
      'first commit vs loop': `${(loopMs / firstMs).toFixed(2)}x`,
      'best-of efficiency': `${((serialWork / bestMs / PARALLEL) * 100).toFixed(0)}%`,
      'suite runs (best-of)': suiteRuns / REPS,
      raw: { loopMs, firstMs, firstTotalMs: median(firstTotal), bestMs, serialWorkMs: serialWork, parallel: PARALLEL, reps: REPS },
    });
  }
  printTable(
    `speculate: 4 candidates on the vitest fixture, maxParallel ${PARALLEL}, median of ${REPS} (efficiency = sum of suite run times / (wall time x slots))`,
    [
      'order',
      'sequential loop',
      'speculate: first commit',
      'speculate: done',
      'best-of: done',
      'first commit vs loop',
      'best-of efficiency',
      'suite runs (best-of)',
    ],
    rows,
  );
  return rows;
}
