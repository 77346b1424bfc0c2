/** Validation of BranchContext targets and options: bad input is an ArgumentError naming it, before anything starts. */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Stream } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';

/** A command and its arguments, e.g. `['npm', 'test']`. */
export type CommandTarget = readonly [string, ...string[]] | readonly string[];

/** An exported function of a module, called in the child with `args`; its return value comes back. */
export interface ModuleTarget {
  /** Absolute path, `file:` URL, or a bare specifier resolved from the workspace. */
  module: string | URL;
  /** Export name; default `'default'`. */
  export?: string;
  /** JSON-serialisable arguments; default none. */
  args?: readonly unknown[];
  /**
   * Pass the workspace directory as the child sees it (the project's own
   * path when sandboxed) as the first argument, before `args`: the calling
   * convention of the agent patterns' candidates, `(path, ...)`.
   */
  withPath?: boolean;
}

export type Target = CommandTarget | ModuleTarget;

type StdioEntry = 'pipe' | 'inherit' | 'ignore' | number | Stream;
export type StdioOption = 'pipe' | 'inherit' | 'ignore' | readonly [StdioEntry, StdioEntry, StdioEntry];

export interface ResourceLimits {
  /** memory.max in bytes (cgroup v2). */
  memory?: number;
  /** pids.max (cgroup v2). */
  pids?: number;
}

export interface BranchContextOptions {
  /** The branch to run in (mounted at its project's own path), or a directory (run in place). */
  workspace: Branch | string;
  /** Close descriptors the parent inherited without close-on-exec, so the child cannot use them. Default false. */
  closeFds?: boolean;
  /** Kill the whole tree after this many ms; `wait()` then rejects with TimeoutError. */
  timeout?: number;
  /** Aborting the signal aborts the context (TERM, then KILL). */
  signal?: AbortSignal;
  /** `false`: a network namespace with only a loopback of its own. Default true. */
  network?: boolean;
  /** Added to (or, with `undefined` values, removed from) the parent's environment. */
  env?: Record<string, string | undefined>;
  /** Default `'pipe'`: `ctx.stdout`/`ctx.stderr` streams (always drained, so the child never blocks). */
  stdio?: StdioOption;
  /**
   * Where the workspace appears inside the sandbox when `workspace` is a
   * directory path (a Branch brings its own: the project's path). Default:
   * the directory itself.
   */
  mountAt?: string;
  /** Extra host directories that stay writable under the read-only root (e.g. a report directory). */
  writable?: readonly string[];
  /** Everything outside the workspace and the private TMPDIR is read-only. Default true. */
  readOnlyRoot?: boolean;
  /** `false`: run as a plain child process in the branch directory, no namespaces (no notice). Default true. */
  sandbox?: boolean;
  /** Without namespaces, run as a plain child process and say so. `false`: throw NamespaceError instead. Default true. */
  downgrade?: boolean;
  /** Resource limits through cgroup v2 where it is delegated; reported in `ctx.limits` either way. */
  limits?: ResourceLimits;
  /** Receives the downgrade notice. Default: the branch's workspace notices, else stderr (BRANCHING_QUIET=1 silences it). */
  onNotice?: (message: string) => void;
}

export type NormalizedTarget =
  | { kind: 'command'; file: string; args: string[] }
  | { kind: 'module'; module: string; exportName: string; args: unknown[]; withPath: boolean };

export interface NormalizedOptions {
  /** The directory holding the files, on the host. */
  source: string;
  /** Where the child sees them (the project's own path for a branch). */
  mountAt: string;
  /** Host directories kept writable under the read-only root. */
  writable: string[];
  branch: Branch | null;
  closeFds: boolean;
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  network: boolean;
  env: Record<string, string | undefined>;
  stdio: [StdioEntry, StdioEntry, StdioEntry];
  readOnlyRoot: boolean;
  sandbox: boolean;
  downgrade: boolean;
  limits: ResourceLimits | undefined;
  onNotice: ((message: string) => void) | undefined;
}

function fail(argument: string, message: string, path?: string): never {
  throw new ArgumentError(`${argument}: ${message}`, { argument, path });
}

export function normalizeTarget(target: unknown, argument = 'target'): NormalizedTarget {
  if (Array.isArray(target)) {
    if (target.length === 0) fail(argument, 'a command must have at least the program name');
    target.forEach((a, i) => {
      if (typeof a !== 'string') fail(`${argument}[${i}]`, 'every argument must be a string');
      if (a.includes('\0')) fail(`${argument}[${i}]`, 'an argument cannot contain NUL');
    });
    if (target[0] === '') fail(`${argument}[0]`, 'the program name is empty');
    return { kind: 'command', file: target[0], args: target.slice(1) };
  }
  if (typeof target !== 'object' || target === null) {
    fail(argument, 'must be an argv array or { module, export?, args? }');
  }
  const t = target as ModuleTarget;
  let module: string;
  if (t.module instanceof URL) {
    if (t.module.protocol !== 'file:') fail(`${argument}.module`, `only file: URLs can be loaded (${t.module.href})`);
    module = fileURLToPath(t.module);
  } else if (typeof t.module === 'string' && t.module !== '') {
    module = t.module.startsWith('file:') ? fileURLToPath(t.module) : t.module;
  } else {
    fail(`${argument}.module`, 'must be a non-empty string or a file: URL');
  }
  const exportName = t.export ?? 'default';
  if (typeof exportName !== 'string' || exportName === '') fail(`${argument}.export`, 'must be a non-empty string');
  const args = t.args ?? [];
  if (!Array.isArray(args)) fail(`${argument}.args`, 'must be an array');
  try {
    JSON.stringify(args);
  } catch (err) {
    fail(`${argument}.args`, `must be JSON-serialisable (${(err as Error).message})`);
  }
  if (t.withPath !== undefined && typeof t.withPath !== 'boolean') fail(`${argument}.withPath`, 'must be a boolean');
  return { kind: 'module', module, exportName, args: [...args], withPath: t.withPath === true };
}

function directory(path: string, argument: string): string {
  if (!isAbsolute(path)) fail(argument, `must be an absolute path: ${path}`, path);
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    fail(argument, `does not exist: ${path}`, path);
  }
  if (!statSync(real).isDirectory()) fail(argument, `is not a directory: ${path}`, path);
  return real;
}

function isBranch(value: unknown): value is Branch {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Branch).path === 'string' &&
    typeof (value as Branch).projectPath === 'string'
  );
}

function optionalBoolean(value: unknown, argument: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(argument, 'must be a boolean');
  return value;
}

function normalizeStdio(value: unknown): [StdioEntry, StdioEntry, StdioEntry] {
  if (value === undefined) return ['pipe', 'pipe', 'pipe'];
  if (value === 'pipe' || value === 'inherit' || value === 'ignore') return [value, value, value];
  if (Array.isArray(value) && value.length === 3) return [value[0], value[1], value[2]];
  fail('stdio', "must be 'pipe', 'inherit', 'ignore' or an array of three entries");
}

export function normalizeOptions(options: unknown): NormalizedOptions {
  if (typeof options !== 'object' || options === null) fail('options', 'must be an object with a workspace');
  const o = options as BranchContextOptions;
  let source: string;
  let mountAt: string;
  let branch: Branch | null = null;
  if (isBranch(o.workspace)) {
    branch = o.workspace;
    if (branch.state !== 'open') fail('workspace', `branch ${branch.branchPath} is already ${branch.state}`);
    source = directory(branch.path, 'workspace');
    mountAt = resolve(branch.projectPath);
  } else if (typeof o.workspace === 'string') {
    source = directory(resolve(o.workspace), 'workspace');
    mountAt = o.mountAt === undefined ? source : directory(resolve(o.mountAt), 'mountAt');
  } else {
    fail('workspace', 'must be a Branch or an absolute directory path');
  }
  if (o.timeout !== undefined && !(typeof o.timeout === 'number' && o.timeout > 0 && Number.isFinite(o.timeout))) {
    fail('timeout', 'must be a positive number of milliseconds');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) fail('signal', 'must be an AbortSignal');
  if (o.env !== undefined) {
    if (typeof o.env !== 'object' || o.env === null) fail('env', 'must be an object');
    for (const [k, v] of Object.entries(o.env)) {
      if (v !== undefined && typeof v !== 'string') fail(`env.${k}`, 'must be a string or undefined');
    }
  }
  if (o.limits !== undefined) {
    if (typeof o.limits !== 'object' || o.limits === null) fail('limits', 'must be an object');
    for (const key of ['memory', 'pids'] as const) {
      const v = o.limits[key];
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) fail(`limits.${key}`, 'must be a positive integer');
    }
  }
  if (o.onNotice !== undefined && typeof o.onNotice !== 'function') fail('onNotice', 'must be a function');
  if (o.writable !== undefined && !Array.isArray(o.writable)) fail('writable', 'must be an array of directories');
  const writable = (o.writable ?? []).map((d, i) => directory(resolve(d), `writable[${i}]`));
  return {
    writable,
    source,
    mountAt,
    branch,
    closeFds: optionalBoolean(o.closeFds, 'closeFds', false),
    timeout: o.timeout,
    signal: o.signal,
    network: optionalBoolean(o.network, 'network', true),
    env: { ...(o.env ?? {}) },
    stdio: normalizeStdio(o.stdio),
    readOnlyRoot: optionalBoolean(o.readOnlyRoot, 'readOnlyRoot', true),
    sandbox: optionalBoolean(o.sandbox, 'sandbox', true),
    downgrade: optionalBoolean(o.downgrade, 'downgrade', true),
    limits: o.limits,
    onNotice: o.onNotice,
  };
}
