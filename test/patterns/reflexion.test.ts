import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Reflexion } from '../../src/index.ts';
import { describeOnBackends, put } from './harness.ts';

describeOnBackends('Reflexion', (env) => {
  it('retries in fresh branches with the critique of the failed attempt as feedback', async () => {
    const seen: Array<{ attempt: number; feedback: string | null; leftover: boolean }> = [];
    const outcome = await new Reflexion(
      async (path, { attempt, feedback }) => {
        // A fresh branch each time: the failed attempt's file is not here.
        const leftover = await fs.stat(join(path, 'log.txt')).then(
          () => true,
          () => false,
        );
        seen.push({ attempt, feedback, leftover });
        await put(path, { 'log.txt': `attempt ${attempt}: ${feedback === 'use the flag' ? 'ok' : 'missing flag'}\n` });
        return feedback === 'use the flag';
      },
      {
        maxRetries: 3,
        // Runs on the failed branch, before it is aborted.
        critique: async (path) =>
          (await fs.readFile(join(path, 'log.txt'), 'utf8')).includes('missing flag') ? 'use the flag' : null,
      },
    ).run(env.ws);
    expect(seen).toEqual([
      { attempt: 0, feedback: null, leftover: false },
      { attempt: 1, feedback: 'use the flag', leftover: false },
    ]);
    expect(outcome.winner?.branchIndex).toBe(1);
    expect(outcome.allResults.map((r) => r.success)).toEqual([false, true]);
    await env.expectWorkspace({ 'log.txt': 'attempt 1: ok\n' });
  });

  it('stops after maxRetries, critiquing throws too, and commits nothing', async () => {
    const critiqued: string[] = [];
    const outcome = await new Reflexion(
      async (_path, { attempt }) => {
        if (attempt === 1) throw new Error('crashed');
        return false;
      },
      {
        maxRetries: 3,
        critique: (_path, { attempt, result }) => {
          critiqued.push(`${attempt}:${result.exception instanceof Error ? result.exception.message : 'false'}`);
          return `try again after ${attempt}`;
        },
      },
    ).run(env.ws);
    expect(outcome.committed).toBe(false);
    expect(outcome.allResults).toHaveLength(3);
    expect(critiqued).toEqual(['0:false', '1:crashed', '2:false']);
    await env.expectWorkspace();
  });

  it('rejects when the critique throws, leaving nothing behind', async () => {
    const failure = new Error('critic crashed');
    const run = new Reflexion(
      async (path) => {
        await put(path, { 'x.txt': 'x' });
        return false;
      },
      {
        critique: () => {
          throw failure;
        },
      },
    ).run(env.ws);
    await expect(run).rejects.toBe(failure);
    await env.expectWorkspace();
  });
});
