import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/addon.ts';
import { bindRequest, checkHelperReply, overlayRequest, unmountRequest } from '../../src/backends/helper-client.ts';
import { ArgumentError, isBranchingError, MountError, NamespaceError } from '../../src/base/errors.ts';
import { removeLayerDirSync } from '../../src/base/layer-dir.ts';
import type { SandboxError } from '../../src/base/mount-wire.ts';
import {
  LaunchSpec,
  locateLauncher,
  packageRoot,
  probeSandbox,
  type SpawnSandboxedOptions,
  spawnSandboxed,
} from '../../src/sandbox/launcher.ts';
import { requireFeature } from '../helpers/require-feature.ts';

const launcher = locateLauncher();
const hasLauncher = requireFeature('the sandbox launcher', launcher.path !== null, launcher.reason);
const probe = probeSandbox();
const hasNs = hasLauncher && requireFeature('user and mount namespaces', probe.userns, probe.reason);
const hasOverlay = hasNs && requireFeature('overlayfs in a user namespace', probe.overlay, probe.reason);
const hasPidns = hasNs && requireFeature('PID namespaces', probe.pidns, probe.reason);
const hasNetns = hasNs && requireFeature('network namespaces', probe.netns, probe.reason);
const isRoot = process.getuid?.() === 0;
// The addon the library itself loads (the local build in a checkout).
const addonFile = loadNative().file ?? 'branching.node';

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  status: { ok: true; pid: number } | SandboxError;
}

async function run(
  spec: LaunchSpec,
  command: string,
  args: string[],
  options: Partial<SpawnSandboxedOptions> = {},
): Promise<RunResult> {
  const { child, status } = spawnSandboxed(command, args, { spec, stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const settled = await status.then(
    (s) => s,
    (e: SandboxError) => e,
  );
  return { code, signal, stdout, stderr, status: settled };
}

const ns = () => new LaunchSpec().userns().mountns();

function processesWith(marker: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });
}

/** A bounded wait (10 s) for processes that are already on their way out: the kernel's own asynchrony. */
async function untilDead(pids: string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (pids.some(processAlive) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
}

/** Running or sleeping (a zombie or a vanished pid counts as dead). */
function processAlive(pid: string): boolean {
  try {
    return !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
const capLine = (status: string, name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, 'm').exec(status)?.[1];

let dir: string;
beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'branching-launcher-')));
});
afterEach(() => {
  removeLayerDirSync(dir);
});

describe('LaunchSpec', () => {
  it('serialises typed operations to the TAB/NL wire format', () => {
    const spec = new LaunchSpec()
      .userns()
      .mountns()
      .pidns()
      .netns()
      .overlay({ target: '/p', lowers: ['/a', '/b'], upper: '/u', work: '/w' })
      .overlay({ target: '/q', lowers: ['/a'], upper: '/u', work: '/w', options: ['redirect_dir=on'] })
      .bind('/s', '/d', { readonly: true })
      .tmpfs('/tmp', 0o1777)
      .rdonly('/')
      .writable('/state')
      .chdir('/p')
      .helper(['/p', '/state']);
    expect(spec.toString()).toBe(
      [
        'userns',
        'mountns',
        'pidns',
        'netns',
        'overlay\t/p\t/a:/b\t/u\t/w',
        'overlay\t/q\t/a\t/u\t/w\tredirect_dir=on',
        'bind\t/s\t/d\tro',
        'tmpfs\t/tmp\t1777',
        'rdonly\t/',
        'writable\t/state',
        'chdir\t/p',
        'helper\t/p:/state',
      ].join('\n'),
    );
    expect(spec.hasHelper).toBe(true);
  });

  it('rejects paths the wire format cannot carry, naming the argument', () => {
    const cases: [() => unknown, string][] = [
      [() => new LaunchSpec().chdir('relative'), 'chdir.dir'],
      [() => new LaunchSpec().bind('/a\tb', '/c'), 'bind.src'],
      [() => new LaunchSpec().bind('/a', '/c\nuserns'), 'bind.dst'],
      [
        () => new LaunchSpec().overlay({ target: '/t', lowers: ['/a:b'], upper: '/u', work: '/w' }),
        'overlay.lowers[0]',
      ],
      [() => new LaunchSpec().overlay({ target: '/t', lowers: [], upper: '/u', work: '/w' }), 'overlay.lowers'],
      [() => new LaunchSpec().overlay({ target: '/t,x', lowers: ['/a'], upper: '/u', work: '/w' }), 'overlay.target'],
      [
        () =>
          new LaunchSpec().overlay({ target: '/t', lowers: ['/a'], upper: '/u', work: '/w', options: ['upperdir=/x'] }),
        'overlay.options',
      ],
      [() => new LaunchSpec().tmpfs('/t', 0o17777), 'tmpfs.mode'],
      [() => new LaunchSpec().helper(['/a\0']), 'helper.roots[0]'],
      [() => overlayRequest({ target: '/t', lowers: ['/a'], upper: 'u', work: '/w' }), 'upper'],
    ];
    for (const [fn, argument] of cases) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught, argument).toBeInstanceOf(ArgumentError);
      expect((caught as ArgumentError).argument).toBe(argument);
    }
  });

  it('finds the package root by its package.json name, from src/ or dist/ depth', () => {
    const root = packageRoot()!;
    expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name).toBe('branching');
    expect(packageRoot(join(root, 'dist', 'index.js'))).toBe(root);
  });
});

describe.skipIf(!hasLauncher)('launcher: exec contract', () => {
  it('execs with argv, every fd and the environment kept, minus its own variables', async () => {
    const script = `
      const fs = require('fs');
      fs.writeSync(3, 'via fd 3');
      console.log(JSON.stringify({ argv: process.argv.slice(1), env: process.env }));`;
    const { child, status } = spawnSandboxed(process.execPath, ['-e', script, 'a b', '', '--flag'], {
      spec: new LaunchSpec(),
      env: { ...process.env, KEEP_ME: 'yes\tand more' },
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    let out = '';
    let fd3 = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => {
      fd3 += d;
    });
    const [code] = await once(child, 'close');
    expect(code).toBe(0);
    expect(await status).toEqual({ ok: true, pid: child.pid });
    const seen = JSON.parse(out) as { argv: string[]; env: Record<string, string> };
    expect(seen.argv).toEqual(['a b', '', '--flag']);
    expect(fd3).toBe('via fd 3');
    expect(seen.env.KEEP_ME).toBe('yes\tand more');
    expect(seen.env.BRANCHING_SANDBOX).toBe('1');
    expect(Object.keys(seen.env).filter((k) => k.startsWith('BRANCHING_LAUNCH'))).toEqual([]);
  });

  it('can stand in for node as a fork() execPath: the IPC channel survives', async () => {
    const script = join(dir, 'echo.cjs');
    writeFileSync(
      script,
      `process.on('message', (m) => { process.send({ echo: m, argv: process.argv.slice(2) }); process.disconnect(); });`,
    );
    const child = fork(script, ['x'], {
      execPath: launcher.path!,
      env: { ...process.env, BRANCHING_LAUNCH_SPEC: '', BRANCHING_LAUNCH_EXEC: process.execPath },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.send({ hello: 1 });
    const [reply] = await once(child, 'message');
    expect(reply).toEqual({ echo: { hello: 1 }, argv: ['x'] });
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('reports a failing operation as JSON naming op, index, errno and path (exit 126)', async () => {
    const missing = join(dir, 'missing');
    const r = await run(new LaunchSpec().chdir(dir).chdir(missing), '/bin/sh', ['-c', 'echo ran']);
    expect(r.code).toBe(126);
    expect(r.stdout).toBe('');
    expect(r.status).toBeInstanceOf(NamespaceError);
    const err = r.status as SandboxError;
    expect(err).toMatchObject({ op: 'chdir', index: 1, errnoCode: 'ENOENT', path: missing });
    expect(err.cause).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'chdir', path: missing });
  });

  it('reports an exec failure (exit 127) after setup succeeded', async () => {
    const notExecutable = join(dir, 'script');
    writeFileSync(notExecutable, 'echo hi', { mode: 0o644 });
    const r = await run(new LaunchSpec(), notExecutable, []);
    expect(r.code).toBe(127);
    expect(r.status).toMatchObject({ op: 'exec', errnoCode: 'EACCES', path: notExecutable });
  });

  it('rejects the status promise when the launcher cannot even start', async () => {
    const { child, status } = spawnSandboxed('/bin/true', [], { spec: new LaunchSpec(), cwd: join(dir, 'gone') });
    const [err] = await once(child, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    await expect(status).rejects.toBeInstanceOf(NamespaceError);
  });

  it('rejects unknown operations before applying any', async () => {
    const marker = join(dir, 'ran');
    const child = spawn(launcher.path!, ['-c', `touch ${marker}`], {
      env: {
        PATH: process.env.PATH,
        BRANCHING_LAUNCH_SPEC: `chdir\t${dir}\nfrobnicate\t/x`,
        BRANCHING_LAUNCH_EXEC: '/bin/sh',
        BRANCHING_LAUNCH_STATUS_FD: '3',
      },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let status = '';
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => {
      status += d;
    });
    const [code] = await once(child, 'close');
    expect(code).toBe(126);
    expect(JSON.parse(status)).toMatchObject({
      ok: false,
      op: 'frobnicate',
      index: 1,
      errno: 22,
      code: 'EINVAL',
      message: 'unknown operation',
    });
    expect(existsSync(marker)).toBe(false);
  });
});

describe.skipIf(!hasNs)('launcher: namespaces and capabilities', () => {
  it('runs the workload with its real uid/gid, in a user namespace, with no capabilities at all (root too)', async () => {
    const r = await run(ns(), '/bin/sh', [
      '-c',
      'cat /proc/self/status; echo "ids $(id -u) $(id -g)"; cat /proc/self/uid_map',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`ids ${process.getuid!()} ${process.getgid!()}`);
    for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb', 'CapBnd']) {
      expect(capLine(r.stdout, cap), cap).toBe('0000000000000000');
    }
    expect(capLine(r.stdout, 'NoNewPrivs')).toBe('1');
    // root maps every uid onto itself (all but (uid_t)-2), anyone else only itself
    const map = r.stdout.trim().split('\n').at(-1)!.trim().split(/\s+/);
    expect(map).toEqual(
      isRoot ? ['0', '0', '4294967294'] : [String(process.getuid!()), String(process.getuid!()), '1'],
    );
  });

  it.skipIf(isRoot)(
    'permission checks equal the outside: a chmod 000 own file gives EACCES (not for root)',
    async () => {
      const file = join(dir, 'secret');
      writeFileSync(file, 'secret');
      chmodSync(file, 0o000);
      const r = await run(ns(), '/bin/sh', ['-c', `cat ${file}; echo "rc=$?"`]);
      expect(r.stdout).toBe('rc=1\n');
      expect(r.stderr).toMatch(/Permission denied/);
    },
  );

  it('rdonly makes the tree read-only, writable and tmpfs carve out writable places', async () => {
    const state = join(dir, 'state');
    const tmp = join(dir, 'tmp');
    mkdirSync(state);
    mkdirSync(tmp);
    // order matters: a tmpfs mounted before `rdonly /` would be made read-only too
    const spec = ns().rdonly('/').writable(state).tmpfs(tmp, 0o700);
    const script = [
      `touch ${dir}/denied 2>/dev/null; echo "root=$?"`,
      `echo x > ${state}/ok; echo "state=$?"`,
      `echo x > ${tmp}/ok; echo "tmp=$?"`,
      `stat -c %a ${tmp}`,
    ].join('; ');
    const r = await run(spec, '/bin/sh', ['-c', script]);
    expect(r.status).toEqual({ ok: true, pid: expect.any(Number) });
    expect(r.stdout).toBe('root=1\nstate=0\ntmp=0\n700\n');
    expect(existsSync(join(dir, 'denied'))).toBe(false);
    expect(readFileSync(join(state, 'ok'), 'utf8')).toBe('x\n');
    expect(readdirSync(tmp)).toEqual([]); // the tmpfs vanished with the namespace
  });
});

describe.skipIf(!hasOverlay)('launcher: overlay', () => {
  it('mounts a branch at the project own path: writes land in upper, the host dir is unchanged', async () => {
    const project = join(dir, 'project');
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    for (const d of [project, upper, work]) mkdirSync(d);
    writeFileSync(join(project, 'a.txt'), 'original');
    writeFileSync(join(project, 'c.txt'), 'to delete');
    const spec = ns()
      .overlay({ target: project, lowers: [project], upper, work })
      .chdir(project);
    const r = await run(spec, '/bin/sh', [
      '-c',
      'echo changed > a.txt && echo new > b.txt && rm c.txt && pwd && cat a.txt',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${project}\nchanged\n`);
    expect(readdirSync(project).sort()).toEqual(['a.txt', 'c.txt']);
    expect(readFileSync(join(project, 'a.txt'), 'utf8')).toBe('original');
    expect(readFileSync(join(upper, 'a.txt'), 'utf8')).toBe('changed\n');
    expect(readFileSync(join(upper, 'b.txt'), 'utf8')).toBe('new\n');
    const whiteout = lstatSync(join(upper, 'c.txt'));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
  });

  it('renaming a lower-layer directory: EXDEV (userxattr overlays, root included); redirect_dir=on is refused there', async () => {
    const project = join(dir, 'project');
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    for (const d of [project, join(project, 'sub'), upper, work]) mkdirSync(d);
    writeFileSync(join(project, 'sub', 'f'), 'x');
    const spec = ns().overlay({ target: project, lowers: [project], upper, work });
    const script = `try { require('fs').renameSync('${project}/sub', '${project}/moved'); console.log('renamed'); } catch (e) { console.log(e.code); }`;
    const r = await run(spec, process.execPath, ['-e', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('EXDEV\n');
    expect(readdirSync(project)).toEqual(['sub']); // the host tree is untouched
    const redirect = ns().overlay({ target: project, lowers: [project], upper, work, options: ['redirect_dir=on'] });
    const refused = await run(redirect, '/bin/true', []);
    expect(refused.code).toBe(126);
    expect(refused.status).toMatchObject({ op: 'overlay', errnoCode: 'EINVAL' });
  });

  it('reports a failing overlay as a MountError with errno and path', async () => {
    const target = join(dir, 'merged');
    mkdirSync(target);
    const missing = join(dir, 'no-lower');
    const spec = ns().overlay({ target, lowers: [missing], upper: join(dir, 'u'), work: join(dir, 'w') });
    const r = await run(spec, '/bin/true', []);
    expect(r.code).toBe(126);
    expect(r.status).toBeInstanceOf(MountError);
    expect(r.status).toMatchObject({ op: 'overlay', index: 2, errnoCode: 'ENOENT', path: target });
    expect(isBranchingError(r.status, 'MountError')).toBe(true);
  });

  it('the helper mounts a nested overlay on request for a capability-less workload, and rejects paths outside its roots', async () => {
    const root = join(dir, 'root');
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(root, d));
    for (const d of [root, lower, upper, work, merged]) mkdirSync(d);
    writeFileSync(join(lower, 'base.txt'), 'base');
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const requests = [
      overlayRequest({ target: merged, lowers: [lower], upper, work }),
      overlayRequest({ target: outside, lowers: [lower], upper, work }),
      overlayRequest({ target: `${root}/../outside`, lowers: [lower], upper, work }),
      `mount\t${merged}\tproc`,
      unmountRequest(merged),
    ];
    const script = `
      const n = require(${JSON.stringify(addonFile)});
      const fs = require('fs');
      const fd = Number(process.env.BRANCHING_HELPER_FD);
      const requests = JSON.parse(process.argv[1]);
      const out = { caps: /CapEff:\\s*(\\S+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1], replies: [] };
      out.replies.push(n.helperCall(fd, requests[0]));
      out.seen = fs.readFileSync(${JSON.stringify(join(merged, 'base.txt'))}, 'utf8');
      fs.writeFileSync(${JSON.stringify(join(merged, 'added.txt'))}, 'added');
      for (const r of requests.slice(1)) out.replies.push(n.helperCall(fd, r));
      out.after = fs.readdirSync(${JSON.stringify(merged)});
      console.log(JSON.stringify(out));`;
    const r = await run(ns().helper([root]), process.execPath, ['-e', script, JSON.stringify(requests)]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { caps: string; replies: string[]; seen: string; after: string[] };
    if (!isRoot) expect(out.caps).toBe('0000000000000000');
    expect(out.seen).toBe('base');
    expect(readFileSync(join(upper, 'added.txt'), 'utf8')).toBe('added'); // written through the nested overlay
    expect(existsSync(join(lower, 'added.txt'))).toBe(false);
    expect(out.after).toEqual([]); // unmounted again
    expect(() => checkHelperReply(out.replies[0])).not.toThrow();
    expect(() => checkHelperReply(out.replies[4])).not.toThrow();
    const errors = out.replies.slice(1, 4).map((reply) => {
      try {
        checkHelperReply(reply);
      } catch (err) {
        return err as SandboxError;
      }
      throw new Error(`expected a refusal, got ${reply}`);
    });
    for (const e of errors) expect(e).toBeInstanceOf(MountError);
    expect(errors[0]).toMatchObject({ op: 'overlay', errnoCode: 'EPERM', path: outside });
    expect(errors[0].message).toMatch(/outside the helper's allowed roots/);
    expect(errors[1]).toMatchObject({ op: 'overlay', errnoCode: 'EINVAL', path: `${root}/../outside` });
    expect(errors[2]).toMatchObject({ op: 'mount', errnoCode: 'EINVAL' });
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe.skipIf(!hasOverlay)('launcher: what the helper refuses', () => {
  it('unmounts only mounts it made, and binds read-only only', async () => {
    const root = join(dir, 'confined');
    const [lower, upper, work, project, layerUp, layerWork, bound] = [
      'lower',
      'upper',
      'work',
      'project',
      'layer-upper',
      'layer-work',
      'bound',
    ].map((d) => join(root, d));
    for (const d of [root, lower, upper, work, project, layerUp, layerWork, bound]) mkdirSync(d);
    writeFileSync(join(project, 'real.txt'), 'real');
    // The launcher mounts the project's branch; the helper serves the workload afterwards.
    const spec = ns()
      .overlay({ target: project, lowers: [project], upper, work })
      .helper([root]);
    const requests = [
      unmountRequest(project), // the launcher's mount: refused
      bindRequest(project, bound), // rw: refused
      bindRequest(project, bound, { readonly: true }),
      overlayRequest({ target: project, lowers: [project], upper: layerUp, work: layerWork }),
      unmountRequest(project), // the helper's own layer: allowed
      unmountRequest(project), // the launcher's branch again: still refused
      unmountRequest(bound), // the helper's own bind: allowed
    ];
    const script = `
      const n = require(${JSON.stringify(addonFile)});
      const fd = Number(process.env.BRANCHING_HELPER_FD);
      const replies = JSON.parse(process.argv[1]).map((r) => n.helperCall(fd, r));
      require('fs').writeFileSync(${JSON.stringify(join(project, 'written.txt'))}, 'x');
      console.log(JSON.stringify(replies));`;
    const r = await run(spec, process.execPath, ['-e', script, JSON.stringify(requests)]);
    expect(r.code, r.stderr).toBe(0);
    const replies = (JSON.parse(r.stdout) as string[]).map((reply) => JSON.parse(reply));
    expect(replies.map((x) => x.ok === true || x.code)).toEqual(['EPERM', 'EPERM', true, true, true, 'EPERM', true]);
    expect(replies[0].message).toMatch(/only mounts it made/);
    expect(replies[1].message).toMatch(/read-only binds only/);
    // The workload's write landed in the launcher's branch, which it could not strip away.
    expect(readFileSync(join(upper, 'written.txt'), 'utf8')).toBe('x');
    expect(readdirSync(project)).toEqual(['real.txt']);
  });
});

describe.skipIf(!hasNs)('launcher: helper lifetime', () => {
  it('the helper exits once the workload (the last holder of its socket) is gone', async () => {
    const marker = `branching-helper-${process.pid}-${Date.now()}`;
    const { child, status } = spawnSandboxed('/bin/sh', ['-c', 'echo ready; read x', marker], {
      spec: ns().helper([dir]),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await status;
    await once(createInterface({ input: child.stdout! }), 'line');
    // The helper is a fork of the launcher: same cmdline (the workload's argv[0] became /bin/sh at exec).
    const helpers = processesWith(marker).filter((p) =>
      readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith(launcher.path!),
    );
    expect(helpers).toHaveLength(1);
    expect(readFileSync(`/proc/${helpers[0]}/status`, 'utf8')).toMatch(/^PPid:\s+(?!0$)\d+$/m);
    child.stdin!.end('bye\n');
    expect((await once(child, 'exit'))[0]).toBe(0);
    await untilDead(helpers);
    expect(processAlive(helpers[0])).toBe(false);
  });
});

describe.skipIf(!hasPidns)('launcher: pid namespace', () => {
  it('the workload is never PID 1, and the status reports its pid as seen from here', async () => {
    const { child, status } = spawnSandboxed(
      process.execPath,
      ['-e', `process.stdout.write(String(process.pid)); process.stdin.once('data', () => process.exit(0));`],
      { spec: ns().pidns(), stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const [inside] = await once(child.stdout!, 'data');
    const { pid } = await status;
    expect(Number(String(inside))).toBe(2);
    expect(pid).not.toBe(child.pid);
    // the pid we were given is the workload's: its cmdline is node's, and its NSpid ends with 2
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe(process.execPath);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+2$/m);
    child.stdin!.end('go');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('forwards SIGTERM to the workload and exits like it (code, or the same signal)', async () => {
    const { child, status } = spawnSandboxed(
      process.execPath,
      [
        '-e',
        `process.on('SIGTERM', () => process.exit(7)); process.stdout.write('ready'); setInterval(() => {}, 1e6);`,
      ],
      { spec: ns().pidns(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await status;
    await once(child.stdout!, 'data');
    child.kill('SIGTERM');
    expect(await once(child, 'exit')).toEqual([7, null]);
    const r = await run(ns().pidns(), '/bin/sh', ['-c', 'kill -HUP $$']);
    expect([r.code, r.signal]).toEqual([null, 'SIGHUP']);
  });

  it('SIGKILL of the launcher kills a setsid daemon that ignores SIGTERM (the whole namespace dies)', async () => {
    const marker = `branching-daemon-${process.pid}-${Date.now()}`;
    // The daemon inherits stdout: the pipe reaches EOF only when every holder is dead.
    const script = `setsid /bin/sh -c 'trap "" TERM HUP; echo daemon-ready; while :; do sleep 1000; done' ${marker} & wait`;
    const { child, status } = spawnSandboxed('/bin/sh', ['-c', script], {
      spec: ns().pidns(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await status;
    const lines = createInterface({ input: child.stdout! });
    const [first] = await once(lines, 'line');
    expect(first).toBe('daemon-ready');
    const daemons = processesWith(marker);
    expect(daemons.filter(processAlive).length).toBeGreaterThanOrEqual(3); // outer launcher, init, workload sh, daemon
    const ended = once(child.stdout!, 'end');
    child.kill('SIGKILL');
    await ended;
    // stdout's EOF means every holder has closed its files, i.e. is exiting; let the exits finish
    await untilDead(daemons);
    expect(daemons.filter(processAlive)).toEqual([]);
  });
});

describe.skipIf(!hasNetns)('launcher: network namespace', () => {
  it('cannot reach a port the host listens on at loopback, but has its own working lo', async () => {
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    let connections = 0;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const script = `
      const net = require('net');
      const own = net.createServer((s) => s.end('pong')).listen(0, '127.0.0.1', () => {
        const c = net.connect(own.address().port, '127.0.0.1');
        c.setEncoding('utf8');
        c.on('data', (d) => {
          const host = net.connect(${port}, '127.0.0.1');
          host.on('connect', () => { console.log(d + ' host-reachable'); process.exit(0); });
          host.on('error', (e) => { console.log(d + ' ' + e.code); process.exit(0); });
        });
      });`;
    try {
      const r = await run(ns().netns(), process.execPath, ['-e', script]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('pong ECONNREFUSED\n');
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe('probeSandbox', () => {
  it('is cached and explains what is missing', () => {
    const again = probeSandbox();
    expect(again).toBe(probe);
    expect(again.root).toBe(isRoot);
    if (again.available) expect(again.userns && again.overlay).toBe(true);
    else expect(again.reason).toMatch(/\S/);
  });
});
