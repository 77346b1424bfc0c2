import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { type CandidateContext, isBranchingError, type Judge, Tournament } from '../../src/index.ts';
import { describeOnBackends, put } from './harness.ts';

const QUALITY = [3, 9, 1, 7, 5];

const generate = async (path: string, { index }: CandidateContext) => {
  await put(path, { 'quality.txt': `${QUALITY[index]}` });
  return true;
};

const quality = async (path: string) => Number(await fs.readFile(join(path, 'quality.txt'), 'utf8'));

describeOnBackends('Tournament', (env) => {
  it('pairs the successes in order, gives an odd entrant a bye to the end of the next round, and commits the champion', async () => {
    const matches: string[] = [];
    const judge: Judge = async (a, b, ctx) => {
      matches.push(`r${ctx.round}:${ctx.a.branchIndex}v${ctx.b.branchIndex}`);
      return (await quality(a)) >= (await quality(b)) ? 0 : 1;
    };
    const outcome = await new Tournament(generate, { n: 5, judge }).run(env.ws);
    // Round 0: 0v1 -> 1, 2v3 -> 3, 4 has a bye. Round 1: 1v3 -> 1, 4 has a bye. Round 2: 1v4 -> 1.
    expect(matches).toEqual(['r0:0v1', 'r0:2v3', 'r1:1v3', 'r2:1v4']);
    expect(outcome.winner?.branchIndex).toBe(1);
    await env.expectWorkspace({ 'quality.txt': '9' });
  });

  it('leaves failures out of the bracket; a lone survivor wins without a judge call', async () => {
    let judged = 0;
    const outcome = await new Tournament(
      [
        async () => false,
        async () => {
          throw new Error('crash');
        },
        async (path) => {
          await put(path, { 'quality.txt': 'only' });
          return true;
        },
      ],
      {
        judge: () => {
          judged++;
          return 0;
        },
      },
    ).run(env.ws);
    expect(judged).toBe(0);
    expect(outcome.winner?.branchIndex).toBe(2);
    expect((outcome.allResults[1].exception as Error).message).toBe('crash');
    await env.expectWorkspace({ 'quality.txt': 'only' });
  });

  it('rejects when the judge throws, aborting every branch instead of hanging', async () => {
    const failure = new Error('judge crashed');
    const run = new Tournament(generate, {
      n: 4,
      judge: () => {
        throw failure;
      },
    }).run(env.ws);
    await expect(run).rejects.toBe(failure);
    await env.expectWorkspace();
  });

  it('rejects a judge verdict other than 0 or 1', async () => {
    const run = new Tournament(generate, { n: 2, judge: () => 2 as 0 }).run(env.ws);
    const err = await run.catch((e) => e);
    expect(isBranchingError(err, 'ArgumentError')).toBe(true);
    expect(err.argument).toBe('judge');
    await env.expectWorkspace();
  });

  it('commits nothing when no candidate succeeds', async () => {
    const outcome = await new Tournament(async () => false, { n: 3, judge: () => 0 }).run(env.ws);
    expect(outcome).toMatchObject({ committed: false, winner: null });
    await env.expectWorkspace();
  });
});
