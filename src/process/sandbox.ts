/**
 * The execution strategy of a BranchContext: a sandbox through the native
 * launcher (user + mount + PID namespaces, optionally a network namespace),
 * or a plain child process when namespaces are unavailable (a downgrade that
 * is reported, or a NamespaceError with `downgrade: false`).
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ArgumentError, isBranchingError, NamespaceError } from '../base/errors.ts';
import { LaunchSpec, launchEnv, probeSandbox, readLaunchStatus } from '../sandbox/launcher.ts';
import type { NormalizedOptions } from './options.ts';

export interface Plan {
  sandboxed: boolean;
  /** Why the context runs without a sandbox; null when sandboxed. */
  downgradeReason: string | null;
  launcher: string | null;
  spec: LaunchSpec | null;
}

/** Why a sandbox with these options cannot be had here, or null. */
function unavailableReason(options: NormalizedOptions): string | null {
  const probe = probeSandbox();
  if (!probe.launcher) return probe.reason ?? 'the sandbox launcher is unavailable';
  if (!probe.userns) return probe.reason ?? 'user namespaces are unavailable';
  if (!probe.pidns) return 'PID namespaces are unavailable, so abort could not reach every process';
  if (!options.network && !probe.netns)
    return 'network namespaces are unavailable, so the network cannot be turned off';
  return null;
}

export function buildSpec(options: NormalizedOptions, tmpDir: string): LaunchSpec {
  const spec = new LaunchSpec().userns().mountns();
  if (!options.network) spec.netns();
  // The branch appears at the project's own path: absolute paths, __dirname,
  // module resolution and the directory's name are those of the project.
  if (options.source !== options.mountAt) spec.bind(options.source, options.mountAt);
  if (options.readOnlyRoot) {
    spec.rdonly('/').writable(options.mountAt).writable(tmpDir);
    for (const dir of options.writable) spec.writable(dir);
  }
  // Last, so that its fresh /proc is mounted over the (read-only) old one.
  spec.pidns();
  spec.chdir(options.mountAt);
  return spec;
}

/** Decides how to run. Throws NamespaceError when the sandbox is missing and `downgrade` is false. */
export function planExecution(options: NormalizedOptions, tmpDir: string): Plan {
  if (!options.sandbox) return { sandboxed: false, downgradeReason: null, launcher: null, spec: null };
  let reason = unavailableReason(options);
  let spec: LaunchSpec | null = null;
  if (reason === null) {
    try {
      spec = buildSpec(options, tmpDir);
    } catch (err) {
      if (!isBranchingError(err, 'ArgumentError')) throw err;
      reason = `a path cannot be passed to the launcher: ${err.message}`;
    }
  }
  if (reason !== null) {
    if (!options.downgrade) throw new NamespaceError(`cannot sandbox the process: ${reason}`);
    return { sandboxed: false, downgradeReason: reason, launcher: null, spec: null };
  }
  return { sandboxed: true, downgradeReason: null, launcher: probeSandbox().launcher, spec };
}

/** `p` as a host path: the child's view of the workspace (`mountAt`) is `source` on the host. */
export function hostPath(p: string, options: NormalizedOptions): string {
  const rel = relative(options.mountAt, p);
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return join(options.source, rel);
  return p;
}

/** `p` as the child sees it. */
export function childPath(p: string, options: NormalizedOptions, sandboxed: boolean): string {
  if (!sandboxed) return p;
  const rel = relative(options.source, p);
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return join(options.mountAt, rel);
  return p;
}

/**
 * The absolute program path, resolved as the child will see it (relative
 * names against its workspace), checked on the host. Throws ArgumentError.
 */
export function resolveProgram(
  file: string,
  options: NormalizedOptions,
  sandboxed: boolean,
  pathEnv: string | undefined,
): string {
  const cwd = sandboxed ? options.mountAt : options.source;
  const executable = (candidate: string) => {
    try {
      accessSync(sandboxed ? hostPath(candidate, options) : candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (file.includes(sep)) {
    const candidate = resolve(cwd, file);
    if (executable(candidate)) return candidate;
    throw new ArgumentError(`target[0]: not an executable file: ${file}`, { argument: 'target', path: candidate });
  }
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = resolve(cwd, dir, file);
    if (executable(candidate)) return candidate;
  }
  throw new ArgumentError(`target[0]: command not found on PATH: ${file}`, { argument: 'target' });
}

export interface Started {
  child: ChildProcess;
  /** Resolves once the workload runs (at once without a sandbox); rejects with the launcher's setup error. */
  status: Promise<void>;
}

/**
 * Starts `program args` either through the launcher or directly. The child
 * is always a process-group leader (detached), so a TERM can reach the group.
 */
export function startProcess(
  plan: Plan,
  program: string,
  args: string[],
  options: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    stdio: Exclude<StdioOptions, string>;
    /** Wraps the process we spawn (the launcher, or the target itself), e.g. to join a cgroup first. */
    wrap?: (program: string, args: string[]) => { program: string; args: string[] };
  },
): Started {
  const stdio = [...options.stdio];
  const wrap = options.wrap ?? ((p: string, a: string[]) => ({ program: p, args: a }));
  if (!plan.sandboxed || !plan.launcher || !plan.spec) {
    const w = wrap(program, args);
    const child = spawn(w.program, w.args, { cwd: options.cwd, env: options.env, stdio, detached: true });
    return { child, status: Promise.resolve() };
  }
  const statusFd = stdio.length;
  stdio.push('pipe');
  const env = { ...options.env, ...launchEnv(plan.spec, program, statusFd) };
  const w = wrap(plan.launcher, args);
  const child = spawn(w.program, w.args, { cwd: options.cwd, env, stdio, detached: true });
  const status = readLaunchStatus(child, statusFd).then(() => undefined);
  status.catch(() => {}); // callers that only watch the exit code must not see an unhandled rejection
  return { child, status };
}
