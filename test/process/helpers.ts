import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Workspace } from '../../src/core/workspace.ts';
import { probeSandbox } from '../../src/sandbox/launcher.ts';
import { repoRoot } from '../helpers/build.ts';

export const targets = join(repoRoot, 'test', 'fixtures', 'process', 'targets.mjs');

const probe = probeSandbox();
/** What BranchContext needs for its sandbox: the launcher, user + mount + PID namespaces. */
export const sandbox = {
  available: probe.launcher !== null && probe.userns && probe.pidns,
  netns: probe.netns,
  reason: probe.reason ?? 'unavailable',
};

export interface Mode {
  name: 'plain' | 'sandbox';
  sandbox: boolean;
  available: boolean;
  reason: string;
}

export const modes: Mode[] = [
  { name: 'plain', sandbox: false, available: true, reason: '' },
  { name: 'sandbox', sandbox: true, available: sandbox.available, reason: sandbox.reason },
];

export interface Project {
  root: string;
  dir: string;
  ws: Workspace;
  cleanup(): void;
}

/** A small project in a fresh temp dir, with its workspace. */
export function makeProject(name = 'project'): Project {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'branching-process-')));
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), '{"name":"fixture","type":"module"}\n');
  writeFileSync(
    join(dir, 'whoami.mjs'),
    'export default () => ({ dirname: import.meta.dirname, cwd: process.cwd() });\n',
  );
  const ws = new Workspace(dir, { onNotice: () => {} });
  return {
    root,
    dir,
    ws,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Resolves with everything read once `stream` has produced `marker`. */
export function readUntil(stream: Readable | null, marker: string): Promise<string> {
  if (!stream) throw new Error('no stream');
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes(marker)) {
        stream.off('data', onData);
        resolve(text);
      }
    };
    stream.on('data', onData);
    stream.once('end', () => reject(new Error(`stream ended before ${JSON.stringify(marker)}: ${text}`)));
  });
}

/** Host pids whose command line contains `token` (zombies have none, so they are not listed). */
export function pidsWithToken(token: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(token)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** 'gone', or the state letter from /proc/<pid>/stat ('Z' for a zombie). */
export function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return 'gone';
  }
}
