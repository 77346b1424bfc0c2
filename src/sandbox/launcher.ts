/**
 * The TypeScript side of native/launcher.c: locating the built launcher, a
 * typed and validated spec builder, a cached feature probe, and
 * `spawnSandboxed`, which runs a command through the launcher and reports
 * setup failures as NamespaceError / MountError.
 *
 * Spec wire format (BRANCHING_LAUNCH_SPEC): one operation per line, fields
 * separated by TAB. Paths are absolute and contain no TAB, NL, NUL or ','
 * (the overlay option separator); lower layers and helper roots are joined by
 * ':' and so cannot contain one.
 */
import { type ChildProcess, type StdioOptions, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { ArgumentError, isBranchingError, NamespaceError } from '../base/errors.ts';
import { removeLayerDirSync } from '../base/layer-dir.ts';
import {
  checkSpecPath,
  type LaunchStatus,
  type OverlayOp,
  overlayFields,
  parseStatus,
  sandboxError,
} from '../base/mount-wire.ts';
import { packageRoot, resolveBinary } from '../binaries.ts';
import { blameRestriction, detectUsernsRestriction, type UsernsRestriction } from './apparmor.ts';

export { packageRoot };

export interface LauncherLocation {
  path: string | null;
  /** Why the launcher is unavailable; null when `path` is set. */
  reason: string | null;
}

let located: LauncherLocation | undefined;

/**
 * The launcher from the first place that has one (src/binaries.ts), or why there is none.
 * BRANCHING_LAUNCHER names one binary instead (an installed copy with a stable path for an
 * AppArmor profile, or a missing one to see the fallback).
 */
export function locateLauncher(): LauncherLocation {
  if (located) return located;
  if (process.platform !== 'linux') {
    located = { path: null, reason: `the sandbox launcher is Linux-only (this is ${process.platform})` };
    return located;
  }
  const chosen = process.env.BRANCHING_LAUNCHER;
  if (chosen) {
    const usable = isAbsolute(chosen) && existsSync(chosen);
    located = usable
      ? { path: chosen, reason: null }
      : { path: null, reason: `BRANCHING_LAUNCHER=${chosen} does not exist` };
    return located;
  }
  const { file, reason } = resolveBinary('launcher');
  located = { path: file, reason };
  return located;
}

// ---------------------------------------------------------------------------
// The spec

export type LaunchOp =
  | { op: 'userns' }
  | { op: 'mountns' }
  | { op: 'pidns' }
  | { op: 'netns' }
  | ({ op: 'overlay' } & OverlayOp)
  | { op: 'bind'; src: string; dst: string; readonly: boolean }
  | { op: 'tmpfs'; target: string; mode: number }
  | { op: 'rdonly'; path: string }
  | { op: 'writable'; path: string }
  | { op: 'chdir'; dir: string }
  | { op: 'helper'; roots: readonly string[] };

const OVERLAY_OPTIONS = new Set([
  'redirect_dir=on',
  'redirect_dir=off',
  'redirect_dir=follow',
  'redirect_dir=nofollow',
  'index=on',
  'index=off',
  'metacopy=off',
  'xino=off',
  'xino=auto',
  'xino=on',
  'volatile',
]);

function checkOverlay(o: OverlayOp, argument: string): OverlayOp {
  if (!Array.isArray(o.lowers) || o.lowers.length === 0) {
    throw new ArgumentError(`${argument}.lowers must be a non-empty array of paths`, {
      argument: `${argument}.lowers`,
    });
  }
  for (const option of o.options ?? []) {
    if (!OVERLAY_OPTIONS.has(option)) {
      throw new ArgumentError(`${argument}.options: unsupported overlay option ${JSON.stringify(option)}`, {
        argument: `${argument}.options`,
      });
    }
  }
  return {
    target: checkSpecPath(o.target, `${argument}.target`),
    lowers: o.lowers.map((l, i) => checkSpecPath(l, `${argument}.lowers[${i}]`, { colon: false })),
    upper: checkSpecPath(o.upper, `${argument}.upper`),
    work: checkSpecPath(o.work, `${argument}.work`),
    options: o.options ? [...o.options] : undefined,
  };
}

/** A builder of launcher specs; every method validates and throws ArgumentError naming the argument. */
export class LaunchSpec {
  readonly ops: LaunchOp[] = [];

  userns(): this {
    this.ops.push({ op: 'userns' });
    return this;
  }
  mountns(): this {
    this.ops.push({ op: 'mountns' });
    return this;
  }
  /** Needs `mountns` before it (a fresh /proc is mounted). */
  pidns(): this {
    this.ops.push({ op: 'pidns' });
    return this;
  }
  netns(): this {
    this.ops.push({ op: 'netns' });
    return this;
  }
  overlay(o: OverlayOp): this {
    this.ops.push({ op: 'overlay', ...checkOverlay(o, 'overlay') });
    return this;
  }
  bind(src: string, dst: string, { readonly = false } = {}): this {
    this.ops.push({ op: 'bind', src: checkSpecPath(src, 'bind.src'), dst: checkSpecPath(dst, 'bind.dst'), readonly });
    return this;
  }
  tmpfs(target: string, mode = 0o700): this {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new ArgumentError(`tmpfs.mode must be an integer between 0 and 0o7777`, { argument: 'tmpfs.mode' });
    }
    this.ops.push({ op: 'tmpfs', target: checkSpecPath(target, 'tmpfs.target'), mode });
    return this;
  }
  rdonly(path: string): this {
    this.ops.push({ op: 'rdonly', path: checkSpecPath(path, 'rdonly.path') });
    return this;
  }
  writable(path: string): this {
    this.ops.push({ op: 'writable', path: checkSpecPath(path, 'writable.path') });
    return this;
  }
  chdir(dir: string): this {
    this.ops.push({ op: 'chdir', dir: checkSpecPath(dir, 'chdir.dir') });
    return this;
  }
  /** Starts the privileged helper; it only mounts under these roots. */
  helper(roots: readonly string[]): this {
    if (!Array.isArray(roots) || roots.length === 0) {
      throw new ArgumentError('helper.roots must be a non-empty array of paths', { argument: 'helper.roots' });
    }
    this.ops.push({
      op: 'helper',
      roots: roots.map((r, i) => checkSpecPath(r, `helper.roots[${i}]`, { colon: false })),
    });
    return this;
  }

  /** A copy to extend without changing this spec. */
  clone(): LaunchSpec {
    const copy = new LaunchSpec();
    copy.ops.push(...this.ops);
    return copy;
  }

  get hasHelper(): boolean {
    return this.ops.some((o) => o.op === 'helper');
  }

  /** The BRANCHING_LAUNCH_SPEC text. */
  toString(): string {
    return this.ops
      .map((o) => {
        switch (o.op) {
          case 'overlay':
            return ['overlay', ...overlayFields(o)].join('\t');
          case 'bind':
            return ['bind', o.src, o.dst, o.readonly ? 'ro' : 'rw'].join('\t');
          case 'tmpfs':
            return ['tmpfs', o.target, o.mode.toString(8).padStart(4, '0')].join('\t');
          case 'rdonly':
          case 'writable':
            return [o.op, o.path].join('\t');
          case 'chdir':
            return ['chdir', o.dir].join('\t');
          case 'helper':
            return ['helper', o.roots.join(':')].join('\t');
          default:
            return o.op;
        }
      })
      .join('\n');
  }
}

/**
 * Directories outside the project that sandboxed test workers may write
 * (BRANCHING_WRITABLE: absolute paths joined by ':'), canonical; everything
 * else but the branch and TMPDIR is read-only there.
 */
export function extraWritableDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const text = env.BRANCHING_WRITABLE;
  if (!text) return [];
  return text
    .split(':')
    .filter((p) => p !== '')
    .map((p) => {
      if (!isAbsolute(p)) {
        throw new ArgumentError(`BRANCHING_WRITABLE must list absolute paths; got ${p}`, {
          argument: 'BRANCHING_WRITABLE',
          path: p,
        });
      }
      try {
        return checkSpecPath(realpathSync(p), 'BRANCHING_WRITABLE');
      } catch (err) {
        if (isBranchingError(err, 'ArgumentError')) throw err;
        throw new ArgumentError(`BRANCHING_WRITABLE names ${p}, which does not exist`, {
          argument: 'BRANCHING_WRITABLE',
          path: p,
          cause: err,
        });
      }
    });
}

// ---------------------------------------------------------------------------
// Spawning

function resolveCommand(command: string, cwd: string, pathEnv: string | undefined): string {
  if (command.includes('/')) return resolve(cwd, command);
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = resolve(cwd, dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new ArgumentError(`command not found on PATH: ${command}`, { argument: 'command' });
}

export interface SpawnSandboxedOptions {
  spec: LaunchSpec;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: 'pipe' | 'inherit' | 'ignore' | StdioOptions;
}

export interface SandboxedProcess {
  child: ChildProcess;
  /** Resolves with the workload's pid (as seen from here) once it execs; rejects with a SandboxError. */
  status: Promise<{ ok: true; pid: number }>;
}

/**
 * The launcher's own variables. BRANCHING_HELPER_FD, if this process has one,
 * stays: it tells the launcher which inherited socket to close, so that an
 * enclosing sandbox's helper never reaches a workload that does not own it.
 */
export function launchEnv(spec: LaunchSpec | string, exec: string, statusFd?: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    BRANCHING_LAUNCH_SPEC: spec.toString(),
    BRANCHING_LAUNCH_EXEC: exec,
    BRANCHING_LAUNCH_PARENT: String(process.pid),
  };
  if (statusFd !== undefined) env.BRANCHING_LAUNCH_STATUS_FD = String(statusFd);
  return env;
}

/** Runs `command args` through the launcher. Throws NamespaceError when there is no launcher. */
export function spawnSandboxed(
  command: string,
  args: readonly string[],
  options: SpawnSandboxedOptions,
): SandboxedProcess {
  const { path: launcher, reason } = locateLauncher();
  if (!launcher) throw new NamespaceError(`cannot sandbox: ${reason}`);
  if (!(options.spec instanceof LaunchSpec)) {
    throw new ArgumentError('options.spec must be a LaunchSpec', { argument: 'options.spec' });
  }
  const cwd = options.cwd ?? process.cwd();
  const env = { ...(options.env ?? process.env) };
  const exec = resolveCommand(command, cwd, env.PATH);
  const base = options.stdio ?? 'pipe';
  const stdio: Exclude<StdioOptions, string> = typeof base === 'string' ? [base, base, base] : [...base];
  while (stdio.length < 3) stdio.push('ignore');
  const statusFd = stdio.length;
  stdio.push('pipe');
  Object.assign(env, launchEnv(options.spec, exec, statusFd));
  const child = spawn(launcher, [...args], { cwd, env, stdio });
  return { child, status: readLaunchStatus(child, statusFd) };
}

/**
 * The launcher's status fd, read to its end (the workload's exec closes it):
 * resolves with the workload's pid, rejects with a SandboxError for a failed
 * setup step, or a NamespaceError when the launcher could not start or wrote
 * no status. Every caller that starts the launcher reads its status here.
 */
export function readLaunchStatus(child: ChildProcess, statusFd: number): Promise<{ ok: true; pid: number }> {
  const pipe = child.stdio[statusFd] as Readable | null | undefined;
  const status = new Promise<{ ok: true; pid: number }>((resolvePromise, reject) => {
    child.once('error', (err) =>
      reject(new NamespaceError(`cannot start the sandbox launcher: ${err.message}`, { cause: err })),
    );
    if (!pipe) {
      reject(new NamespaceError('the sandbox launcher could not be started'));
      return;
    }
    let text = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
    });
    pipe.on('error', () => {}); // a broken pipe shows as a missing status below
    pipe.on('close', () => {
      let parsed: LaunchStatus | null;
      try {
        parsed = parseStatus(text);
      } catch (err) {
        reject(new NamespaceError(`the launcher wrote an unreadable status: ${JSON.stringify(text)}`, { cause: err }));
        return;
      }
      if (parsed?.ok) resolvePromise(parsed);
      else if (parsed) reject(sandboxError(parsed));
      else {
        const report = (code: number | null, signal: NodeJS.Signals | null) =>
          reject(new NamespaceError(`the launcher exited without a status (code ${code}, signal ${signal})`));
        if (child.exitCode !== null || child.signalCode !== null) report(child.exitCode, child.signalCode);
        else child.once('exit', report);
      }
    });
  });
  status.catch(() => {}); // callers that only watch the exit code must not see an unhandled rejection
  return status;
}

/**
 * Runs the launcher once, synchronously, with `spec` and a workload that does
 * nothing: its status (null when it gave none, or an unreadable one) and, for
 * a missing status, what the launcher said instead.
 */
export function launchOnce(launcher: string, spec: LaunchSpec): { status: LaunchStatus | null; detail: string } {
  const exec = existsSync('/bin/true') ? '/bin/true' : process.execPath;
  const result = spawnSync(launcher, exec === process.execPath ? ['-e', '0'] : [], {
    env: { PATH: process.env.PATH, ...launchEnv(spec, exec, 3) },
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  });
  const detail = `exit ${result.status}: ${result.stderr?.toString().trim() ?? ''}`;
  try {
    return { status: parseStatus(result.output?.[3]?.toString() ?? ''), detail };
  } catch {
    return { status: null, detail };
  }
}

// ---------------------------------------------------------------------------
// The probe

export interface SandboxProbe {
  /** The launcher and the kernel features it needs for an overlay sandbox all work here. */
  available: boolean;
  launcher: string | null;
  /** The caller is real root (it gets a user namespace too, mapping every uid onto itself, and no capabilities). */
  root: boolean;
  userns: boolean;
  overlay: boolean;
  pidns: boolean;
  netns: boolean;
  /** Why `available` is false (or which optional feature is missing); null when everything works. */
  reason: string | null;
  /** Kernel settings that restrict unprivileged user namespaces (Ubuntu's AppArmor, Debian, a zero limit). */
  restriction: UsernsRestriction;
}

let probed: SandboxProbe | undefined;

function describe(status: LaunchStatus | null, what: string): string | null {
  if (status?.ok) return null;
  if (!status) return `${what}: the launcher gave no status`;
  return `${what}: ${status.op}${status.path ? ` ${status.path}` : ''} failed with ${status.code} (${status.message})`;
}

/** Whether user/mount namespaces and an overlay inside them work here (cached; a few ms, once). */
export function probeSandbox({ refresh = false } = {}): SandboxProbe {
  if (probed && !refresh) return probed;
  const root = process.getuid?.() === 0;
  const { path: launcher, reason } = locateLauncher();
  const restriction = detectUsernsRestriction({ launcher });
  const none = { launcher, root, restriction, userns: false, overlay: false, pidns: false, netns: false };
  if (!launcher) {
    probed = { ...none, available: false, reason };
    return probed;
  }
  const dir = mkdtempSync(join(tmpdir(), 'branching-probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d));
    const overlayIn = (spec: LaunchSpec) =>
      spec.overlay({
        target: join(dir, 'merged'),
        lowers: [join(dir, 'lower')],
        upper: join(dir, 'upper'),
        work: join(dir, 'work'),
      });
    // Everything in one launch, the common case; only a failure needs a launch per feature, to name the missing one.
    const all = launchOnce(launcher, overlayIn(probeBase().pidns().netns())).status;
    probed = all?.ok
      ? { ...none, userns: true, overlay: true, pidns: true, netns: true, available: true, reason: null }
      : probeEachFeature(launcher, overlayIn, none);
  } finally {
    removeLayerDirSync(dir);
  }
  return probed;
}

function probeBase(): LaunchSpec {
  return new LaunchSpec().userns().mountns();
}

function probeEachFeature(
  launcher: string,
  overlayIn: (spec: LaunchSpec) => LaunchSpec,
  none: Omit<SandboxProbe, 'available' | 'reason'>,
): SandboxProbe {
  const { root, restriction } = none;
  const nsReason = describe(launchOnce(launcher, probeBase()).status, 'user and mount namespaces are unavailable');
  if (nsReason) return { ...none, available: false, reason: blameRestriction(nsReason, restriction, root) };
  const overlayReason = describe(
    launchOnce(launcher, overlayIn(probeBase())).status,
    'overlayfs is unavailable in a user namespace',
  );
  const pidReason = describe(launchOnce(launcher, probeBase().pidns()).status, 'PID namespaces are unavailable');
  const netReason = describe(launchOnce(launcher, probeBase().netns()).status, 'network namespaces are unavailable');
  return {
    ...none,
    userns: true,
    overlay: overlayReason === null,
    pidns: pidReason === null,
    netns: netReason === null,
    available: overlayReason === null,
    reason: (overlayReason && blameRestriction(overlayReason, restriction, root)) ?? pidReason ?? netReason,
  };
}
