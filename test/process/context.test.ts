import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArgumentError,
  isBranchingError,
  NamespaceError,
  ProcessBranchError,
  TimeoutError,
} from '../../src/base/errors.ts';
// The process layer's index installs branch.exec and branch.spawn, as the package index does.
import { BranchContext, type ProcessFailure } from '../../src/process/index.ts';
import { probeLimits } from '../../src/process/limits.ts';
import { skipUnless } from '../helpers/backends.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { makeProject, modes, type Project, pidsWithToken, procState, readUntil, targets } from './helpers.ts';

let project: Project;
beforeAll(() => {
  project = makeProject();
});
afterAll(() => project.cleanup());

const fn = (name: string, ...args: unknown[]) => ({ module: targets, export: name, args });

describe.each(modes)('BranchContext ($name)', (mode) => {
  const skip = mode.sandbox && skipUnless(mode.available, 'the namespace sandbox', mode.reason);
  const opts = { sandbox: mode.sandbox, onNotice: () => {} };

  it.skipIf(skip)(
    'returns the function value, runs in the branch, with a private TMPDIR removed afterwards',
    async () => {
      await using b = await project.ws.branch(`ok-${mode.name}`);
      const ctx = new BranchContext<{ args: unknown[]; cwd: string; tmpdir: string }>(
        fn('echo', 1, 'two', { three: 3 }),
        {
          ...opts,
          workspace: b,
        },
      );
      expect(ctx.sandboxed).toBe(mode.sandbox);
      expect(ctx.pid).toBeGreaterThan(0);
      const value = await ctx.wait();
      expect(value.args).toEqual([1, 'two', { three: 3 }]);
      // Sandboxed, the branch is at the project's own path; plain, it is the branch directory.
      expect(value.cwd).toBe(mode.sandbox ? project.dir : b.path);
      expect(value.tmpdir).toBe(ctx.tmpDir);
      expect(ctx.alive).toBe(false);
      expect(existsSync(ctx.tmpDir)).toBe(false);
    },
  );

  it.skipIf(skip)(
    'a command that exits non-zero rejects with ProcessBranchError: exit code and stderr tail',
    async () => {
      await using b = await project.ws.branch(`fail-${mode.name}`);
      const ctx = new BranchContext(['sh', '-c', 'echo first; echo "it broke" >&2; exit 3'], { ...opts, workspace: b });
      const err = (await ctx.wait().catch((e) => e)) as ProcessFailure;
      expect(err).toBeInstanceOf(ProcessBranchError);
      expect(err.exitCode).toBe(3);
      expect(err.signal).toBeNull();
      expect(err.stderr).toContain('it broke');
      expect(err.message).toContain('it broke');
    },
  );

  it.skipIf(skip)('a thrown exception comes back with its name, message, code and stack', async () => {
    await using b = await project.ws.branch(`throw-${mode.name}`);
    const err = (await new BranchContext(fn('throws', 'no luck'), { ...opts, workspace: b })
      .wait()
      .catch((e) => e)) as ProcessFailure;
    expect(isBranchingError(err, 'ProcessBranchError')).toBe(true);
    expect(err.code).toBe('ERR_BRANCH_PROCESS_THREW');
    expect(err.remoteError).toMatchObject({ name: 'RangeError', message: 'no luck', code: 'E_FIXTURE' });
    expect(err.remoteError?.stack).toContain('targets.mjs');
    expect((err.cause as Error).name).toBe('RangeError');
    expect(err.exitCode).toBe(1);
  });

  it.skipIf(skip)('a function whose process exits without a result is a failure', async () => {
    await using b = await project.ws.branch(`exit-${mode.name}`);
    const err = (await new BranchContext(fn('exits', 0), { ...opts, workspace: b })
      .wait()
      .catch((e) => e)) as ProcessFailure;
    expect(err).toBeInstanceOf(ProcessBranchError);
    expect(err.message).toContain('without reporting a result');
  });

  it.skipIf(skip)('a 5 MB return value arrives whole (no 64 KiB pipe deadlock)', async () => {
    await using b = await project.ws.branch(`big-${mode.name}`);
    const bytes = 5 * 1024 * 1024;
    const value = await new BranchContext<{ text: string; sha256: string }>(fn('big', bytes), {
      ...opts,
      workspace: b,
    }).wait();
    expect(value.text.length).toBe(bytes);
    expect(createHash('sha256').update(value.text).digest('hex')).toBe(value.sha256);
  });

  it.skipIf(skip)('the timeout option kills the tree and wait() rejects with TimeoutError', async () => {
    await using b = await project.ws.branch(`timeout-${mode.name}`);
    const ctx = new BranchContext(['sleep', '60'], { ...opts, workspace: b, timeout: 100 });
    const err = await ctx.wait().catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(ctx.alive).toBe(false);
  });

  it.skipIf(skip)('wait({ timeout }) rejects with TimeoutError and leaves the child running until abort', async () => {
    await using b = await project.ws.branch(`wait-timeout-${mode.name}`);
    await using ctx = new BranchContext(['sleep', '60'], { ...opts, workspace: b });
    await expect(ctx.wait({ timeout: 50 })).rejects.toBeInstanceOf(TimeoutError);
    expect(ctx.alive).toBe(true);
    await ctx.abort();
    expect(ctx.alive).toBe(false);
    const err = (await ctx.wait().catch((e) => e)) as ProcessFailure;
    expect(err.code).toBe('ERR_BRANCH_PROCESS_ABORTED');
  });

  it.skipIf(skip)(
    'commit() refuses while a context runs in the branch (ERR_BRANCH_IN_USE) and works once it ended',
    async () => {
      const b = await project.ws.branch(`in-use-${mode.name}`);
      const before = readFileSync(join(project.dir, 'package.json'), 'utf8');
      const ctx = new BranchContext(['sh', '-c', 'echo started; echo held > held.txt; read _; echo done >> held.txt'], {
        ...opts,
        workspace: b,
      });
      await readUntil(ctx.stdout, 'started');
      const err = await b.commit().catch((e) => e);
      expect(isBranchingError(err, 'CommitError')).toBe(true);
      expect(err).toMatchObject({ code: 'ERR_BRANCH_IN_USE', branchPath: b.branchPath });
      expect(b.state).toBe('open');
      expect(existsSync(join(project.dir, 'held.txt'))).toBe(false);
      expect(readFileSync(join(project.dir, 'package.json'), 'utf8')).toBe(before);
      ctx.stdin?.end('\n');
      await ctx.wait();
      await b.commit();
      expect(readFileSync(join(project.dir, 'held.txt'), 'utf8')).toBe('held\ndone\n');
      await project.ws.withBranch(`in-use-cleanup-${mode.name}`, async (c) => {
        rmSync(join(c.path, 'held.txt'));
      });
    },
  );

  it.skipIf(skip)('an AbortSignal aborts the context', async () => {
    await using b = await project.ws.branch(`signal-${mode.name}`);
    const controller = new AbortController();
    const ctx = new BranchContext(['sh', '-c', 'echo started; exec sleep 60'], {
      ...opts,
      workspace: b,
      signal: controller.signal,
    });
    await readUntil(ctx.stdout, 'started');
    controller.abort();
    const err = (await ctx.wait().catch((e) => e)) as ProcessFailure;
    expect(err.code).toBe('ERR_BRANCH_PROCESS_ABORTED');
    expect(err.signal).toBe('SIGTERM');
  });

  it.skipIf(skip)(
    'abort kills grandchildren, a setsid one that ignores SIGTERM included, and leaves no zombie',
    async () => {
      await using b = await project.ws.branch(`tree-${mode.name}`);
      const token = `branching-tree-${process.pid}-${mode.name}-${Date.now()}`;
      const ctx = new BranchContext(fn('spawnTree', token), { ...opts, workspace: b });
      await readUntil(ctx.stdout, 'tree-ready');
      const pids = pidsWithToken(token);
      expect(pids).toHaveLength(2); // the child and the setsid'd daemon
      await ctx.abort({ timeout: 2000 });
      expect(ctx.alive).toBe(false);
      const states = pids.map(procState);
      if (mode.sandbox) {
        // The PID namespace's init reaped them all before the launcher exited.
        expect(states).toEqual(['gone', 'gone']);
      } else {
        // Plain mode: killed; the orphaned daemon is reaped by the system's init, at its own pace.
        for (const s of states) expect(['gone', 'Z']).toContain(s);
      }
      expect(procState(ctx.pid)).toBe('gone'); // the direct child is reaped
    },
  );

  it.skipIf(skip)('closeFds closes descriptors the parent inherited without close-on-exec', async () => {
    assertBuilt();
    const leak = join(project.root, `leaked-${mode.name}.txt`);
    writeFileSync(leak, 'secret');
    const fd = openSync(leak, 'r');
    const stdio: Array<'ignore' | 'pipe' | 'inherit' | number> = ['ignore', 'pipe', 'inherit'];
    while (stdio.length < 40) stdio.push('ignore');
    stdio.push(fd); // becomes fd 40 of the parent, without O_CLOEXEC
    const parent = spawn(
      process.execPath,
      [join(repoRoot, 'test/fixtures/process/leak-parent.mjs'), project.dir, targets, mode.sandbox ? '1' : '0'],
      { stdio },
    );
    let out = '';
    parent.stdout?.on('data', (c) => {
      out += c;
    });
    const code = await new Promise((r) => parent.once('close', r));
    expect(code).toBe(0);
    const seen = JSON.parse(out) as { true: string | null; false: string | null };
    expect(seen.false).toBe(leak); // upstream's default: inherited
    expect(seen.true).toBeNull(); // closed
  });

  it.skipIf(skip)('create(N) runs N at once, each in its branch; disposing the group aborts them', async () => {
    const branches = await Promise.all([0, 1, 2].map((i) => project.ws.branch(`create-${mode.name}-${i}`)));
    try {
      {
        await using group = BranchContext.create(
          branches.map((_, i) => ({ module: targets, export: 'writeFile', args: [`out-${i}.txt`, `n${i}`] })),
          branches,
          opts,
        );
        expect(group).toHaveLength(3);
        const written = await group.waitAll();
        expect(written).toEqual(
          [0, 1, 2].map((i) => join(mode.sandbox ? project.dir : branches[i].path, `out-${i}.txt`)),
        );
      }
      branches.forEach((b, i) => {
        expect(readFileSync(join(b.path, `out-${i}.txt`), 'utf8')).toBe(`n${i}`);
        expect(existsSync(join(project.dir, `out-${i}.txt`))).toBe(false);
      });
      let sleepers: BranchContext[];
      {
        await using group = BranchContext.create(
          branches.map(() => ['sleep', '60']),
          branches,
          opts,
        );
        sleepers = [...group];
        expect(sleepers.every((c) => c.alive)).toBe(true);
      }
      expect(sleepers.every((c) => !c.alive)).toBe(true);
    } finally {
      for (const b of branches) await b.abort();
    }
  });

  it.skipIf(skip)('branch.exec returns stdout, stderr, exitCode; branch.spawn is awaitable and abortable', async () => {
    await using b = await project.ws.branch(`exec-${mode.name}`);
    const result = await b.exec('sh', ['-c', 'pwd; cat; echo warn >&2; exit 4'], { ...opts, input: 'from stdin' });
    expect(result).toMatchObject({
      stdout: `${mode.sandbox ? project.dir : b.path}\nfrom stdin`,
      stderr: 'warn\n',
      exitCode: 4,
      signal: null,
      failed: true,
      sandboxed: mode.sandbox,
    });
    await expect(b.exec('sh', ['-c', 'exit 5'], { ...opts, throwOnError: true })).rejects.toMatchObject({
      name: 'ProcessBranchError',
      exitCode: 5,
    });
    const proc = b.spawn('sh', ['-c', 'echo go; exec sleep 60'], opts);
    await readUntil(proc.stdout, 'go');
    await proc.abort();
    const aborted = await proc;
    expect(aborted).toMatchObject({ aborted: true, failed: true, signal: 'SIGTERM' });
  });
});

describe('BranchContext arguments', () => {
  it('rejects bad input with ArgumentError naming it, before starting anything', async () => {
    await using b = await project.ws.branch('args');
    const bad: Array<[unknown, unknown, string]> = [
      [[], { workspace: b }, 'target'],
      [[42], { workspace: b }, 'target[0]'],
      [{ module: '' }, { workspace: b }, 'target.module'],
      [{ module: targets, args: [10n] }, { workspace: b }, 'target.args'],
      [['true'], { workspace: 'relative/dir' }, 'workspace'],
      [['true'], { workspace: join(project.root, 'missing') }, 'workspace'],
      [['true'], undefined, 'options'],
      [['true'], { workspace: b, timeout: -1 }, 'timeout'],
      [['true'], { workspace: b, network: 'no' }, 'network'],
      [['no-such-command-xyz'], { workspace: b }, 'target'],
    ];
    for (const [target, options, argument] of bad) {
      let err: unknown;
      try {
        new BranchContext(target as never, options as never);
      } catch (e) {
        err = e;
      }
      expect(err, argument).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).argument).toBe(argument);
    }
    expect(() => BranchContext.create([['true']], [])).toThrow(ArgumentError);
  });
});

describe('BranchContext downgrade and limits', () => {
  it('downgrades, and says so, when the sandbox cannot be built; downgrade: false makes it a NamespaceError', async () => {
    // The launcher's spec format cannot carry a ',' in a path: a real reason to downgrade.
    const odd = makeProject('odd,name');
    try {
      await using b = await odd.ws.branch('downgrade');
      const notices: string[] = [];
      const ctx = new BranchContext(fn('echo'), { workspace: b, onNotice: (m) => notices.push(m) });
      expect(ctx.sandboxed).toBe(false);
      expect(ctx.downgradeReason).toMatch(/./);
      expect(notices).toHaveLength(1);
      expect(notices[0]).toContain('downgraded');
      expect(((await ctx.wait()) as { cwd: string }).cwd).toBe(b.path);
      expect(() => new BranchContext(fn('echo'), { workspace: b, downgrade: false })).toThrow(NamespaceError);
    } finally {
      odd.cleanup();
    }
  });

  it('applies memory/pids limits through cgroup v2, or reports why it cannot', async () => {
    await using b = await project.ws.branch('limits');
    const probe = probeLimits(['pids']);
    const ctx = new BranchContext(['cat', '/proc/self/cgroup'], { workspace: b, limits: { pids: 16 } });
    let out = '';
    ctx.stdout?.on('data', (c) => {
      out += c;
    });
    await ctx.wait();
    expect(ctx.limits.requested).toEqual({ pids: 16 });
    if (probe.dir === null) {
      expect(ctx.limits).toMatchObject({ applied: false, reason: probe.reason });
      skipUnless(false, 'cgroup v2 limits', probe.reason ?? '', false);
    } else {
      expect(ctx.limits.applied).toBe(true);
      expect(out).toContain(ctx.limits.cgroup?.split('/').pop());
      expect(existsSync(ctx.limits.cgroup ?? '')).toBe(false); // removed afterwards
    }
  });
});
