import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { type CandidateContext, ConflictError, isBranchingError, Speculate, TimeoutError } from '../../src/index.ts';
import { aborted, barrier, deferred, describeOnBackends, put } from './harness.ts';

describeOnBackends('Speculate', (env) => {
  it('commits the first success and reports a loser that finishes after cancellation as cancelled', async () => {
    const bothStarted = barrier(2);
    let loserSignal: AbortSignal | undefined;
    const slow = async (path: string, { signal }: CandidateContext) => {
      loserSignal = signal;
      await bothStarted.arrive();
      await aborted(signal);
      await put(path, { 'fix.txt': 'slow\n' }); // after cancellation: must never land
      return true;
    };
    const fast = async (path: string) => {
      await bothStarted.arrive();
      await put(path, { 'fix.txt': 'fast\n' });
      return true;
    };
    const outcome = await new Speculate([slow, fast]).run(env.ws);
    expect(outcome.committed).toBe(true);
    expect(outcome.winner?.branchIndex).toBe(1);
    expect(outcome.winner?.branchPath).toBe('/main/speculate_1');
    const [loser, winner] = outcome.allResults;
    expect(winner).toMatchObject({ success: true, cancelled: false, returnValue: true, exception: null });
    expect(loser).toMatchObject({ branchIndex: 0, success: false, cancelled: true, returnValue: true });
    expect(loserSignal?.aborted).toBe(true);
    await env.expectWorkspace({ 'fix.txt': 'fast\n' });
  });

  it('commits nothing when every candidate fails, and records what each did', async () => {
    const outcome = await new Speculate([
      async (path) => {
        await put(path, { 'a.txt': 'a' });
        return false;
      },
      async () => {
        throw new Error('boom');
      },
      async () => [false, 3] as const,
      async () => undefined as unknown as boolean,
    ]).run(env.ws);
    expect(outcome.committed).toBe(false);
    expect(outcome.winner).toBeNull();
    const [a, b, c, d] = outcome.allResults;
    expect(a).toMatchObject({ success: false, cancelled: false, exception: null, returnValue: false });
    expect((b.exception as Error).message).toBe('boom');
    expect(c).toMatchObject({ success: false, score: 3 });
    expect(isBranchingError(d.exception, 'ArgumentError')).toBe(true);
    expect((d.exception as { code: string }).code).toBe('ERR_BRANCHING_CANDIDATE_RETURN');
    await env.expectWorkspace();
  });

  it('lands exactly one commit when every candidate succeeds at once (and they really run in parallel)', async () => {
    const n = 5;
    const allRunning = barrier(n); // deadlocks unless all five run at the same time
    const candidates = Array.from({ length: n }, (_, i) => async (path: string) => {
      await put(path, { [`c${i}.txt`]: `${i}` });
      await allRunning.arrive();
      return true;
    });
    const outcome = await new Speculate(candidates).run(env.ws);
    expect(outcome.committed).toBe(true);
    const w = outcome.winner!.branchIndex;
    expect(outcome.allResults.filter((r) => r === outcome.winner)).toHaveLength(1);
    await env.expectWorkspace({ [`c${w}.txt`]: `${w}` });
  });

  it('with firstWins false lets every success try, and the later ones meet ConflictError', async () => {
    const both = barrier(2);
    const make = (i: number) => async (path: string) => {
      await put(path, { 'fix.txt': `${i}` });
      await both.arrive();
      return true;
    };
    const outcome = await new Speculate([make(0), make(1)], { firstWins: false }).run(env.ws);
    expect(outcome.committed).toBe(true);
    const w = outcome.winner!.branchIndex;
    const other = outcome.allResults[1 - w];
    expect(other.success).toBe(false);
    expect(other.cancelled).toBe(false);
    expect(other.exception).toBeInstanceOf(ConflictError);
    await env.expectWorkspace({ 'fix.txt': `${w}` });
  });

  it('cancels stragglers at the timeout: their signal aborts and a late success is not one', async () => {
    let sawSignal: AbortSignal | undefined;
    const outcome = await new Speculate(
      [
        async (path, { signal }) => {
          sawSignal = signal;
          await aborted(signal);
          await put(path, { 'late.txt': 'late' });
          return true;
        },
        async () => false,
      ],
      { timeout: 1000 }, // long enough for the candidate to have started, even on a loaded machine
    ).run(env.ws);
    expect(outcome.committed).toBe(false);
    expect(sawSignal?.aborted).toBe(true);
    expect(outcome.allResults[0]).toMatchObject({ success: false, cancelled: true, returnValue: true });
    expect(outcome.allResults[0].exception).toBeInstanceOf(TimeoutError);
    expect(outcome.allResults[1]).toMatchObject({ success: false, cancelled: false });
    await env.expectWorkspace();
  });

  it('respects maxParallel', async () => {
    const n = 4;
    const started = Array.from({ length: n }, () => deferred());
    const gates = Array.from({ length: n }, () => deferred());
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const candidates = Array.from({ length: n }, (_, i) => async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      started[i].resolve();
      await gates[i].promise;
      running--;
      return false;
    });
    const done = new Speculate(candidates, { maxParallel: 2 }).run(env.ws);
    await Promise.all([started[0].promise, started[1].promise]);
    gates[0].resolve();
    await started[2].promise;
    gates[1].resolve();
    await started[3].promise;
    gates[2].resolve();
    gates[3].resolve();
    const outcome = await done;
    expect(peak).toBe(2);
    // 0 and 1 start together (in whichever order their branches finish creating); the queue is then FIFO.
    expect([...order.slice(0, 2)].sort()).toEqual([0, 1]);
    expect(order.slice(2)).toEqual([2, 3]);
    expect(outcome.committed).toBe(false);
    await env.expectWorkspace();
  });

  it('a winner cancels candidates still queued behind maxParallel: they never start', async () => {
    const ran: number[] = [];
    const outcome = await new Speculate(
      [0, 1, 2].map((i) => async (path: string) => {
        ran.push(i);
        await put(path, { 'fix.txt': `${i}` });
        return true;
      }),
      { maxParallel: 1 },
    ).run(env.ws);
    expect(outcome.winner?.branchIndex).toBe(0);
    expect(ran).toEqual([0]);
    expect(outcome.allResults.slice(1)).toMatchObject([
      { cancelled: true, branchPath: null, durationMs: 0 },
      { cancelled: true, branchPath: null, durationMs: 0 },
    ]);
    await env.expectWorkspace({ 'fix.txt': '0' });
  });

  it("aborts everything on the caller's signal and rejects with its reason", async () => {
    const controller = new AbortController();
    const bothStarted = barrier(2);
    const signals: AbortSignal[] = [];
    const waitForever = async (path: string, { signal }: CandidateContext) => {
      signals.push(signal);
      await put(path, { 'partial.txt': 'x' });
      await bothStarted.arrive();
      await aborted(signal);
      return true;
    };
    const done = new Speculate([waitForever, waitForever], { signal: controller.signal }).run(env.ws);
    await bothStarted.reached;
    const reason = new Error('user pressed ^C');
    controller.abort(reason);
    await expect(done).rejects.toBe(reason);
    expect(signals.map((s) => s.aborted)).toEqual([true, true]);
    await env.expectWorkspace();
  });

  it('aborts the branch of a candidate that ignores cancellation once the grace period ends', async () => {
    const release = deferred();
    const bothStarted = barrier(2);
    const lateWrite = deferred<unknown>();
    const stubborn = async (path: string) => {
      await bothStarted.arrive();
      await release.promise; // ignores its signal
      // Its branch is gone by now: the write fails rather than landing anywhere.
      lateWrite.resolve(await fs.writeFile(join(path, 'late.txt'), 'late').catch((err) => err));
      return true;
    };
    const outcome = await new Speculate(
      [
        stubborn,
        async (path) => {
          await bothStarted.arrive();
          await put(path, { 'fix.txt': 'ok' });
          return true;
        },
      ],
      { cancelGrace: 20 },
    ).run(env.ws);
    expect(outcome.winner?.branchIndex).toBe(1);
    expect(outcome.allResults[0].cancelled).toBe(true);
    expect((outcome.allResults[0].exception as { code: string }).code).toBe('ERR_BRANCHING_CANCEL_IGNORED');
    release.resolve();
    expect(await lateWrite.promise).toMatchObject({ code: 'ENOENT' });
    await env.expectWorkspace({ 'fix.txt': 'ok' });
    expect(await fs.readdir(join(env.ws.stateDir, 'branches'))).toEqual([]);
  });
});
