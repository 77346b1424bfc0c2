// What the runner prepares before any worker starts: a run dir per branched root (under the core's
// state dir, never in the project), the workers' launcher spec, and one trial of that exact spec, so
// that a sandbox that cannot work here is a clear reason up front rather than a crashing worker.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import {
  commitStateRoot,
  commonAncestor,
  extraWritableDirs,
  LaunchSpec,
  launchOnce,
  locateLauncher,
  removeLayerDirSync,
  sandboxError,
  Workspace,
} from 'branching';
import { type BranchingOptions, parseOptions } from './options.ts';
import { type SandboxPlan, workersDir } from './sandbox.ts';

export interface TestLike {
  path: string;
  context: { config: any; moduleMap: { toJSON: () => unknown } };
}

export interface Plan extends SandboxPlan {
  launcher: string;
  spec: LaunchSpec;
}

/** The options of every project in this run; a project with invalid options is left to its environment to report. */
export function projectOptions(tests: readonly TestLike[]): BranchingOptions[] {
  const byConfig = new Map<string, BranchingOptions | null>();
  for (const test of tests) {
    const config = test.context.config;
    const key = config.id ?? config.rootDir;
    if (byConfig.has(key)) continue;
    try {
      byConfig.set(key, parseOptions(config.testEnvironmentOptions?.branching, config.rootDir));
    } catch {
      byConfig.set(key, null);
    }
  }
  return [...byConfig.values()].filter((o): o is BranchingOptions => o !== null);
}

/** Jest's transform caches, which workers write; created now, since a bind needs an existing dir. */
function cacheDirsOf(tests: readonly TestLike[]): Set<string> {
  const dirs = new Set<string>();
  for (const test of tests) {
    const dir = test.context.config.cacheDirectory;
    if (typeof dir !== 'string' || dir === '') continue;
    mkdirSync(dir, { recursive: true });
    dirs.add(realpathSync(dir));
  }
  return dirs;
}

/**
 * commit: true lands layers through the core's journal, whose state dir must sit on the mount that
 * shows the real tree. Inside a worker the root is covered by the layers (and is a mount of its
 * own), so the directory holding both the root and its state dir is bound, whole and before any
 * other mount is made, at a commit dir beside the run dir; the journal lives in that commit dir.
 */
function commitView(root: string, runDir: string): { top: string; dir: string; root: string; stateDir: string } {
  const top = commonAncestor(root, runDir);
  if (top === sep) {
    throw new Error(
      `commit: true needs a directory holding both ${root} and its state dir ${runDir} other than /; set BRANCHING_STATE_DIR on the same filesystem, next to the project`,
    );
  }
  const dir = `${runDir}-commit`;
  mkdirSync(join(dir, 'real'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, 'journal'), { mode: 0o700 });
  const view = join(dir, 'real');
  return { top, dir, root: join(view, relative(top, root)), stateDir: join(view, relative(top, dir), 'journal') };
}

/** Runs the launcher once with the workers' spec plus an overlay mount on scratch dirs. */
function preflight(launcher: string, spec: LaunchSpec, scratch: string): string | null {
  const dirs = ['lower', 'upper', 'work', 'merged'].map((d) => join(scratch, d));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const [lower, upper, work, merged] = dirs;
  try {
    const trial = spec.clone().overlay({ target: merged, lowers: [lower], upper, work });
    const { status, detail } = launchOnce(launcher, trial);
    if (status?.ok) return null;
    if (!status) return `the sandbox launcher gave no status (${detail})`;
    return sandboxError(status).message;
  } finally {
    removeLayerDirSync(scratch);
  }
}

function buildSpec(options: BranchingOptions[], runDirs: Record<string, string>, tests: readonly TestLike[]) {
  const spec = new LaunchSpec().userns().mountns();
  const network = !options.every((o) => o.network === false);
  if (!network) spec.netns();
  const realViews: SandboxPlan['realViews'] = {};
  const commitDirs: string[] = [];
  for (const o of options) {
    if (!o.commit || realViews[o.root]) continue;
    const view = commitView(o.root, runDirs[o.root]);
    // First: bound later, it would take along the roots' own mounts and not be one mount.
    spec.bind(view.top, join(view.dir, 'real'));
    commitDirs.push(join(view.dir, 'real'));
    realViews[o.root] = { root: view.root, stateDir: view.stateDir };
  }
  // Everything but the branched roots, their run dirs, Jest's caches, the commit views and
  // BRANCHING_WRITABLE is read-only in a worker.
  spec.rdonly('/');
  const writable = [
    ...commitDirs,
    ...Object.keys(runDirs),
    ...Object.values(runDirs),
    ...cacheDirsOf(tests),
    ...extraWritableDirs(),
  ];
  for (const dir of new Set(writable)) spec.writable(dir);
  // Each worker's layers and TMPDIR live in a tmpfs of its own (every worker has its own mount
  // namespace, so one path serves all): pushing and popping a layer costs a fraction of what it
  // does on a disk under write load, and nothing is left behind when a worker dies.
  for (const dir of Object.values(runDirs)) spec.tmpfs(workersDir(dir), 0o700);
  // A PID namespace with a fresh /proc: test code sees no host process (no /proc/<pid>/root).
  spec.pidns().helper([...Object.keys(runDirs), ...Object.values(runDirs)]);
  return { spec, network, realViews };
}

/** Everything the workers need, or the reason the sandbox cannot be used. */
export function planSandbox(tests: readonly TestLike[]): Plan | { reason: string } {
  if (process.env.BRANCHING_JEST_NO_SANDBOX === '1') return { reason: 'BRANCHING_JEST_NO_SANDBOX=1' };
  const { path: launcher, reason } = locateLauncher();
  if (!launcher) return { reason: reason ?? 'no sandbox launcher' };
  const options = projectOptions(tests);
  if (options.length === 0) return { reason: 'no project in this run has valid branching options' };
  const runDirs: Record<string, string> = {};
  for (const { root, commit } of options) {
    if (runDirs[root]) continue;
    // commit: true commits from inside the worker: its journal must sit beside the project
    const explicit = commit ? commitStateRoot(root) : undefined;
    const { stateDir } = new Workspace(root, { backend: 'clone', stateDir: explicit, onNotice: () => {} });
    runDirs[root] = realpathSync(mkdtempSync(join(stateDir, `jest-run-${process.pid}-`)));
    mkdirSync(workersDir(runDirs[root]), { mode: 0o700 });
  }
  const partial = { runDirs, realViews: {}, network: true };
  try {
    const plan: Plan = { launcher, runDirs, ...buildSpec(options, runDirs, tests) };
    const failure = preflight(launcher, plan.spec, join(Object.values(runDirs)[0], 'preflight'));
    if (failure) {
      removeRunDirs(plan);
      return { reason: failure };
    }
    return plan;
  } catch (err) {
    removeRunDirs(partial);
    throw err;
  }
}

/** Removes what workers left in the run dirs (and the commit dirs beside them), except layers kept by keep: 'on-failure'. */
export function removeRunDirs(plan: Pick<SandboxPlan, 'runDirs'>): void {
  for (const dir of Object.values(plan.runDirs)) {
    if (existsSync(`${dir}-commit`)) removeLayerDirSync(`${dir}-commit`);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (!existsSync(join(dir, name, 'KEPT'))) removeLayerDirSync(join(dir, name));
    }
    try {
      rmdirSync(dir);
    } catch {
      // kept layers are still inside
    }
  }
}
