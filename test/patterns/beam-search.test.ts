import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { BeamSearch, type Strategy } from '../../src/index.ts';
import { describeOnBackends, put } from './harness.ts';

/** Appends `step` to trail.txt (so the committed trail shows the winning path) and scores it. */
const step =
  (name: string, score: number, ok = true): Strategy =>
  async (path) => {
    const trail = await fs.readFile(join(path, 'trail.txt'), 'utf8').catch(() => '');
    await put(path, { 'trail.txt': `${trail}${name}\n` });
    return [ok, score];
  };

async function trailOf(path: string): Promise<string> {
  return (await fs.readFile(join(path, 'trail.txt'), 'utf8')).trim().replaceAll('\n', '>');
}

describeOnBackends('BeamSearch', (env) => {
  it('keeps the global top-K at each level, prunes the rest, and commits the best beam', async () => {
    const expanded: string[] = [];
    const refinements: Record<string, Strategy[]> = {
      b: [step('b1', 5), step('b2', 9)],
      c: [step('c1', 8), step('c2', 1)],
    };
    const outcome = await new BeamSearch([step('a', 1), step('b', 4), step('c', 3), step('d', 2)], {
      beamWidth: 2,
      maxDepth: 2,
      expand: async (path, depth) => {
        const trail = await trailOf(path);
        expanded.push(`${depth}:${trail}`);
        return refinements[trail] ?? [];
      },
    }).run(env.ws);
    expect(expanded).toEqual(['1:b', '1:c']); // a and d were pruned at level 0
    expect(outcome.winner).toMatchObject({ depth: 1, score: 9, branchPath: '/main/beam_0_1/beam_1_1' });
    expect(outcome.allResults.filter((r) => r.depth === 1).map((r) => [r.parent, r.score])).toEqual([
      [1, 5],
      [1, 9],
      [2, 8],
      [2, 1],
    ]);
    await env.expectWorkspace({ 'trail.txt': 'b\nb2\n' });
  });

  it('lets two winners of the same beam survive as separate beams without colliding', async () => {
    const expanded: string[] = [];
    const outcome = await new BeamSearch([step('a', 5), step('z', 1)], {
      beamWidth: 2,
      maxDepth: 3,
      expand: async (path, depth) => {
        const trail = await trailOf(path);
        expanded.push(`${depth}:${trail}`);
        if (depth === 1) return trail === 'a' ? [step('a1', 9), step('a2', 8)] : [step('z1', 1)];
        return trail === 'a>a1' ? [step('a1x', 2)] : [step('a2x', 7)];
      },
    }).run(env.ws);
    // Both survivors of level 1 are children of beam "a": each is expanded as its own beam.
    expect(expanded).toEqual(['1:a', '1:z', '2:a>a1', '2:a>a2']);
    expect(outcome.committed).toBe(true);
    expect(outcome.winner).toMatchObject({ depth: 2, score: 7 });
    expect(outcome.allResults.some((r) => r.exception !== null)).toBe(false);
    await env.expectWorkspace({ 'trail.txt': 'a\na2\na2x\n' });
  });

  it('commits nothing when a level has no successful child', async () => {
    const outcome = await new BeamSearch([step('a', 1)], {
      maxDepth: 2,
      expand: () => [step('bad', 9, false)],
    }).run(env.ws);
    expect(outcome.committed).toBe(false);
    expect(outcome.allResults.map((r) => r.success)).toEqual([true, false]);
    await env.expectWorkspace();
  });

  it('stops early at an empty expansion and commits the best level-0 beam', async () => {
    const outcome = await new BeamSearch([step('a', 1), step('b', 3), step('c', 3)], {
      maxDepth: 3,
      expand: () => [],
    }).run(env.ws);
    expect(outcome.winner?.branchIndex).toBe(1); // tie between b and c: lowest index
    await env.expectWorkspace({ 'trail.txt': 'b\n' });
  });
});
