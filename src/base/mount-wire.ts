/**
 * The wire format shared by the launcher's spec, its status fd and the mount
 * helper's requests and replies: overlay operations, path checks, and the
 * one parser of failure lines into typed errors. It sits below the backends
 * because the overlay backend talks to the helper directly.
 */
import { isAbsolute } from 'node:path';
import { ArgumentError, MountError, NamespaceError } from './errors.ts';

export interface OverlayOp {
  target: string;
  /** Upper-most first, as overlayfs lists them. */
  lowers: readonly string[];
  upper: string;
  work: string;
  /** Extra overlay options, from the launcher's allow-list (e.g. `redirect_dir=on` as real root). */
  options?: readonly string[];
}

/** Throws ArgumentError naming `argument` unless `value` is an absolute path the wire format can carry. */
export function checkSpecPath(value: unknown, argument: string, { colon = true } = {}): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ArgumentError(`${argument} must be a non-empty string`, { argument });
  }
  if (!isAbsolute(value)) throw new ArgumentError(`${argument} must be an absolute path: ${value}`, { argument });
  const bad = /[\t\n\r\0,]/.exec(value) ?? (colon ? null : /:/.exec(value));
  if (bad) {
    throw new ArgumentError(`${argument} contains an unsupported character (${JSON.stringify(bad[0])}): ${value}`, {
      argument,
      path: value,
    });
  }
  return value;
}

/** The overlay fields of a spec line or a helper request: target, lowers, upper, work[, options]. */
export function overlayFields(o: OverlayOp): string[] {
  const fields = [o.target, o.lowers.join(':'), o.upper, o.work];
  if (o.options && o.options.length > 0) fields.push(o.options.join(','));
  return fields;
}

/** A failure line of the launcher's status fd (and of the helper's replies). */
export interface LaunchFailure {
  ok: false;
  op: string;
  index?: number;
  errno: number;
  code: string;
  path?: string;
  message: string;
}
export type LaunchStatus = { ok: true; pid: number } | LaunchFailure;

const MOUNT_OPS = new Set(['overlay', 'bind', 'tmpfs', 'rdonly', 'writable', 'umount']);

/** A Node-style system error for a failure line: code, errno (negative), syscall (the op), path. */
export function systemError(f: LaunchFailure): NodeJS.ErrnoException {
  const err = new Error(`${f.code}: ${f.message}, ${f.op}${f.path ? ` '${f.path}'` : ''}`) as NodeJS.ErrnoException;
  err.code = f.code;
  err.errno = -f.errno;
  err.syscall = f.op;
  if (f.path) err.path = f.path;
  return err;
}

export type SandboxError = (MountError | NamespaceError) & { op: string; errnoCode: string; index?: number };

/**
 * MountError for mount operations, NamespaceError for the rest. `.code` stays
 * the class's stable code; `.errnoCode` ('EACCES'), `.op`, `.path` and the
 * `.cause` (a Node-style system error) carry the details.
 */
export function sandboxError(f: LaunchFailure, context = 'sandbox setup failed'): SandboxError {
  const Ctor = MOUNT_OPS.has(f.op) ? MountError : NamespaceError;
  const where = f.path ? ` ${f.path}` : '';
  const err = new Ctor(`${context}: ${f.op}${where}: ${f.code} (${f.message})`, {
    path: f.path,
    cause: systemError(f),
  }) as SandboxError;
  Object.assign(err, { op: f.op, errnoCode: f.code });
  if (f.index !== undefined) err.index = f.index;
  return err;
}

/** The last line decides: an exec failure is reported after the ok line. */
export function parseStatus(text: string): LaunchStatus | null {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return null;
  return JSON.parse(lines[lines.length - 1]) as LaunchStatus;
}
