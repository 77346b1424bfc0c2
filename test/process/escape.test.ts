/**
 * The escape battery: a sandboxed child tries to write outside its branch.
 * Every attempt must fail, and the host must be left exactly as it was.
 * Each test also has a positive control (the same kind of write, inside the
 * branch, succeeds), so a broken test harness cannot pass by accident.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BranchContext } from '../../src/process/context.ts';
import { skipUnless } from '../helpers/backends.ts';
import { makeProject, type Project, sandbox, targets } from './helpers.ts';

const skip = skipUnless(sandbox.available, 'the namespace sandbox', sandbox.reason);

/** What a blocked write fails with: read-only mount, no permission, or a cross-mount link. */
const BLOCKED = ['EROFS', 'EACCES', 'EPERM', 'EXDEV'];

type Attempt = { label: string; op: 'write' | 'append' | 'link' | 'mkdir'; path: string; target?: string };

describe.skipIf(skip)('sandbox escape battery', () => {
  let project: Project;
  let outside: string;
  const id = `${process.pid}-${Date.now()}`;

  beforeAll(() => {
    project = makeProject();
    outside = join(project.root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim.txt'), 'original');
    writeFileSync(join(outside, 'hard-victim.txt'), 'original');
    // Planted in the project before branching: links that point out of it.
    symlinkSync(join(outside, 'victim.txt'), join(project.dir, 'link-to-victim'));
    symlinkSync(outside, join(project.dir, 'link-to-outside-dir'));
    linkSync(join(outside, 'hard-victim.txt'), join(project.dir, 'hard-link.txt'));
  });
  afterAll(() => project.cleanup());

  /** Runs the attempts in a fresh branch; the branch stays open until the test ends (`await using` in it). */
  async function run(attempts: Attempt[], extra: { readOnlyRoot?: boolean } = {}) {
    const branch = await project.ws.branch(`escape-${attempts[0].label}`);
    const ctx = new BranchContext<Record<string, string>>(
      { module: targets, export: 'attempts', args: [attempts] },
      { workspace: branch, downgrade: false, ...extra },
    );
    expect(ctx.sandboxed).toBe(true);
    const result = await ctx.wait();
    return { result, branchPath: branch.path, [Symbol.asyncDispose]: () => branch.abort() };
  }

  it('cannot write to $HOME, /etc or the host /tmp; can write in the branch and its own TMPDIR', async () => {
    const home = join(homedir(), `branching-escape-${id}`);
    const etc = `/etc/branching-escape-${id}`;
    const hostTmp = join(tmpdir(), `branching-escape-${id}`);
    await using attempt = await run([
      { label: 'home', op: 'write', path: home },
      { label: 'etc', op: 'write', path: etc },
      { label: 'tmp', op: 'write', path: hostTmp },
      { label: 'inside', op: 'write', path: join(project.dir, 'inside.txt') },
    ]);
    expect(BLOCKED).toContain(attempt.result.home);
    expect(BLOCKED).toContain(attempt.result.etc);
    expect(BLOCKED).toContain(attempt.result.tmp);
    for (const p of [home, etc, hostTmp]) expect(existsSync(p), p).toBe(false);
    // Control: the write at the project's path landed in the branch, not in the project.
    expect(attempt.result.inside).toBe('written');
    expect(readFileSync(join(attempt.branchPath, 'inside.txt'), 'utf8')).toBe('escaped');
    expect(existsSync(join(project.dir, 'inside.txt'))).toBe(false);
  });

  it('cannot write through symlinks or hardlinks that point out of the workspace', async () => {
    await using attempt = await run([
      { label: 'symlink', op: 'append', path: join(project.dir, 'link-to-victim') },
      { label: 'symlink-dir', op: 'write', path: join(project.dir, 'link-to-outside-dir', 'new.txt') },
      { label: 'hardlink', op: 'append', path: join(project.dir, 'hard-link.txt') },
      { label: 'new-hardlink', op: 'link', path: join(project.dir, 'grab.txt'), target: join(outside, 'victim.txt') },
    ]);
    expect(BLOCKED).toContain(attempt.result.symlink);
    expect(BLOCKED).toContain(attempt.result['symlink-dir']);
    expect(BLOCKED).toContain(attempt.result['new-hardlink']);
    // The planted hardlink was copied into the branch: the write stays there.
    expect(readFileSync(join(attempt.branchPath, 'hard-link.txt'), 'utf8')).toBe('originalescaped');
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('original');
    expect(readFileSync(join(outside, 'hard-victim.txt'), 'utf8')).toBe('original');
    expect(existsSync(join(outside, 'new.txt'))).toBe(false);
  });

  it('cannot write through /proc/self/root or /proc/1/root', async () => {
    await using attempt = await run([
      { label: 'self-root', op: 'append', path: `/proc/self/root${join(outside, 'victim.txt')}` },
      { label: 'init-root', op: 'append', path: `/proc/1/root${join(outside, 'victim.txt')}` },
      { label: 'init-root-etc', op: 'write', path: `/proc/1/root/etc/branching-escape-${id}` },
      { label: 'init-root-project', op: 'write', path: `/proc/1/root${project.dir}/via-proc.txt` },
    ]);
    expect(BLOCKED).toContain(attempt.result['self-root']);
    expect(BLOCKED).toContain(attempt.result['init-root']);
    expect(BLOCKED).toContain(attempt.result['init-root-etc']);
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('original');
    expect(existsSync(`/etc/branching-escape-${id}`)).toBe(false);
    // /proc/1 is the sandbox's own init: its root is the sandbox, where the project path is the branch.
    expect(existsSync(join(project.dir, 'via-proc.txt'))).toBe(false);
  });

  it('readOnlyRoot: false lets writes outside the workspace through (the option works)', async () => {
    const target = join(outside, `rw-${id}.txt`);
    await using attempt = await run([{ label: 'rw', op: 'write', path: target }], { readOnlyRoot: false });
    expect(attempt.result.rw).toBe('written');
    expect(readFileSync(target, 'utf8')).toBe('escaped');
  });

  describe.skipIf(skipUnless(sandbox.netns, 'network namespaces', 'the launcher probe found no netns'))(
    'network',
    () => {
      let server: Server;
      let port: number;
      let connections = 0;
      beforeAll(async () => {
        server = createServer(() => {
          connections++;
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        port = (server.address() as { port: number }).port;
      });
      afterAll(() => new Promise<void>((r) => server.close(() => r())));

      it('with network: false, a loopback port the host listens on is unreachable', async () => {
        await using b = await project.ws.branch('net-off');
        const off = await new BranchContext(
          { module: targets, export: 'connect', args: [port] },
          {
            workspace: b,
            network: false,
            downgrade: false,
          },
        ).wait();
        expect(off).toBe('ECONNREFUSED');
        expect(connections).toBe(0);
        // Control: with the network on, the same connection reaches the host.
        const greeted = new Promise<string>((r) =>
          server.once('connection', (socket) => socket.once('data', (d) => r(d.toString()))),
        );
        const on = await new BranchContext(
          { module: targets, export: 'connect', args: [port] },
          {
            workspace: b,
            downgrade: false,
          },
        ).wait();
        expect(on).toBe('connected');
        expect(await greeted).toBe('hello');
      });
    },
  );
});
