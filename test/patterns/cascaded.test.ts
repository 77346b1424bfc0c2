import { expect, it } from 'vitest';
import { Cascaded, TimeoutError } from '../../src/index.ts';
import { aborted, describeOnBackends, put } from './harness.ts';

describeOnBackends('Cascaded', (env) => {
  it('runs widening waves of first-wins speculation, passing earlier failures on as feedback', async () => {
    const feedbackSeen: string[][] = [];
    const outcome = await new Cascaded(
      async (path, { wave, index, feedback }) => {
        feedbackSeen.push(feedback);
        if (wave === 0) throw new Error('missing import');
        if (wave === 1) return false;
        if (index !== 2) return false;
        await put(path, { 'fix.txt': `wave ${wave} #${index}\n` });
        return true;
      },
      { fanOut: [1, 2, 4], maxParallel: 1 },
    ).run(env.ws);
    expect(outcome.winner).toMatchObject({ wave: 2, branchIndex: 2, branchPath: '/main/cascade_2_2' });
    expect(outcome.allResults.map((r) => r.wave)).toEqual([0, 1, 1, 2, 2, 2, 2]);
    // The last candidate of wave 2 was queued behind maxParallel and never ran.
    expect(outcome.allResults[6]).toMatchObject({ cancelled: true, branchPath: null });
    expect(feedbackSeen[0]).toEqual([]);
    expect(feedbackSeen[1]).toEqual(['wave 0 candidate 0: missing import']);
    expect(feedbackSeen[3]).toEqual([
      'wave 0 candidate 0: missing import',
      'wave 1 candidate 0: returned false',
      'wave 1 candidate 1: returned false',
    ]);
    await env.expectWorkspace({ 'fix.txt': 'wave 2 #2\n' });
  });

  it('cancels a wave at its waveTimeout and goes on to the next', async () => {
    let firstWaveSignal: AbortSignal | undefined;
    const outcome = await new Cascaded(
      async (path, { wave, signal }) => {
        if (wave === 0) {
          firstWaveSignal = signal;
          await aborted(signal);
          return true;
        }
        await put(path, { 'fix.txt': 'second wave\n' });
        return true;
      },
      { fanOut: [1, 1], waveTimeout: 1000 },
    ).run(env.ws);
    expect(firstWaveSignal?.aborted).toBe(true);
    expect(outcome.allResults[0]).toMatchObject({ cancelled: true, success: false });
    expect(outcome.allResults[0].exception).toBeInstanceOf(TimeoutError);
    expect(outcome.winner?.wave).toBe(1);
    await env.expectWorkspace({ 'fix.txt': 'second wave\n' });
  });
});
