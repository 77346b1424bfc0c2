import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { Workspace } from '../../src/index.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const CHILD = join(repoRoot, 'test/fixtures/scripts/commit-child.mjs');

function start(workspace: string, stateDir: string, mode: string, env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [CHILD, workspace, stateDir, mode], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env,
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => (await lines.next()).value as string;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, next, exited };
}

// Locks and leases are flock(2)-based with the native addon, and mkdir/pid-based without it: race both.
const LOCK_KINDS = [
  { label: 'flock (native addon)', env: process.env },
  { label: 'mkdir locks (no addon)', env: { ...process.env, BRANCHING_NO_NATIVE: '1' } },
];

describe('concurrent processes', () => {
  it.each(LOCK_KINDS)(
    'N processes committing siblings: exactly one wins, and no file is mixed or lost, with $label',
    async ({ env }) => {
      assertBuilt();
      const tmp = tempDir();
      const root = join(tmp.path, 'project');
      const stateDir = join(tmp.path, 'state');
      await fs.mkdir(root);
      const base: Record<string, string> = {};
      for (let i = 0; i < 20; i++) base[`shared${i}.txt`] = 'base\n';
      await writeTree(root, base);
      const N = 6;
      const racers = Array.from({ length: N }, (_, i) => start(root, stateDir, `race:${i}`, env));
      // Barrier: every sibling is created before anyone commits.
      for (const r of racers) expect(await r.next()).toBe('ready');
      for (const r of racers) r.child.stdin.write('go\n');
      const results = await Promise.all(racers.map((r) => r.next()));
      await Promise.all(racers.map((r) => r.exited));
      expect(results.filter((r) => r === 'committed')).toHaveLength(1);
      expect(results.filter((r) => r === 'conflict')).toHaveLength(N - 1);
      const winner = results.indexOf('committed');
      const tree = await snapshot(root);
      for (let i = 0; i < 20; i++) {
        expect(await fs.readFile(join(root, `shared${i}.txt`), 'utf8')).toBe(`from ${winner}\n`);
      }
      const onlyFiles = Object.keys(tree).filter((k) => k.startsWith('only-'));
      expect(onlyFiles).toEqual([`only-${winner}.txt`]);
      const ws = await Workspace.open(root, { stateDir, onNotice: () => {} });
      expect((await ws.gc()).reclaimedBranches).toBe(0);
      await ws.close();
      await tmp.cleanup();
    },
  );

  it('gc SIGKILLs what a dead owner left running in its branch before it reclaims the branch', async () => {
    assertBuilt();
    const tmp = tempDir();
    const root = join(tmp.path, 'project');
    const stateDir = join(tmp.path, 'state');
    await fs.mkdir(root);
    const victim = start(root, stateDir, 'die-open-daemon');
    const [word, pidText] = (await victim.next()).split(' ');
    expect(word).toBe('open');
    const daemon = Number(pidText);
    victim.child.kill('SIGKILL');
    await victim.exited;
    expect(() => process.kill(daemon, 0)).not.toThrow(); // it outlived its owner
    const ws = await Workspace.open(root, { stateDir, onNotice: () => {} });
    const report = await ws.gc();
    expect(report).toMatchObject({ reclaimedBranches: 1, killedProcesses: 1 });
    const state = (await fs.readFile(`/proc/${daemon}/stat`, 'utf8').catch(() => ') Z')).split(') ')[1];
    expect(state.startsWith('Z')).toBe(true); // dead (a zombie until the init reaps it) or gone
    await ws.close();
    await tmp.cleanup();
  });

  it('gc spares a process that only holds a copy of the dead branch mount (another mount namespace)', async () => {
    assertBuilt();
    const tmp = tempDir();
    const root = join(tmp.path, 'project');
    const stateDir = join(tmp.path, 'state');
    await fs.mkdir(root);
    const victim = start(root, stateDir, 'die-open');
    expect(await victim.next()).toBe('open');
    // A new mount namespace copies every mount there is now, the branch's included; it runs elsewhere.
    const bystander = spawn('unshare', ['-Urm', 'sleep', '600'], { cwd: tmp.path, stdio: 'ignore' });
    const ownNs = readlinkSync('/proc/self/ns/mnt');
    const until = Date.now() + 10_000;
    while (readlinkSync(`/proc/${bystander.pid}/ns/mnt`) === ownNs && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(readlinkSync(`/proc/${bystander.pid}/ns/mnt`)).not.toBe(ownNs);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const ws = await Workspace.open(root, { stateDir, onNotice: () => {} });
    const report = await ws.gc();
    expect(report).toMatchObject({ reclaimedBranches: 1, killedProcesses: 0 });
    expect(bystander.exitCode).toBeNull();
    bystander.kill('SIGKILL');
    await ws.close();
    await tmp.cleanup();
  });

  it('state left by a SIGKILLed process is detected on open and reclaimed by gc', async () => {
    assertBuilt();
    const tmp = tempDir();
    const root = join(tmp.path, 'project');
    const stateDir = join(tmp.path, 'state');
    await fs.mkdir(root);
    await writeTree(root, { 'a.txt': 'a' });
    const before = await snapshot(root);
    const victim = start(root, stateDir, 'die-open');
    expect(await victim.next()).toBe('open');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const notices: string[] = [];
    const ws = await Workspace.open(root, { stateDir, onNotice: (m) => notices.push(m) });
    expect(notices.join('\n')).toMatch(/1 branch\(es\) .* left by processes that died/);
    // The dead sibling's name is free again.
    const reuse = await ws.branch('left-open');
    await reuse.abort();
    const report = await ws.gc();
    expect(report.reclaimedBranches).toBe(1);
    const [layout] = await fs.readdir(stateDir);
    expect(await fs.readdir(join(stateDir, layout, 'branches'))).toEqual([]);
    expect(await fs.readdir(join(stateDir, layout, 'names', 'main')).catch(() => [])).toEqual([]);
    expect(await snapshot(root)).toEqual(before);
    await ws.close();
    await tmp.cleanup();
  });
});
