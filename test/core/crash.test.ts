import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/index.ts';
import { backendCases, skipUnless } from '../helpers/backends.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const CHILD = join(repoRoot, 'test/fixtures/scripts/commit-child.mjs');
/**
 * Per backend; CI reruns this file as nobody inside `branching run` with the default below. The
 * points are drawn over the commit's ~80 steps; BRANCHING_CRASH_POINTS=500 is the long run.
 */
const KILL_POINTS = Number(process.env.BRANCHING_CRASH_POINTS ?? (process.getuid?.() === 0 ? 120 : 40));
const BACKENDS = backendCases(['clone', 'overlay']);

function template(): Parameters<typeof writeTree>[1] {
  const spec: Parameters<typeof writeTree>[1] = {
    'keep.txt': 'keep\n',
    'mode.sh': { content: '#!/bin/sh\n', mode: 0o644 },
    'swap/was-dir/inner.txt': 'inner\n',
    'swap/was-file': 'file\n',
    'locked/old.txt': 'old\n',
    'link-old': { symlink: 'keep.txt' },
  };
  for (let i = 0; i < 10; i++) spec[`mod/m${i}.txt`] = `original ${i}\n`;
  for (let i = 0; i < 3; i++) spec[`del/d${i}.txt`] = `delete me ${i}\n`;
  return spec;
}

function runChild(
  workspace: string,
  stateDir: string,
  crashAt: number | null,
  backend: string,
): Promise<{ code: number | null; signal: string | null }> {
  const env: NodeJS.ProcessEnv = { ...process.env, BRANCHING_BACKEND: backend };
  if (crashAt === null) delete env.BRANCHING_TEST_CRASH_AT_STEP;
  else env.BRANCHING_TEST_CRASH_AT_STEP = String(crashAt);
  const child = spawn(process.execPath, [CHILD, workspace, stateDir, 'crash'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

/** Mulberry32: a seeded PRNG, so that a failure names a reproducible kill point. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function lockedTemplate(root: string): Promise<void> {
  await writeTree(root, template());
  await fs.chmod(join(root, 'locked'), 0o555);
}

describe.each(BACKENDS)(
  'crash safety ($kind): a commit SIGKILLed at any point is all or nothing after recovery',
  ({ kind, available, reason, required }) => {
    const skip = skipUnless(available, `the ${kind} backend`, reason, required);
    // A skipped describe runs none of its hooks: the reference commit needs the backend too.
    describe.skipIf(skip)('kill points', () => {
      let tmp: ReturnType<typeof tempDir>;
      let before: Snapshot;
      let after: Snapshot;

      beforeAll(async () => {
        assertBuilt();
        tmp = tempDir();
        const reference = join(tmp.path, 'reference');
        await fs.mkdir(reference);
        await lockedTemplate(reference);
        before = await snapshot(reference);
        const outcome = await runChild(reference, join(tmp.path, 'reference-state'), null, kind);
        expect(outcome.code).toBe(0);
        after = await snapshot(reference);
        expect(after).not.toEqual(before);
      });

      afterAll(async () => {
        await tmp?.cleanup();
      });

      it(`holds at ${KILL_POINTS} random kill points, seen by a bare constructor and by open()`, async () => {
        const seed = Number(process.env.BRANCHING_CRASH_SEED ?? 20261125);
        const random = prng(seed);
        const points = Array.from({ length: KILL_POINTS }, () => Math.floor(random() * 80));
        const outcomes = { before: 0, after: 0, completed: 0 };
        const trial = async (index: number) => {
          const point = points[index];
          const root = join(tmp.path, `ws${index}`);
          await fs.mkdir(root);
          await lockedTemplate(root);
          const stateDir = join(tmp.path, `state${index}`);
          const exit = await runChild(root, stateDir, point, kind);
          if (exit.signal === null) {
            expect(exit.code, `kill point ${point} (seed ${seed})`).toBe(0);
            outcomes.completed++;
          } else {
            expect(exit.signal).toBe('SIGKILL');
          }
          // A bare constructor, with nothing awaited, must already show the old or the new tree.
          new Workspace(root, { stateDir, backend: kind, onNotice: () => {} });
          const bare = await snapshot(root);
          const which = JSON.stringify(bare) === JSON.stringify(after) ? 'after' : 'before';
          expect(bare, `kill point ${point} (seed ${seed}): a bare constructor shows a torn tree`).toEqual(
            which === 'after' ? after : before,
          );
          const ws = await Workspace.open(root, { stateDir, backend: kind, onNotice: () => {} });
          expect(await snapshot(root), `kill point ${point} (seed ${seed}): open() changed it`).toEqual(bare);
          outcomes[which]++;
          const report = await ws.gc();
          expect(report.replayedCommits + report.discardedCommits).toBe(0);
          const layoutDir = (await fs.readdir(stateDir))[0];
          expect(await fs.readdir(join(stateDir, layoutDir, 'txn'))).toEqual([]);
          expect(await fs.readdir(join(stateDir, layoutDir, 'branches'))).toEqual([]);
          await ws.close();
          await fs.chmod(join(root, 'locked'), 0o755);
          await fs.rm(root, { recursive: true, force: true });
          await fs.rm(stateDir, { recursive: true, force: true });
        };
        for (let i = 0; i < points.length; i += 2)
          await Promise.all([trial(i), i + 1 < points.length ? trial(i + 1) : null]);
        // The kill points must straddle the commit point, or the test proves nothing.
        console.log(
          `crash test (${kind}): ${points.length} kill points, torn 0, bricked 0, old ${outcomes.before}, new ${outcomes.after} (${outcomes.completed} completed)`,
        );
        expect(outcomes.before).toBeGreaterThan(5);
        expect(outcomes.after - outcomes.completed).toBeGreaterThan(5);
      }, 600_000);
    });
  },
);
