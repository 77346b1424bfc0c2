// Clone mode (no namespace sandbox): the environment used alone, the threads pool, or a machine
// without user namespaces. Each test file gets a clone branch of the root and its own TMPDIR and,
// where the process can chdir, its cwd there. A one-time notice says exactly what that does and
// does not isolate: never a silent downgrade.
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { core } from './core.ts';
import type { ResolvedOptions } from './options.ts';
import { fallbackRefused } from './options.ts';
import type { BranchInfo, Session } from './state.ts';
import { workerState } from './state.ts';

const DEFAULT_WHY =
  "the test files were not started through the sandbox pool (plugins: [branching()] from 'vitest-environment-branching/plugin')";

export async function openCloneSession(options: ResolvedOptions): Promise<Session> {
  const why =
    process.env.BRANCHING_VITEST_FALLBACK ??
    (isMainThread ? DEFAULT_WHY : 'the threads pool runs test files in worker threads, which cannot enter a namespace');
  if (fallbackRefused(options)) {
    throw new core.NamespaceError(
      `branching: refusing to run without the namespace sandbox (fallback: false or BRANCHING_NO_FALLBACK=1): ${why}`,
    );
  }
  const root = realpathSync(options.root ?? process.env.BRANCHING_VITEST_ROOT ?? process.cwd());
  // node_modules is shared, not copied per file: hundreds of MB that tests only read.
  const ws = new core.Workspace(root, { backend: 'clone', shared: ['node_modules'], onNotice: () => {} });
  const name = `vitest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const branch = await ws.branch(name, { onSuccess: null, onError: null });
  const canChdir = isMainThread;
  const oldCwd = process.cwd();
  const inRoot = relative(root, oldCwd);
  if (canChdir && !inRoot.startsWith('..')) process.chdir(join(branch.path, inRoot));
  const oldTmp = process.env.TMPDIR;
  const fileTmp = mkdtempSync(join(tmpdir(), 'branching-vitest-'));
  process.env.TMPDIR = fileTmp;
  let fileCommit = options.commit;
  const info: BranchInfo = {
    mode: 'clone',
    path: branch.path,
    root,
    test: null,
    commit() {
      fileCommit = true;
    },
  };
  noticeOnce(ws.stateDir, cloneNotice({ root, why, canChdir, options }));

  return {
    branch: info,
    beforeTest() {},
    async afterTest() {},
    async endFile() {
      if (canChdir) process.chdir(oldCwd);
      if (oldTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = oldTmp;
      rmSync(fileTmp, { recursive: true, force: true });
      const failed = workerState().failed;
      if (failed && options.keep === 'on-failure') {
        // Left open on purpose: `branching gc` reclaims it once this process is gone.
        console.warn(`branching: kept the branch of a failing test file at ${branch.path}`);
      } else if (!failed && fileCommit) {
        await branch.commit();
      } else {
        await branch.abort();
      }
    },
  };
}

function cloneNotice(o: { root: string; why: string; canChdir: boolean; options: ResolvedOptions }): string {
  const lines = [
    `branching: no namespace sandbox (${o.why}).`,
    `  Each test file gets its own copy of ${o.root} (clone backend) and its own TMPDIR instead.`,
    o.canChdir
      ? '  Isolated: writes to relative paths (the cwd is the copy) and to os.tmpdir().'
      : '  Isolated: writes to os.tmpdir() only; worker threads cannot chdir, so relative writes reach the real tree (use the forks pool).',
    '  NOT isolated: writes to absolute paths, or paths built from __dirname / import.meta.url: they reach the real tree;',
    '  nor writes into node_modules, which the copies share with the real tree.',
  ];
  if (o.options.perTest) lines.push('  No per-test rollback: tests of one file share its copy.');
  if (!o.options.network) lines.push('  network: false needs the sandbox: the network is not isolated.');
  if (o.options.keep === 'on-failure' && !workerState().hooks) {
    lines.push("  keep: 'on-failure' needs setupFiles: ['vitest-environment-branching/setup'] to see failures.");
  }
  return lines.join('\n');
}

/** Prints `message` once per Vitest run (workers are separate processes: a marker file decides). */
function noticeOnce(stateDir: string, message: string): void {
  if (process.env.BRANCHING_QUIET === '1') return;
  const runPid = isMainThread ? process.ppid : process.pid;
  const dir = join(stateDir, 'vitest-notices');
  try {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) if (!isAlive(Number(name))) rmSync(join(dir, name), { force: true });
    writeFileSync(join(dir, String(runPid)), '', { flag: 'wx' });
  } catch {
    return; // another worker of this run said it already
  }
  process.stderr.write(`${message}\n`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException)?.code === 'EPERM';
  }
}
