import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { type Strategy, TreeOfThoughts } from '../../src/index.ts';
import { describeOnBackends, put } from './harness.ts';

/** A strategy that writes `file` and reports `[ok, score]`. */
const writes =
  (file: string, content: string, ok: boolean, score: number): Strategy =>
  async (path) => {
    await put(path, { [file]: content });
    return [ok, score];
  };

describeOnBackends('TreeOfThoughts', (env) => {
  it('with one level, commits the best strategy', async () => {
    const outcome = await new TreeOfThoughts([
      writes('plan.txt', 'a', true, 2),
      writes('plan.txt', 'b', true, 7),
      writes('plan.txt', 'c', false, 9),
      async () => true, // a bare true scores 1
    ]).run(env.ws);
    expect(outcome.winner?.branchIndex).toBe(1);
    expect(outcome.allResults.map((r) => r.score)).toEqual([2, 7, 9, 1]);
    expect(outcome.winner?.branchPath).toBe('/main/tot_0_1');
    await env.expectWorkspace({ 'plan.txt': 'b' });
  });

  it('expands the accumulated state level by level and stops at an empty expansion', async () => {
    const expansions: Array<{ depth: number; plan: string; refined: string | null }> = [];
    const outcome = await new TreeOfThoughts([writes('plan.txt', 'a', true, 2), writes('plan.txt', 'b', true, 7)], {
      maxDepth: 4,
      expand: async (path, depth) => {
        const plan = await fs.readFile(join(path, 'plan.txt'), 'utf8');
        const refined = await fs.readFile(join(path, 'refined.txt'), 'utf8').catch(() => null);
        expansions.push({ depth, plan, refined });
        if (depth === 2) return [];
        return [writes('refined.txt', `${plan}-x`, true, 1), writes('refined.txt', `${plan}-y`, true, 3)];
      },
    }).run(env.ws);
    // expand sees the root after each level's winner committed into it.
    expect(expansions).toEqual([
      { depth: 1, plan: 'b', refined: null },
      { depth: 2, plan: 'b', refined: 'b-y' },
    ]);
    expect(outcome.committed).toBe(true);
    expect(outcome.winner).toMatchObject({ depth: 1, branchIndex: 1, branchPath: '/main/tot_root/tot_1_1' });
    expect(outcome.allResults.map((r) => [r.depth, r.branchIndex])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    await env.expectWorkspace({ 'plan.txt': 'b', 'refined.txt': 'b-y' });
  });

  it('aborts the root when a level has no success, and uses evaluate for scores', async () => {
    const outcome = await new TreeOfThoughts([writes('plan.txt', 'a', true, 0), writes('plan.txt', 'b', true, 0)], {
      maxDepth: 2,
      evaluate: async (path) => ((await fs.readFile(join(path, 'plan.txt'), 'utf8')) === 'a' ? 5 : 1),
      expand: () => [writes('refined.txt', 'nope', false, 0)],
    }).run(env.ws);
    expect(outcome.allResults.map((r) => r.score)).toEqual([5, 1, 0]);
    expect(outcome.committed).toBe(false);
    await env.expectWorkspace();
  });

  it('rejects when expand throws, leaving nothing behind', async () => {
    const failure = new Error('planner down');
    await expect(
      new TreeOfThoughts([writes('plan.txt', 'a', true, 1)], {
        maxDepth: 2,
        expand: () => {
          throw failure;
        },
      }).run(env.ws),
    ).rejects.toBe(failure);
    await env.expectWorkspace();
  });
});
