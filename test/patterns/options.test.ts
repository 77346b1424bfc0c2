import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import {
  BeamSearch,
  BestOfN,
  type CandidateRunner,
  Cascaded,
  inProcessRunner,
  isBranchingError,
  Reflexion,
  Speculate,
  Tournament,
  TreeOfThoughts,
} from '../../src/index.ts';
import { describeOnBackends, put } from './harness.ts';

const fixture = fileURLToPath(new URL('../fixtures/patterns/candidates.mjs', import.meta.url));
const ok = async () => true;

function argumentErrorOf(build: () => unknown): string | undefined {
  try {
    build();
  } catch (err) {
    if (isBranchingError(err, 'ArgumentError')) return err.argument;
    throw err;
  }
  return undefined;
}

it('rejects bad configuration in the constructor, naming the argument', () => {
  expect(argumentErrorOf(() => new Speculate([]))).toBe('candidates');
  expect(argumentErrorOf(() => new Speculate([42 as never]))).toBe('candidates[0]');
  expect(argumentErrorOf(() => new Speculate([ok], { timeout: -1 }))).toBe('timeout');
  expect(argumentErrorOf(() => new Speculate([ok], { maxParallel: 1.5 }))).toBe('maxParallel');
  expect(argumentErrorOf(() => new Speculate([ok], { signal: {} as AbortSignal }))).toBe('signal');
  expect(argumentErrorOf(() => new Speculate([ok], { firstWins: 'yes' as never }))).toBe('firstWins');
  expect(argumentErrorOf(() => new BestOfN(ok, { n: 0 }))).toBe('n');
  expect(argumentErrorOf(() => new BestOfN([ok, ok], { scores: [1] }))).toBe('scores');
  expect(argumentErrorOf(() => new Reflexion(ok, { maxRetries: 0 }))).toBe('maxRetries');
  expect(argumentErrorOf(() => new TreeOfThoughts([ok], { expand: 'x' as never }))).toBe('expand');
  expect(argumentErrorOf(() => new BeamSearch([ok], {} as never))).toBe('expand');
  expect(argumentErrorOf(() => new BeamSearch([ok], { expand: () => [], beamWidth: 0 }))).toBe('beamWidth');
  expect(argumentErrorOf(() => new Tournament(ok, {} as never))).toBe('judge');
  expect(argumentErrorOf(() => new Cascaded(ok, { fanOut: [1, 0] }))).toBe('fanOut[1]');
  expect(argumentErrorOf(() => new Cascaded(ok, { waveTimeout: 0 }))).toBe('waveTimeout');
  expect(argumentErrorOf(() => new Speculate([ok], { runner: {} as CandidateRunner }))).toBe('runner');
});

it('isolateProcesses needs module candidates: a function cannot cross into another process', async () => {
  const tmp = await import('../helpers/tree.ts').then((m) => m.tempDir());
  const { Workspace } = await import('../../src/index.ts');
  const ws = new Workspace(tmp.path, { backend: 'clone', stateDir: `${tmp.path}-state`, onNotice: () => {} });
  const outcome = await new Speculate([ok], { isolateProcesses: true }).run(ws);
  expect(outcome.committed).toBe(false);
  expect(outcome.allResults[0].exception).toMatchObject({ code: 'ERR_BRANCHING_CANDIDATE_NOT_MODULE' });
  await ws.close();
  await tmp.cleanup();
});

describeOnBackends('pattern options', (env) => {
  it('isolateProcesses runs module candidates in sandboxed processes, commits the winner and kills the rest', async () => {
    const outcome = await new Speculate(
      [
        { module: fixture, export: 'hang' },
        { module: fixture, export: 'default' },
        { module: fixture, export: 'whereAmI' },
      ],
      { isolateProcesses: true },
    ).run(env.ws);
    expect(outcome.winner?.branchIndex).toBe(2);
    expect(outcome.allResults[0]).toMatchObject({ success: false, cancelled: true });
    expect(outcome.allResults[1]).toMatchObject({ success: false });
    const where = JSON.parse(await fs.readFile(join(env.root, 'where.json'), 'utf8'));
    // Sandboxed, the branch sits at the project's own path; downgraded, at the branch's directory.
    expect(where.path).toBe(where.cwd);
    if (where.sandbox) expect(where.path).toBe(env.root);
    // The hanging candidate's process is gone, and its branch never reached the workspace.
    await expect(fs.access(join(env.root, 'hang.pid'))).rejects.toThrow();
    await env.expectWorkspace({ 'where.json': JSON.stringify(where) });
  });

  it('rejects a target that is not a Workspace or an open Branch', async () => {
    const err = await new Speculate([ok]).run({} as never).catch((e) => e);
    expect(err).toMatchObject({ name: 'ArgumentError', argument: 'target' });
    await env.expectWorkspace();
  });

  it('rejects at once when the signal is already aborted, creating no branch', async () => {
    const reason = new Error('too late');
    let ran = false;
    const run = new Speculate(
      [
        async () => {
          ran = true;
          return true;
        },
      ],
      { signal: AbortSignal.abort(reason) },
    ).run(env.ws);
    await expect(run).rejects.toBe(reason);
    expect(ran).toBe(false);
    await env.expectWorkspace();
  });

  it('runs candidates through a custom runner (the execution seam)', async () => {
    const calls: string[] = [];
    const runner: CandidateRunner = {
      async run(candidate, branch, ctx) {
        calls.push(`${ctx.index}@${branch.branchPath}`);
        return inProcessRunner.run(candidate, branch, ctx);
      },
    };
    const outcome = await new BestOfN(
      async (path, { attempt }) => {
        await put(path, { 'seam.txt': `${attempt}` });
        return [true, attempt] as const;
      },
      { n: 2, runner },
    ).run(env.ws);
    expect(calls.sort()).toEqual(['0@/main/best_of_n_0', '1@/main/best_of_n_1']);
    expect(outcome.winner?.branchIndex).toBe(1);
    await env.expectWorkspace({ 'seam.txt': '1' });
  });

  it('runs module candidates ({ module, export }) and offers the callable style', async () => {
    const outcome = await Speculate.callable([{ module: fixture }, { module: fixture, export: 'win' }])(env.ws);
    expect(outcome.allResults.map((r) => r.success)).toEqual([false, true]);
    await env.expectWorkspace({ 'from-module.txt': 'candidate 1\n' });
  });

  it('explores inside a branch: the winner commits into it, and the workspace waits for it', async () => {
    const parent = await env.ws.branch('agent');
    const outcome = await new Speculate([
      async (path) => {
        await put(path, { 'inner.txt': 'inner' });
        return true;
      },
    ]).run(parent);
    expect(outcome.winner?.branchPath).toBe('/main/agent/speculate_0');
    await env.expectWorkspace();
    await parent.commit();
    await env.expectWorkspace({ 'inner.txt': 'inner' });
  });
});
