/**
 * The escape battery: a sandboxed child tries to write outside its branch.
 * Every attempt must fail, and the host must be left exactly as it was.
 * Each test also has a positive control (the same kind of write, inside the
 * branch, succeeds), so a broken test harness cannot pass by accident.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  createReadStream,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BranchContext } from '../../src/process/context.ts';
import { skipUnless } from '../helpers/backends.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { requireFeature } from '../helpers/require-feature.ts';
import { makeProject, type Project, pidsWithToken, procState, readUntil, sandbox, targets } from './helpers.ts';

const skip = skipUnless(sandbox.available, 'the namespace sandbox', sandbox.reason);

/** What a blocked write fails with: read-only mount, no permission, or a cross-mount link. */
const BLOCKED = ['EROFS', 'EACCES', 'EPERM', 'EXDEV'];

type Attempt = { label: string; op: 'write' | 'append' | 'link' | 'mkdir'; path: string; target?: string };

const escapeTargets = join(import.meta.dirname, 'escape-targets.mjs');
const root = process.getuid?.() === 0;

/** Every attempt of the battery, counted for the tally printed at the end. */
const tally = { attempts: 0, blocked: 0, through: [] as string[] };

/** One attempt: `got` must be one of `want` (the specific refusal); counted either way. */
function blocked(label: string, got: unknown, want: readonly unknown[]): void {
  tally.attempts++;
  if (want.includes(got)) tally.blocked++;
  else tally.through.push(`${label}: ${JSON.stringify(got)}`);
  expect(want, `${label} answered ${JSON.stringify(got)}`).toContain(got);
}

/** Resolves `promise`, or rejects after `ms` (a bound on waiting, never an assertion on time). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Polls `done` every 20 ms until it holds, for at most `ms`. */
async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Host pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

afterAll(() => {
  console.log(`escape battery: ${tally.attempts} attempts, ${tally.blocked} blocked`);
  if (tally.through.length > 0) console.log(`escape battery: went through: ${tally.through.join('; ')}`);
});

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
    // Another host path to the real project.
    symlinkSync(project.dir, join(project.root, 'alias'));
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

  /** Calls an export of escape-targets.mjs in a fresh sandboxed branch. */
  async function call<T>(name: string, args: unknown[], extra: { network?: boolean; writable?: string[] } = {}) {
    await using branch = await project.ws.branch(`escape-${name}-${Math.random().toString(36).slice(2, 8)}`);
    const ctx = new BranchContext<T>(
      { module: escapeTargets, export: name, args },
      { workspace: branch, downgrade: false, ...extra },
    );
    expect(ctx.sandboxed).toBe(true);
    return { value: await ctx.wait(), branchPath: branch.path };
  }

  it('cannot write to $HOME, /etc, the host /tmp, the state dir, the branch on the host or the repo', async () => {
    const home = join(homedir(), `branching-escape-${id}`);
    const etc = `/etc/branching-escape-${id}`;
    const hostTmp = join(tmpdir(), `branching-escape-${id}`);
    const state = join(project.ws.stateDir, `escape-${id}`);
    const repo = join(repoRoot, `escape-${id}`);
    await using attempt = await run([
      { label: 'home', op: 'write', path: home },
      { label: 'etc', op: 'write', path: etc },
      { label: 'etc-mkdir', op: 'mkdir', path: `${etc}.d` },
      { label: 'tmp', op: 'write', path: hostTmp },
      { label: 'state', op: 'write', path: state },
      { label: 'repo', op: 'write', path: repo },
      { label: 'alias', op: 'write', path: join(project.root, 'alias', 'via-alias.txt') },
      { label: 'inside', op: 'write', path: join(project.dir, 'inside.txt') },
    ]);
    const hostBranch = await run([{ label: 'branch-host', op: 'write', path: join(attempt.branchPath, 'host.txt') }]);
    for (const label of ['home', 'etc', 'etc-mkdir', 'tmp', 'state', 'repo'])
      blocked(`write to ${label}`, attempt.result[label], BLOCKED);
    blocked('write to the branch at its host path', hostBranch.result['branch-host'], BLOCKED);
    await hostBranch[Symbol.asyncDispose]();
    for (const p of [home, etc, `${etc}.d`, hostTmp, state, repo, join(attempt.branchPath, 'host.txt')])
      expect(existsSync(p), p).toBe(false);
    // The project's other host path leads to the same place: the branch, not the project.
    expect(attempt.result.alias).toBe('written');
    blocked('write to the real project via another host path', existsSync(join(project.dir, 'via-alias.txt')), [false]);
    // Control: the write at the project's path landed in the branch, not in the project.
    expect(attempt.result.inside).toBe('written');
    expect(readFileSync(join(attempt.branchPath, 'inside.txt'), 'utf8')).toBe('escaped');
    blocked('write to the real project at its path', existsSync(join(project.dir, 'inside.txt')), [false]);
  });

  it('cannot write through symlinks or hardlinks that point out of the workspace', async () => {
    await using attempt = await run([
      { label: 'symlink', op: 'append', path: join(project.dir, 'link-to-victim') },
      { label: 'symlink-dir', op: 'write', path: join(project.dir, 'link-to-outside-dir', 'new.txt') },
      { label: 'hardlink', op: 'append', path: join(project.dir, 'hard-link.txt') },
      { label: 'new-hardlink', op: 'link', path: join(project.dir, 'grab.txt'), target: join(outside, 'victim.txt') },
    ]);
    blocked('append through a planted symlink', attempt.result.symlink, BLOCKED);
    blocked('write through a planted directory symlink', attempt.result['symlink-dir'], BLOCKED);
    blocked('hardlink a file from outside into the branch', attempt.result['new-hardlink'], BLOCKED);
    // The planted hardlink was copied into the branch: the write stays there.
    expect(readFileSync(join(attempt.branchPath, 'hard-link.txt'), 'utf8')).toBe('originalescaped');
    blocked('append through a planted hardlink', readFileSync(join(outside, 'hard-victim.txt'), 'utf8'), ['original']);
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('original');
    expect(existsSync(join(outside, 'new.txt'))).toBe(false);
  });

  it('cannot write through links made inside: a symlink to /etc/passwd, hardlinks and renames across mounts', async () => {
    const passwd = readFileSync('/etc/passwd', 'utf8');
    const outsideFile = join(outside, 'victim.txt');
    const tmp = mkdtempSync(join(project.root, 'wtmp-'));
    const { value } = await call<Record<string, string>>('links', [{ branchDir: project.dir, outsideFile, tmp }], {
      writable: [tmp],
    });
    blocked('append to /etc/passwd through a new symlink', value.symlinkToPasswd, BLOCKED);
    // A writable dir is a mount of its own: a hardlink into it, or from it into the branch, crosses mounts.
    blocked('hardlink a file from outside into a writable dir', value.hardlinkIntoTmp, ['EXDEV']);
    blocked('hardlink a writable-dir file into the branch', value.hardlinkTmpToProject, ['EXDEV']);
    blocked('rename a branch file over a file outside', value.renameOut, BLOCKED);
    expect(readFileSync('/etc/passwd', 'utf8')).toBe(passwd);
    expect(readFileSync(outsideFile, 'utf8')).toBe('original');
    expect(readdirSync(tmp)).toEqual(['mine']);
  });

  it('cannot write through /proc/self/root or /proc/1/root', async () => {
    await using attempt = await run([
      { label: 'self-root', op: 'append', path: `/proc/self/root${join(outside, 'victim.txt')}` },
      { label: 'init-root', op: 'append', path: `/proc/1/root${join(outside, 'victim.txt')}` },
      { label: 'init-root-etc', op: 'write', path: `/proc/1/root/etc/branching-escape-${id}` },
      { label: 'init-root-project', op: 'write', path: `/proc/1/root${project.dir}/via-proc.txt` },
    ]);
    blocked('append via /proc/self/root', attempt.result['self-root'], BLOCKED);
    blocked('append via /proc/1/root', attempt.result['init-root'], BLOCKED);
    blocked('write /etc via /proc/1/root', attempt.result['init-root-etc'], BLOCKED);
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('original');
    expect(existsSync(`/etc/branching-escape-${id}`)).toBe(false);
    // /proc/1 is the sandbox's own init: its root is the sandbox, where the project path is the branch.
    blocked('write the project via /proc/1/root', existsSync(join(project.dir, 'via-proc.txt')), [false]);
  });

  it('sees no host process: /proc, /proc/<host pid>/{environ,mem,root}, kill and ptrace of the test process', async () => {
    const hostPid = process.pid;
    const { value } = await call<{
      pids: number[];
      self: number;
      topProc: string | null;
      environ: string;
      mem: string;
      status: string;
      rootWrite: string;
      kill0: string;
      killCont: string;
      shellKill: { result: string; stderr: string };
      strace: { result: string; stderr: string };
    }>('procView', [hostPid]);
    // Control: the sandbox's own processes are there (init is 1, the workload a small pid).
    expect(value.pids).toContain(1);
    expect(value.pids).toContain(value.self);
    expect(value.topProc).toBe('proc');
    blocked('/proc lists the host test process', value.pids.includes(hostPid), [false]);
    blocked('/proc lists only sandbox pids', value.pids.length < 10 && value.pids.every((p) => p < 100), [true]);
    blocked('read /proc/<host pid>/environ', value.environ, ['ENOENT']);
    blocked('read /proc/<host pid>/mem', value.mem, ['ENOENT']);
    blocked('read /proc/<host pid>/status', value.status, ['ENOENT']);
    blocked('write via /proc/<host pid>/root', value.rootWrite, ['ENOENT']);
    blocked('kill(<host pid>, 0)', value.kill0, ['ESRCH']);
    blocked('kill(<host pid>, SIGCONT)', value.killCont, ['ESRCH']);
    blocked('sh: kill -0 <host pid>', value.shellKill.result, ['ESRCH']);
    if (requireFeature('strace', value.strace.result !== 'ENOENT', 'not installed', false)) {
      blocked('strace -p <host pid>', value.strace.result, ['ESRCH']);
    }
  });

  it('holds no capability and has no_new_privs, as any uid (root included)', async () => {
    const { value } = await call<{ uid: number; caps: Record<string, string>; noNewPrivs: string }>('status', []);
    expect(value.uid).toBe(process.getuid?.());
    for (const [name, v] of Object.entries(value.caps)) blocked(`${name} is empty`, v, ['0000000000000000']);
    blocked('NoNewPrivs', value.noNewPrivs, ['1']);
  });

  it('cannot mount, remount / rw, unmount the branch or /proc, chroot or pivot_root', async () => {
    const scratch = mkdtempSync(join(project.root, 'mnt-'));
    const { value } = await call<Record<string, string | { result: string; stderr: string }>>(
      'mounts',
      [{ branchDir: project.dir, scratch }],
      { writable: [scratch] },
    );
    const r = (k: string) => {
      const v = value[k];
      return typeof v === 'string' ? v : v.result;
    };
    blocked('mount a tmpfs', r('tmpfs'), ['EPERM']);
    blocked('mount a tmpfs over /etc', r('tmpfsOverEtc'), ['EPERM']);
    blocked('bind-mount /', r('bindRoot'), ['EPERM']);
    blocked('mount(2) remount / read-write', r('remountRw'), ['EPERM']);
    // util-linux refuses non-root callers itself (no setuid under no_new_privs): EPERM either way.
    blocked('mount -o remount,rw /', r('remountCmd'), ['EPERM', 'EACCES']);
    blocked('umount2 the branch mount', r('umountBranch'), ['EPERM']);
    blocked('umount2 /proc', r('umountProc'), ['EPERM']);
    blocked('umount -l /proc', r('umountProcCmd'), ['EPERM', 'EACCES']);
    blocked('chroot /', r('chroot'), ['EPERM']);
    blocked('pivot_root', r('pivotRoot'), ['EPERM']);
    expect(readdirSync(join(scratch, 'mnt'))).toEqual([]);
  });

  it('unshare -U -r -m: refused to root; for other uids, a nested namespace that reaches nothing more', async () => {
    const etcPath = `/etc/branching-escape-nested-${id}`;
    const hostTmp = join(tmpdir(), `branching-escape-nested-${id}`);
    const { value } = await call<Record<string, unknown>>('nestedUserns', [{ hostTmp, etcPath }]);
    if (root) {
      // Mapping uid 0 of the parent namespace needs CAP_SETFCAP there, which the workload lacks.
      blocked('unshare -U -r (as root)', value.entered, [false]);
      expect(value.refusal, String(value.stderr)).toBe('EPERM');
      expect(String(value.stderr)).toContain('uid_map');
    } else {
      // The kernel lets any uid make a user namespace; inside, everything inherited stays locked.
      expect(value, JSON.stringify(value)).toMatchObject({ entered: true, uid: 0 });
      expect(value.capEff).not.toBe('0000000000000000'); // control: it really is root in there
      blocked('nested userns: remount / rw', value.remountRw, ['EPERM']);
      blocked('nested userns: write /etc', value.etc, BLOCKED);
      blocked('nested userns: write the host /tmp', value.hostTmp, BLOCKED);
      blocked('nested userns: umount2 /proc', value.umountProc, ['EINVAL', 'EPERM']);
      blocked('nested userns: umount2 /', value.umountRoot, ['EINVAL', 'EPERM', 'EBUSY']);
    }
    expect(existsSync(etcPath)).toBe(false);
    expect(existsSync(hostTmp)).toBe(false);
  });

  it('a setsid, double-forked daemon dies when its context ends', async () => {
    const dir = mkdtempSync(join(project.root, 'daemon-'));
    const fifo = join(dir, 'fifo');
    const marker = join(dir, 'marker');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const token = `branching-escape-daemon-${id}`;
    // EOF on the fifo comes once every process that holds it open for writing is gone.
    const reader = createReadStream(fifo);
    let ticks = 0;
    reader.on('data', (d) => {
      ticks += String(d).split('tick').length - 1;
    });
    const eof = new Promise<void>((r) => reader.once('end', () => r()));
    try {
      const { value } = await call<{ ticked: boolean; running: boolean }>('daemon', [{ fifo, marker, token }], {
        writable: [dir],
      });
      // Control: the daemon ran, and was still running when the workload returned.
      expect(value).toEqual({ ticked: true, running: true });
      expect(pidsWithToken(token)).toEqual([]);
      await within(eof, 10_000, 'EOF on the daemon fifo');
      blocked('a setsid double-forked daemon outlives its context', pidsWithToken(token).length, [0]);
    } catch (err) {
      // Unblock the reader's open if the daemon never opened the fifo.
      spawnSync('sh', ['-c', `exec 3<>"${fifo}"`]);
      throw err;
    }
    expect(ticks).toBeGreaterThan(0);
    const size = readFileSync(marker).length;
    // Once EOF came, no writer is left: the marker cannot grow any more.
    expect(readFileSync(marker).length).toBe(size);
  });

  it('a SIGKILLed parent takes the launcher, init and workload down', async () => {
    assertBuilt();
    const token = `branching-escape-orphan-${id}`;
    const parent = spawn(process.execPath, [escapeTargets, 'parent', project.dir, token], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await within(readUntil(parent.stdout, '\n'), 20_000, 'the sandboxed workload starting');
      const { launcher } = JSON.parse(line) as { launcher: number };
      const inits = childrenOf(launcher);
      const all = pidsWithToken(token).filter((p) => p !== parent.pid);
      // Control: the launcher, its init and the workload are running now.
      expect(all).toContain(launcher);
      for (const p of inits) expect(all).toContain(p);
      expect(inits.length).toBeGreaterThan(0);
      expect(all.length).toBeGreaterThanOrEqual(3);
      parent.kill('SIGKILL');
      // Dead means gone or a zombie waiting for the system's init to reap it.
      const dead = () => all.every((p) => ['gone', 'Z'].includes(procState(p)));
      await until(dead, 10_000, 'the orphaned sandbox dying').catch(() => {});
      const survivors = all.filter((p) => !['gone', 'Z'].includes(procState(p)));
      blocked(`a sandbox outlives its SIGKILLed parent (${survivors.join(', ')})`, survivors.length, [0]);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a BranchContext inside `branching run` gets no trace of the outer helper socket', async () => {
    assertBuilt();
    const cli = join(repoRoot, 'dist', 'cli.js');
    const child = spawnSync(
      process.execPath,
      [cli, 'run', '--allow', project.root, '--', process.execPath, escapeTargets, 'outer', project.dir],
      { cwd: project.dir, encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.status, child.stderr).toBe(0);
    const out = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as {
      fd: number;
      inode: string;
      uid: number;
      control: { ok: boolean; code: string; message: string };
      seen: { env: string | null; sameSocket: number; fdAt: string; call: string } | null;
      error: string | null;
    };
    // Control: outside the BranchContext the helper answers (and refuses a bind of /etc).
    expect(out.inode).toMatch(/^socket:\[\d+\]$/);
    expect(out.control).toMatchObject({ ok: false, code: 'EPERM' });
    expect(out.control.message).toContain("outside the helper's allowed roots");
    if (out.seen === null && root) {
      // Root inside `branching run` has no capability left, so the launcher cannot write root's
      // all-uid map for the nested sandbox: the context fails closed (nothing runs), it never
      // downgrades into a plain child that would inherit the helper.
      blocked('a BranchContext in `branching run` as root starts unsandboxed', out.error, [
        'NamespaceError: cannot sandbox the process: user and mount namespaces are unavailable: userns /proc/self/uid_map failed with EPERM (uid 0 without capabilities (inside another sandbox, such as `branching run`) cannot map itself into a nested user namespace: the kernel requires CAP_SETFCAP)',
      ]);
      return;
    }
    expect(out.error).toBeNull();
    const seen = out.seen as NonNullable<typeof out.seen>;
    blocked('BRANCHING_HELPER_FD reaches the workload', seen.env, [null]);
    blocked(
      `the outer helper socket is open in the workload (fd ${out.fd}: ${seen.fdAt}; helperCall on it: ${seen.call})`,
      seen.sameSocket,
      [0],
    );
    blocked('the outer helper fd number is open in the workload', seen.fdAt, ['ENOENT']);
    blocked('helperCall on the outer helper fd number', seen.call, ['EBADF']);
  });

  it.runIf(Boolean(process.env.BRANCHING_HELPER_FD))(
    'inside `branching run` (as CI runs this as nobody): the helper of this very process is closed too',
    async () => {
      const fd = Number(process.env.BRANCHING_HELPER_FD);
      const inode = readlinkSync(`/proc/self/fd/${fd}`);
      const { value } = await call<{ env: string | null; sameSocket: number; fdAt: string; call: string }>('helperFd', [
        fd,
        inode,
      ]);
      blocked('BRANCHING_HELPER_FD reaches the workload (launched)', value.env, [null]);
      blocked(
        `the test process helper socket is open in the workload (fd ${fd}: ${value.fdAt}; helperCall on it: ${value.call})`,
        value.sameSocket,
        [0],
      );
      blocked('helperCall on the test process helper fd', value.call, ['EBADF']);
    },
  );

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
      let unixServer: Server;
      let socketPath: string;
      let unixConnections = 0;
      beforeAll(async () => {
        server = createServer(() => {
          connections++;
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        port = (server.address() as { port: number }).port;
        // A Unix socket server in a world-writable directory, like /tmp.
        const dir = mkdtempSync(join(project.root, 'sock-'));
        chmodSync(dir, 0o1777);
        socketPath = join(dir, 's.sock');
        unixServer = createServer((socket) => {
          unixConnections++;
          socket.resume();
        });
        await new Promise<void>((r) => unixServer.listen(socketPath, r));
        chmodSync(socketPath, 0o777);
      });
      afterAll(async () => {
        await new Promise<void>((r) => server.close(() => r()));
        await new Promise<void>((r) => unixServer.close(() => r()));
      });

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
        blocked('TCP connect to a host server on 127.0.0.1 (network: false)', off, ['ECONNREFUSED', 'ENETUNREACH']);
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

      it('with network: false, socket(AF_UNIX) is refused (EACCES) and child-process IPC still works', async () => {
        const off = await call<{ connect: string; ipc: string }>('unixAndIpc', [socketPath], { network: false });
        blocked('connect to a host Unix socket in a world-writable dir (network: false)', off.value.connect, [
          'EACCES',
        ]);
        expect(unixConnections).toBe(0);
        // Controls: socketpair-based IPC works without the network; with it, the Unix socket is reachable.
        expect(off.value.ipc).toBe('ping-back');
        const on = await call<{ connect: string; ipc: string }>('unixAndIpc', [socketPath]);
        expect(on.value).toEqual({ connect: 'connected', ipc: 'ping-back' });
        await until(() => unixConnections === 1, 5000, 'the host seeing the connection');
      });
    },
  );
});
