import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { BestOfN, TimeoutError } from '../../src/index.ts';
import { aborted, deferred, describeOnBackends, put } from './harness.ts';

describeOnBackends('BestOfN', (env) => {
  it('commits the highest score, ties to the lowest index; failures never win', async () => {
    const verdicts = [
      [true, 1],
      [true, 5],
      [false, 9],
      [true, 5],
    ] as const;
    const outcome = await new BestOfN(
      async (path, { attempt }) => {
        await put(path, { 'out.txt': `attempt ${attempt}\n` });
        return verdicts[attempt];
      },
      { n: 4 },
    ).run(env.ws);
    expect(outcome.winner?.branchIndex).toBe(1);
    expect(outcome.allResults.map((r) => [r.success, r.score])).toEqual([
      [true, 1],
      [true, 5],
      [false, 9],
      [true, 5],
    ]);
    await env.expectWorkspace({ 'out.txt': 'attempt 1\n' });
  });

  it('takes the score from evaluate(path) first, then [ok, score], then scores[i], then 1', async () => {
    const writer = (i: number) => async (path: string) => {
      await put(path, { 'quality.txt': `${10 - i}` });
      return [true, i] as const;
    };
    const evaluated = await new BestOfN([writer(0), writer(1), writer(2)], {
      evaluate: async (path) => Number(await fs.readFile(join(path, 'quality.txt'), 'utf8')),
      commit: false,
    }).run(env.ws);
    expect(evaluated.winner?.branchIndex).toBe(0);
    expect(evaluated.allResults.map((r) => r.score)).toEqual([10, 9, 8]);

    const fromTuple = await new BestOfN([writer(0), writer(1), writer(2)], { commit: false }).run(env.ws);
    expect(fromTuple.winner?.branchIndex).toBe(2);

    const bare = [0, 1, 2].map(() => async () => true);
    const fromScores = await new BestOfN(bare, { scores: [1, 3, 2], commit: false }).run(env.ws);
    expect(fromScores.winner?.branchIndex).toBe(1);
    const fallback = await new BestOfN(bare, { commit: false }).run(env.ws);
    expect(fallback.allResults.map((r) => r.score)).toEqual([1, 1, 1]);
    expect(fallback.winner?.branchIndex).toBe(0);
    // commit: false reports winners but never touches the workspace.
    expect([evaluated, fromTuple, fromScores, fallback].map((o) => o.committed)).toEqual([false, false, false, false]);
    await env.expectWorkspace();
  });

  it('records exceptions, including a throwing evaluator, and commits nothing when all fail', async () => {
    const outcome = await new BestOfN(
      [
        async () => {
          throw new Error('task failed');
        },
        async () => true,
      ],
      {
        evaluate: () => {
          throw new Error('evaluator failed');
        },
      },
    ).run(env.ws);
    expect(outcome.committed).toBe(false);
    expect(outcome.allResults.map((r) => (r.exception as Error).message)).toEqual(['task failed', 'evaluator failed']);
    await env.expectWorkspace();
  });

  it('at the timeout, cancels stragglers and commits the best finished success', async () => {
    const finished = deferred();
    let stragglerSignal: AbortSignal | undefined;
    const outcome = await new BestOfN(
      [
        async (path) => {
          await put(path, { 'out.txt': 'quick\n' });
          finished.resolve();
          return [true, 1] as const;
        },
        async (path, { signal }) => {
          stragglerSignal = signal;
          await aborted(signal);
          await put(path, { 'out.txt': 'straggler\n' });
          return [true, 100] as const;
        },
      ],
      // Generous: the quick candidate must finish first even on a loaded machine.
      { timeout: 1500 },
    ).run(env.ws);
    await finished.promise;
    expect(stragglerSignal?.aborted).toBe(true);
    expect(outcome.winner?.branchIndex).toBe(0);
    expect(outcome.allResults[1]).toMatchObject({ cancelled: true, success: false });
    expect(outcome.allResults[1].exception).toBeInstanceOf(TimeoutError);
    await env.expectWorkspace({ 'out.txt': 'quick\n' });
  });
});
