// vitest-environment-branching: `environment: 'branching'`.
//
// Two modes, chosen per worker:
// - sandbox: the worker was born through the plugin's pool inside a user+mount namespace where the
//   project root is a fresh overlay branch AT ITS OWN PATH (see pool.js). Per-test layers are
//   mounted over it through the privileged helper, by the hooks of setup.js.
// - clone (fallback): anything else (environment used alone, threads, no user namespaces, macOS).
//   Each test file gets a clone branch of the root and, where the pool allows it, its cwd there.
//   A one-time notice says exactly what that does and does not isolate.
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { core } from './core.js';
import { applyUpper, copyLayer, forceRemove } from './fsops.js';
import { resolveOptions } from './options.js';
import { sandboxInfo, workerState } from './state.js';

/**
 * @typedef {object} BranchInfo
 * @property {'sandbox' | 'clone'} mode  sandbox: the root itself is the branch; clone: a copy elsewhere
 * @property {string} path  where the branch is: the project root (sandbox) or the clone's directory
 * @property {string} root  the real project root
 * @property {string | null} test  the current test's name when it has its own nested branch
 * @property {() => void} commit  land the current test's writes (or, without per-test branches, the
 *   file's) in the real tree when it passes
 */

/** The branch the running test sees. Throws when the test does not run in the branching environment. */
export function currentBranch() {
  const branch = workerState().branch;
  if (!branch) {
    throw new Error(
      "currentBranch(): this test does not run in the branching environment (set environment: 'branching')",
    );
  }
  return branch;
}

const environment = {
  name: 'branching',
  viteEnvironment: 'ssr',
  async setup(_global, environmentOptions) {
    const options = resolveOptions(environmentOptions?.branching);
    const info = sandboxInfo();
    return info ? setupSandboxed(options, info) : setupClone(options);
  },
  setupVM() {
    throw new core.ArgumentError(
      "vitest-environment-branching does not support the vmThreads and vmForks pools: use pool 'forks' " +
        "(or plugins: [branching()] from 'vitest-environment-branching/plugin', which sets its sandbox pool)",
      { argument: 'pool' },
    );
  },
};
export default environment;

// ---------------------------------------------------------------------------------------------
// Sandbox mode

function setupSandboxed(options, info) {
  const state = workerState();
  const helper = core.HelperClient.fromEnv();
  const perTest = options.perTest && helper !== null;
  let fileCommit = options.commit;
  let layer = null;
  let layers = 0;
  state.failed = false;

  const branch = {
    mode: 'sandbox',
    path: info.root,
    root: info.root,
    get test() {
      return layer?.name ?? null;
    },
    commit() {
      if (layer) layer.commit = true;
      else fileCommit = true;
    },
  };
  state.branch = branch;

  if (perTest) {
    state.beforeTest = (ctx) => {
      if (layer) {
        // test.concurrent: layers are mounts over one path and cannot interleave, so a test that
        // starts while another runs shares that one's layer (and its rollback).
        sharedNotice(ctx.task.name);
        return;
      }
      const dir = join(info.dir, 't', String(++layers));
      const upper = join(dir, 'upper');
      const work = join(dir, 'work');
      mkdirSync(upper, { recursive: true });
      mkdirSync(work);
      const cwd = process.cwd();
      // `dir` is on the worker's in-memory scratch (a tmpfs), where a layer costs ~0.2 ms.
      helper.mountOverlay({ target: info.root, lowers: [info.root], upper, work });
      // The cwd still points into the layer below; enter the new one.
      process.chdir(cwd);
      layer = { task: ctx.task, name: ctx.task.name, dir, upper, cwd, commit: options.commit };
    };
    state.afterTest = (ctx) => {
      if (!layer || layer.task !== ctx.task) return;
      const done = layer;
      layer = null;
      helper.unmount(info.root);
      process.chdir(done.cwd);
      const failed = ctx.task.result?.state === 'fail';
      if (failed && options.keep === 'on-failure') keepChanges(info, done.upper, ctx.task);
      else if (!failed && done.commit) applyUpper(done.upper, info.realView);
      forceRemove(done.dir);
    };
  }

  return {
    teardown() {
      state.branch = null;
      state.beforeTest = null;
      state.afterTest = null;
      if (state.failed && options.keep === 'on-failure' && !perTest) {
        // The file's layer is still mounted: the pool moves it to the kept place once the worker has exited.
        const kept = keptDir(info, basename(state.file ?? 'file'));
        writeFileSync(join(info.dir, 'keep'), kept);
        console.warn(
          `branching: kept the branch of ${state.file}: the files its tests wrote are in ${join(kept, 'changes')}`,
        );
      } else if (!state.failed && fileCommit) {
        applyUpper(join(info.dir, 'upper'), info.realView);
      }
    },
  };
}

let sharedNoticeShown = false;
function sharedNotice(name) {
  if (sharedNoticeShown) return;
  sharedNoticeShown = true;
  console.warn(
    `branching: "${name}" runs concurrently with another test of this file, so it shares that test's branch (per-test branches need tests that run one at a time)`,
  );
}

function keptDir(info, label) {
  const safe = label.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 80);
  const base = join(info.stateDir, 'vitest-kept');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${safe}-`));
}

function keepChanges(info, upper, task) {
  const kept = keptDir(info, `${basename(task.file?.filepath ?? '')}-${task.name}`);
  const deleted = copyLayer(upper, join(kept, 'changes'));
  if (deleted.length > 0) writeFileSync(join(kept, 'deleted.txt'), `${deleted.join('\n')}\n`);
  console.warn(
    `branching: kept the branch of failing test "${task.name}": the files it wrote are in ${join(kept, 'changes')}` +
      (deleted.length > 0 ? `, the paths it deleted are listed in ${join(kept, 'deleted.txt')}` : ''),
  );
}

// ---------------------------------------------------------------------------------------------
// Clone mode (no namespace sandbox)

async function setupClone(options) {
  const state = workerState();
  const root = realpathSync(options.root ?? process.env.BRANCHING_VITEST_ROOT ?? process.cwd());
  const ws = new core.Workspace(root, { backend: 'clone', onNotice: () => {} });
  const name = `vitest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const branch = await ws.branch(name, { onSuccess: null, onError: null });
  const canChdir = isMainThread;
  const oldCwd = process.cwd();
  const inRoot = relative(root, oldCwd);
  if (canChdir && !inRoot.startsWith('..')) process.chdir(join(branch.path, inRoot));
  const oldTmp = process.env.TMPDIR;
  const fileTmp = mkdtempSync(join(tmpdir(), 'branching-vitest-'));
  process.env.TMPDIR = fileTmp;
  state.failed = false;
  let fileCommit = options.commit;
  state.branch = {
    mode: 'clone',
    path: branch.path,
    root,
    test: null,
    commit() {
      fileCommit = true;
    },
  };
  state.beforeTest = null;
  state.afterTest = null;
  noticeOnce(ws.stateDir, cloneNotice({ root, canChdir, options, hooks: state.hooks }));

  return {
    async teardown() {
      state.branch = null;
      if (canChdir) process.chdir(oldCwd);
      if (oldTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = oldTmp;
      rmSync(fileTmp, { recursive: true, force: true });
      if (state.failed && options.keep === 'on-failure') {
        // Left open on purpose: `branching gc` reclaims it once this process is gone.
        console.warn(`branching: kept the branch of a failing test file at ${branch.path}`);
      } else if (!state.failed && fileCommit) {
        await branch.commit();
      } else {
        await branch.abort();
      }
    },
  };
}

function cloneNotice({ root, canChdir, options, hooks }) {
  const why =
    process.env.BRANCHING_VITEST_FALLBACK ??
    "the test files were not started through the sandbox pool (plugins: [branching()] from 'vitest-environment-branching/plugin')";
  const lines = [
    `branching: no namespace sandbox (${why}).`,
    `  Each test file gets its own copy of ${root} (clone backend) and its own TMPDIR instead.`,
    canChdir
      ? '  Isolated: writes to relative paths (the cwd is the copy) and to os.tmpdir().'
      : '  Isolated: writes to os.tmpdir() only; worker threads cannot chdir, so relative writes reach the real tree (use the forks pool).',
    '  NOT isolated: writes to absolute paths, or paths built from __dirname / import.meta.url: they reach the real tree.',
  ];
  if (options.perTest) lines.push('  No per-test rollback: tests of one file share its copy.');
  if (!options.network) lines.push('  network: false needs the sandbox: the network is not isolated.');
  if (options.keep === 'on-failure' && !hooks) {
    lines.push("  keep: 'on-failure' needs setupFiles: ['vitest-environment-branching/setup'] to see failures.");
  }
  return lines.join('\n');
}

/** Prints `message` once per Vitest run (workers are separate processes: a marker file decides). */
function noticeOnce(stateDir, message) {
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

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err?.code === 'EPERM';
  }
}
