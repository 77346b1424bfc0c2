// Targets of the escape battery (test/process/escape.test.ts). Each exported function runs inside a
// BranchContext and reports what the kernel answered (an errno code, or 'written'/'ok' when an
// attempt went through); the test decides what is blocked. Run as a script, this file is also
// the host-side parent the battery needs (`parent` for the SIGKILLed-parent test, `outer` for the
// BranchContext started inside `branching run`).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..');
const addonPath = join(repoRoot, 'native', 'build', 'Release', 'branching.node');
const require = createRequire(import.meta.url);
const addon = () => require(addonPath);

function code(fn) {
  try {
    const v = fn();
    return v === undefined ? 'ok' : v;
  } catch (err) {
    return err.code ?? String(err);
  }
}

/** errno name from a util-linux / coreutils message. */
function errnoOf(text) {
  const table = [
    ['Operation not permitted', 'EPERM'],
    ['Permission denied', 'EACCES'],
    ['permission denied', 'EACCES'],
    ['must be superuser', 'EPERM'],
    ['Read-only file system', 'EROFS'],
    ['Invalid argument', 'EINVAL'],
    ['No such process', 'ESRCH'],
    ['No such file or directory', 'ENOENT'],
  ];
  for (const [msg, name] of table) if (text.includes(msg)) return name;
  return 'EUNKNOWN';
}

/** A command's outcome: 'ok' (exit 0) or the errno its message names, with the message. */
function command(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.error) return { result: r.error.code, stderr: String(r.error) };
  if (r.status === 0) return { result: 'ok', stderr: r.stderr };
  return { result: errnoOf(r.stderr), status: r.status, stderr: r.stderr.trim() };
}

export function status() {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (name) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(text)?.[1] ?? null;
  return {
    uid: process.getuid(),
    caps: Object.fromEntries(['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map((c) => [c, field(c)])),
    noNewPrivs: field('NoNewPrivs'),
  };
}

/** What this sandbox's /proc shows, and whether the host test process can be reached through it. */
export function procView(hostPid) {
  const pids = fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n');
  const procMounts = mountinfo.filter((l) => l.split(' ')[4] === '/proc');
  return {
    pids,
    self: process.pid,
    // The topmost /proc is the last one mounted there: its filesystem type follows the " - ".
    topProc: procMounts.at(-1)?.split(' - ')[1]?.split(' ')[0] ?? null,
    environ: code(() => fs.readFileSync(`/proc/${hostPid}/environ`).length),
    mem: code(() => fs.readFileSync(`/proc/${hostPid}/mem`).length),
    status: code(() => fs.readFileSync(`/proc/${hostPid}/status`, 'utf8').length),
    rootWrite: code(() => fs.writeFileSync(`/proc/${hostPid}/root/tmp/branching-escape-${hostPid}`, 'x')),
    kill0: code(() => process.kill(hostPid, 0)),
    killCont: code(() => process.kill(hostPid, 'SIGCONT')),
    shellKill: command(['sh', '-c', `kill -0 ${hostPid}`]),
    strace: command(['strace', '-p', String(hostPid), '-e', 'trace=none', '-o', '/dev/null']),
  };
}

/** mount(2), umount2(2), chroot(2), pivot_root(2) and their command-line forms. */
export function mounts({ branchDir, scratch }) {
  const a = addon();
  const c = a.constants;
  fs.mkdirSync(join(scratch, 'mnt'), { recursive: true });
  return {
    tmpfs: code(() => a.mount('tmpfs', join(scratch, 'mnt'), 'tmpfs', 0, null)),
    tmpfsOverEtc: code(() => a.mount('tmpfs', '/etc', 'tmpfs', 0, null)),
    bindRoot: code(() => a.mount('/', join(scratch, 'mnt'), null, c.MS_BIND | c.MS_REC, null)),
    remountRw: code(() => a.mount('none', '/', null, c.MS_REMOUNT | c.MS_BIND, null)),
    remountCmd: command(['mount', '-o', 'remount,rw', '/']),
    umountBranch: code(() => a.umount2(branchDir, c.MNT_DETACH)),
    umountProc: code(() => a.umount2('/proc', c.MNT_DETACH)),
    umountProcCmd: command(['umount', '-l', '/proc']),
    chroot: command(['chroot', '/', 'true']),
    pivotRoot: command(['pivot_root', branchDir, join(branchDir, 'old')]),
  };
}

/**
 * `unshare -U -r -m`: a nested user namespace where this uid is root. Inside it (if the kernel
 * lets it be made) the same escapes again: remount / rw, write to /etc and the host's /tmp path,
 * detach /proc. Returns { entered, ... } or { entered: false, refusal }.
 */
export function nestedUserns({ hostTmp, etcPath }) {
  const inner = `
    const fs = require('node:fs');
    const a = require(${JSON.stringify(addonPath)});
    const c = a.constants;
    const code = (fn) => { try { fn(); return 'ok'; } catch (e) { return e.code ?? String(e); } };
    const st = fs.readFileSync('/proc/self/status', 'utf8');
    process.stdout.write(JSON.stringify({
      entered: true,
      uid: process.getuid(),
      capEff: /^CapEff:\\s*(\\S+)/m.exec(st)[1],
      remountRw: code(() => a.mount('none', '/', null, c.MS_REMOUNT | c.MS_BIND, null)),
      etc: code(() => fs.writeFileSync(${JSON.stringify(etcPath)}, 'escaped')),
      hostTmp: code(() => fs.writeFileSync(${JSON.stringify(hostTmp)}, 'escaped')),
      umountProc: code(() => a.umount2('/proc', c.MNT_DETACH)),
      umountRoot: code(() => a.umount2('/', c.MNT_DETACH)),
    }));`;
  const r = spawnSync('unshare', ['-U', '-r', '-m', process.execPath, '-e', inner], { encoding: 'utf8' });
  if (r.status === 0) return JSON.parse(r.stdout);
  return { entered: false, refusal: errnoOf(r.stderr), status: r.status, stderr: r.stderr.trim() };
}

/** Links made from inside: a symlink to /etc/passwd written through, a hardlink across mounts. */
export function links({ branchDir, outsideFile, tmp }) {
  const sym = join(branchDir, `made-link-${process.pid}`);
  return {
    symlinkToPasswd: code(() => {
      fs.symlinkSync('/etc/passwd', sym);
      fs.appendFileSync(sym, 'escaped');
    }),
    hardlinkIntoTmp: code(() => fs.linkSync(outsideFile, join(tmp, 'grabbed'))),
    hardlinkTmpToProject: code(() => {
      fs.writeFileSync(join(tmp, 'mine'), 'x');
      fs.linkSync(join(tmp, 'mine'), join(branchDir, 'from-tmp'));
    }),
    renameOut: code(() => {
      fs.writeFileSync(join(branchDir, 'to-move'), 'x');
      fs.renameSync(join(branchDir, 'to-move'), outsideFile);
    }),
  };
}

/**
 * Starts a double-forked, setsid'd shell daemon that holds `fifo` open for writing and appends
 * to `marker` every 50 ms, then returns (the workload ends while the daemon runs).
 */
export async function daemon({ fifo, marker, token }) {
  const script = `exec 3>"$1"; while :; do echo tick >&3; echo tick >> "$2"; sleep 0.05; done`;
  const child = spawn(
    'sh',
    ['-c', `(setsid sh -c '${script}' ${token} "$0" "$1" </dev/null >/dev/null 2>&1 &)`, fifo, marker],
    {
      stdio: 'ignore',
    },
  );
  await new Promise((r) => child.once('exit', r));
  // Bounded wait for the daemon's first tick: it runs once this returns.
  for (let i = 0; i < 400 && !(fs.existsSync(marker) && fs.statSync(marker).size > 0); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const running = fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .some((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token);
      } catch {
        return false;
      }
    });
  return { ticked: fs.existsSync(marker) && fs.statSync(marker).size > 0, running };
}

/** socket(AF_UNIX) connect to a host server's path; child-process IPC (socketpair) as the control. */
export async function unixAndIpc(socketPath) {
  const connect = await new Promise((resolve) => {
    const s = net.connect({ path: socketPath });
    s.once('connect', () => {
      s.end('hello');
      resolve('connected');
    });
    s.once('error', (err) => resolve(err.code));
  });
  const ipc = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', 'process.on("message", (m) => process.send(m + "-back"))'], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    child.once('message', (m) => {
      child.kill();
      resolve(m);
    });
    child.once('error', (err) => resolve(err.code));
    child.send('ping');
  });
  return { connect, ipc };
}

/** What a workload sees of an enclosing `branching run`'s helper socket (fd `fd`, inode `inode`). */
export function helperFd(fd, inode) {
  const fds = fs.readdirSync('/proc/self/fd').map((n) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${n}`);
    } catch {
      return null;
    }
  });
  return {
    env: process.env.BRANCHING_HELPER_FD ?? null,
    sameSocket: fds.filter((t) => t === inode).length,
    fds: fs.readdirSync('/proc/self/fd').map((n) => {
      try {
        return `${n}=${fs.readlinkSync(`/proc/self/fd/${n}`)}`;
      } catch {
        return n;
      }
    }),
    fdAt: code(() => fs.readlinkSync(`/proc/self/fd/${fd}`)),
    call: code(() => addon().helperCall(fd, `bind\t/\t${process.cwd()}\trw`)),
  };
}

// ---- host-side parents ----------------------------------------------------------------------

async function parent([project, token]) {
  const { BranchContext } = await import(join(repoRoot, 'dist', 'index.js'));
  // The project directory itself (no branch, so that nothing stays mounted on the host afterwards).
  const ctx = new BranchContext(
    [process.execPath, '-e', 'process.stdout.write("ready\\n"); setInterval(() => {}, 1e9)', token],
    { workspace: project, downgrade: false },
  );
  ctx.stdout.on('data', (d) => {
    if (String(d).includes('ready')) process.stdout.write(`${JSON.stringify({ launcher: ctx.pid })}\n`);
  });
  await new Promise(() => {}); // until SIGKILLed
}

async function outer([project]) {
  const fd = Number(process.env.BRANCHING_HELPER_FD);
  const inode = fs.readlinkSync(`/proc/self/fd/${fd}`);
  // Control: the helper is reachable from here, and refuses a mount outside its roots.
  const control = addon().helperCall(fd, 'bind\t/etc\t/etc\tro');
  const { BranchContext } = await import(join(repoRoot, 'dist', 'index.js'));
  let seen = null;
  let error = null;
  try {
    seen = await new BranchContext(
      { module: fileURLToPath(import.meta.url), export: 'helperFd', args: [fd, inode] },
      { workspace: project, downgrade: false },
    ).wait();
  } catch (err) {
    error = `${err.name}: ${err.message}`;
  }
  process.stdout.write(
    `${JSON.stringify({ fd, inode, uid: process.getuid(), control: JSON.parse(control), seen, error })}\n`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, ...args] = process.argv.slice(2);
  await (mode === 'parent' ? parent(args) : outer(args));
}
