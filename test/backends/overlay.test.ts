import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../../src/addon.ts';
import { probeBackend } from '../../src/backends/factory.ts';
import { mountsUnder, type OverlayBackend, type OverlayHandle } from '../../src/backends/overlay.ts';
import { type Branch, BranchStaleError, ConflictError, Workspace } from '../../src/index.ts';
import { overlayRequiredHere, skipUnless } from '../helpers/backends.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const probe = probeBackend('overlay', process.cwd());
const isRoot = process.getuid?.() === 0;
const CLI = join(repoRoot, 'dist', 'cli.js');
const OWNER = join(repoRoot, 'test', 'fixtures', 'scripts', 'overlay-owner.mjs');
const CYCLES = Number(process.env.BRANCHING_LEAK_CYCLES ?? 1000);

const handleOf = (b: Branch) => (b as unknown as { handle: OverlayHandle }).handle;

/** The lowerdir list of the overlay mounted at `target`, from this namespace's mountinfo. */
function lowersOf(target: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] | null {
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] !== target) continue;
    const options = fields[fields.indexOf('-') + 3] ?? '';
    const lower = options.split(',').find((o) => o.startsWith('lowerdir='));
    return lower ? lower.slice('lowerdir='.length).split(':') : [];
  }
  return null;
}

function childPids(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
      } catch {
        return false;
      }
    });
}

function processesWith(marker: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });
}

/** A bounded wait (10 s) for processes already on their way out: the kernel reaps asynchronously. */
async function untilGone(list: () => string[]): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  let left = list();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setImmediate(r));
    left = list();
  }
  return left;
}

async function firstLine(child: import('node:child_process').ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line;
}

describe.skipIf(skipUnless(probe.available, 'the overlay backend', probe.reason, overlayRequiredHere()))(
  'the overlay backend',
  () => {
    let tmp: ReturnType<typeof tempDir>;
    let root: string;
    let stateDir: string;
    let ws: Workspace;

    beforeEach(async () => {
      tmp = tempDir('branching-ovl-');
      root = join(tmp.path, 'project');
      stateDir = join(tmp.path, 'state');
      await writeTree(root, {
        'README.md': 'readme\n',
        'src/a.js': 'a\n',
        'src/deep/b.js': 'b\n',
        'gone/x.txt': 'x\n',
        'replaced/old.txt': 'old\n',
      });
      ws = new Workspace(root, { backend: 'overlay', stateDir, onNotice: () => {} });
    });

    afterEach(async () => {
      await ws.close();
      await tmp.cleanup();
    });

    it('mounts each branch at <branch dir>/merged; a nested branch is one more layer, not a copy', async () => {
      const a = await ws.branch('a');
      const b = await a.branch('b');
      const c = await b.branch('c');
      expect(a.path).toBe(join(handleOf(a).dir, 'merged'));
      for (const br of [a, b, c]) expect(br.path.startsWith('/proc/')).toBe(false);
      expect(lowersOf(a.path)).toEqual([root]);
      expect(lowersOf(b.path)).toEqual([handleOf(a).upper, root]);
      expect(lowersOf(c.path)).toEqual([handleOf(b).upper, handleOf(a).upper, root]);
      // Nothing was copied: the new layers are empty, yet the whole tree shows through.
      expect(readdirSync(handleOf(c).upper)).toEqual([]);
      expect(await snapshot(c.path)).toEqual(await snapshot(root));
      await fs.writeFile(join(a.path, 'README.md'), 'from a\n');
      expect(readdirSync(handleOf(a).upper)).toEqual(['README.md']);
      await a.abort();
      for (const br of [a, b, c]) expect(lowersOf(br.path)).toBeNull();
    });

    it('reads the upper dir: whiteouts delete, opaque dirs replace, files are hard-linked into main', async () => {
      const b = await ws.branch('format');
      const mounter = (ws.backend as OverlayBackend).mounter;
      await fs.writeFile(join(b.path, 'src/a.js'), 'changed\n');
      await fs.writeFile(join(b.path, 'new.txt'), 'new\n');
      await fs.rm(join(b.path, 'gone'), { recursive: true });
      await fs.rm(join(b.path, 'replaced'), { recursive: true });
      await fs.mkdir(join(b.path, 'replaced'));
      await fs.writeFile(join(b.path, 'replaced/fresh.txt'), 'fresh\n');
      await fs.symlink('src/a.js', join(b.path, 'link'));
      const upper = handleOf(b).upper;
      const whiteout = lstatSync(join(upper, 'gone'));
      expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
      expect(native()!.getxattr(join(upper, 'replaced'), `${mounter.xattrPrefix}opaque`)?.toString()).toBe('y');
      const changes = await ws.backend.changes(handleOf(b), { id: 'main', path: root });
      const tree = changes.find((c) => c.path === 'replaced');
      expect(changes).toEqual(
        expect.arrayContaining([
          { op: 'delete', path: 'gone' },
          { op: 'file', path: 'new.txt', source: join(upper, 'new.txt') },
          { op: 'file', path: 'src/a.js', source: join(upper, 'src/a.js') },
          { op: 'mkdir', path: 'src', mode: 0o755 },
          { op: 'symlink', path: 'link', target: 'src/a.js' },
        ]),
      );
      expect(tree?.op).toBe('tree');
      expect(changes).toHaveLength(6);
      const inode = lstatSync(join(upper, 'src/a.js')).ino;
      const expected = await snapshot(b.path);
      await b.commit();
      expect(await snapshot(root)).toEqual(expected);
      // Zero copy: the committed file is the upper inode, without overlay bookkeeping.
      expect(lstatSync(join(root, 'src/a.js')).ino).toBe(inode);
      expect(
        native()!
          .listxattr(join(root, 'src/a.js'))
          .filter((n) => n.includes('overlay.')),
      ).toEqual([]);
    });

    it('directory rename: redirect_dir as real root, EXDEV unprivileged (mv copies); both commit', async () => {
      const b = await ws.branch('rename');
      const mounter = (ws.backend as OverlayBackend).mounter;
      const renamed = fs.rename(join(b.path, 'src'), join(b.path, 'lib'));
      if (mounter.redirects) {
        await renamed;
      } else {
        await expect(renamed).rejects.toMatchObject({ code: 'EXDEV' });
        execFileSync('mv', [join(b.path, 'src'), join(b.path, 'lib')]);
      }
      const expected = await snapshot(b.path);
      expect(Object.keys(expected)).toContain('lib/deep/b.js');
      expect(Object.keys(expected)).not.toContain('src');
      await b.commit();
      expect(await snapshot(root)).toEqual(expected);
    });

    it('commits into a parent branch through its merged mount, leaving no staging behind', async () => {
      const parent = await ws.branch('parent');
      const child = await parent.branch('child');
      await fs.rm(join(child.path, 'src'), { recursive: true }); // a lower-origin directory of the parent
      await fs.writeFile(join(child.path, 'from-child.txt'), 'c\n');
      await child.commit();
      expect(readdirSync(parent.path).sort()).toEqual(['README.md', 'from-child.txt', 'gone', 'replaced']);
      expect(readdirSync(handleOf(parent).upper).sort()).toEqual(['from-child.txt', 'src']);
      const before = await snapshot(root);
      expect(before['from-child.txt']).toBeUndefined();
      await parent.commit();
      expect(readdirSync(root).sort()).toEqual(['README.md', 'from-child.txt', 'gone', 'replaced']);
    });

    it('siblings of a committed branch are stale: commit and branch refuse, abort unmounts', async () => {
      const winner = await ws.branch('winner');
      const loser = await ws.branch('loser');
      const parent = await ws.branch('parent');
      const x = await parent.branch('x');
      const y = await parent.branch('y');
      await fs.writeFile(join(winner.path, 'w.txt'), 'w');
      await winner.commit();
      await expect(loser.commit()).rejects.toBeInstanceOf(ConflictError);
      await expect(loser.branch('deeper')).rejects.toBeInstanceOf(BranchStaleError);
      await x.commit();
      await expect(y.commit()).rejects.toBeInstanceOf(ConflictError);
      for (const stale of [loser, y]) {
        const path = stale.path;
        await stale.abort();
        expect(stale.state).toBe('aborted');
        expect(lowersOf(path)).toBeNull();
      }
      await parent.abort();
      expect(mountsUnder(stateDir)).toEqual([]);
    });

    it(`${CYCLES} create/abort cycles leave no mount, directory, fd or process behind`, async () => {
      const warm = await ws.branch('warm');
      await warm.abort();
      // Other test files run in parallel (as root, in the same mount namespace): count only our mounts.
      const ours = () =>
        readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .filter((line) => line.includes(ws.stateDir) || line.includes(ws.path));
      const mounts = ours();
      const fds = readdirSync('/proc/self/fd').length;
      const children = childPids();
      for (let i = 0; i < CYCLES; i++) {
        const b = await ws.branch(`cycle${i % 7}`);
        await b.abort();
      }
      expect(ours()).toEqual(mounts);
      expect(readdirSync(join(ws.stateDir, 'branches'))).toEqual([]);
      expect(readdirSync('/proc/self/fd').length).toBe(fds);
      expect(childPids()).toEqual(children);
    }, 300_000);

    it('a process SIGKILLed inside `branching run`: its mounts vanish with the namespace, gc reclaims the dirs', async () => {
      assertBuilt();
      const marker = `BRANCHING_TEST_MARKER=${Math.random().toString(36).slice(2)}`;
      const env = { ...process.env, BRANCHING_STATE_DIR: stateDir, [marker.split('=')[0]]: marker.split('=')[1] };
      const child = spawn(process.execPath, [CLI, 'run', '--allow', tmp.path, '--', process.execPath, OWNER, root], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const info = JSON.parse(await firstLine(child)) as { pid: number; mntns: string; paths: string[] };
      // The branches are mounted in the owner's namespace (and not in ours, unless we share it).
      const theirs = readFileSync(`/proc/${info.pid}/mountinfo`, 'utf8');
      expect(lowersOf(info.paths[0], theirs)).toEqual([root]);
      expect(lowersOf(info.paths[1], theirs)).toHaveLength(2);
      const exited = once(child, 'exit');
      process.kill(info.pid, 'SIGKILL');
      const [, signal] = (await exited) as [number | null, string | null];
      expect(signal).toBe('SIGKILL'); // `branching run` dies the way its command did
      expect(await untilGone(() => processesWith(marker))).toEqual([]);
      const sameNs = readdirSync('/proc').filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/ns/mnt`) === info.mntns;
        } catch {
          return false;
        }
      });
      if (info.mntns !== readlinkSync('/proc/self/ns/mnt')) expect(sameNs).toEqual([]);
      expect(mountsUnder(stateDir)).toEqual([]);
      const gc = spawnSync(process.execPath, [CLI, 'gc', '--json', root], { env, encoding: 'utf8' });
      expect(gc.status, gc.stderr).toBe(0);
      expect(JSON.parse(gc.stdout).workspaces[0].report).toMatchObject({ reclaimedBranches: 2 });
      expect(readdirSync(join(ws.stateDir, 'branches'))).toEqual([]);
      expect(await snapshot(root)).not.toHaveProperty('unsaved.txt');
    });

    // Only real root mounts in the host namespace without `branching run`; nobody else can leave such mounts.
    it.runIf(isRoot)('as root without `branching run`, gc unmounts what a SIGKILLed owner left mounted', async () => {
      assertBuilt();
      const env = { ...process.env, BRANCHING_STATE_DIR: stateDir };
      const child = spawn(process.execPath, [OWNER, root], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      const info = JSON.parse(await firstLine(child)) as { pid: number; paths: string[] };
      const exited = once(child, 'exit');
      process.kill(info.pid, 'SIGKILL');
      await exited;
      expect(mountsUnder(stateDir).sort()).toEqual([...info.paths].sort());
      const gc = spawnSync(process.execPath, [CLI, 'gc', '--json', root], { env, encoding: 'utf8' });
      expect(gc.status, gc.stderr).toBe(0);
      expect(JSON.parse(gc.stdout).workspaces[0].report).toMatchObject({ reclaimedBranches: 2 });
      expect(mountsUnder(stateDir)).toEqual([]);
      expect(readdirSync(join(ws.stateDir, 'branches'))).toEqual([]);
    });
  },
);

describe('overlay where it is not available', () => {
  it('outside root and `branching run`: auto falls back to clone (reported), overlay throws a MountError saying how', async () => {
    assertBuilt();
    const tmp = tempDir('branching-ovl-plain-');
    try {
      const root = join(tmp.path, 'project');
      await writeTree(root, { 'a.txt': 'a\n' });
      const env: NodeJS.ProcessEnv = { ...process.env, BRANCHING_STATE_DIR: join(tmp.path, 'state') };
      delete env.BRANCHING_HELPER_FD;
      delete env.BRANCHING_HELPER_ROOTS;
      let command = process.execPath;
      let args = [OWNER, root, 'probe'];
      if (isRoot) {
        // A plain unprivileged process: drop to nobody.
        for (const p of [tmp.path, root, join(root, 'a.txt')]) chownSync(p, 65534, 65534);
        chmodSync(tmp.path, 0o755);
        args = ['--reuid=65534', '--regid=65534', '--clear-groups', '--', command, ...args];
        command = 'setpriv';
      }
      const result = spawnSync(command, args, { env, encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      const out = JSON.parse(result.stdout) as {
        fstype: string;
        notices: string[];
        forced: { name: string; code: string; message: string } | null;
      };
      expect(out.fstype).toBe('clone');
      expect(out.notices.join('\n')).toContain('branching run -- <command>');
      expect(out.forced).toMatchObject({ name: 'MountError', code: 'ERR_BRANCHING_BACKEND_UNAVAILABLE' });
      expect(out.forced?.message).toContain('branching run');
    } finally {
      await tmp.cleanup();
    }
  });
});
