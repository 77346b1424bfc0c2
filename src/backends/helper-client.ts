/**
 * Client of the launcher's privileged helper, for code running inside a
 * sandbox started with a `helper` op (BRANCHING_HELPER_FD is set there).
 *
 * Protocol: each request is one SEQPACKET message, a TAB-separated line:
 *   overlay <target> <lower1:lower2...> <upper> <work> [<opt,opt>]
 *   umount  <target>                      (MNT_DETACH | UMOUNT_NOFOLLOW)
 *   bind    <src> <dst> <ro|rw>
 * Every path must be absolute, canonical (realpath(p) === p) and under one of
 * the helper's allowed roots. The reply is one JSON line: {"ok":true} or
 * {"ok":false,"op","errno","code","path","message"}.
 */

import { loadNative } from '../addon.ts';
import { MountError } from '../base/errors.ts';
import {
  checkSpecPath,
  type LaunchFailure,
  type OverlayOp,
  overlayFields,
  type SandboxError,
  sandboxError,
} from '../base/mount-wire.ts';

export function overlayRequest(o: OverlayOp): string {
  if (!Array.isArray(o.lowers) || o.lowers.length === 0) {
    return checkSpecPath(undefined, 'lowers'); // throws ArgumentError naming `lowers`
  }
  checkSpecPath(o.target, 'target');
  for (const [i, l] of o.lowers.entries()) checkSpecPath(l, `lowers[${i}]`, { colon: false });
  checkSpecPath(o.upper, 'upper');
  checkSpecPath(o.work, 'work');
  return ['overlay', ...overlayFields(o)].join('\t');
}

export function unmountRequest(target: string): string {
  return ['umount', checkSpecPath(target, 'target')].join('\t');
}

export function bindRequest(src: string, dst: string, { readonly = false } = {}): string {
  return ['bind', checkSpecPath(src, 'src'), checkSpecPath(dst, 'dst'), readonly ? 'ro' : 'rw'].join('\t');
}

/** Throws a MountError (with `.errnoCode`, `.op`, `.path`, and a Node-style `.cause`) for a failure reply. */
export function checkHelperReply(reply: string): void {
  let parsed: { ok: true } | LaunchFailure;
  try {
    parsed = JSON.parse(reply) as { ok: true } | LaunchFailure;
  } catch (err) {
    throw new MountError(`the mount helper sent an unreadable reply: ${JSON.stringify(reply)}`, { cause: err });
  }
  if (parsed.ok) return;
  const err: SandboxError = sandboxError(parsed, 'the mount helper refused or failed');
  if (!(err instanceof MountError)) {
    // e.g. a malformed request: still a mount failure from the caller's point of view
    throw Object.assign(new MountError(err.message, { path: err.path, cause: err.cause }), {
      op: err.op,
      errnoCode: err.errnoCode,
    });
  }
  throw err;
}

export class HelperClient {
  readonly fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new MountError(`invalid helper fd: ${fd}`);
    this.fd = fd;
  }

  /** The helper of the sandbox this process runs in, or null outside one. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): HelperClient | null {
    const text = env.BRANCHING_HELPER_FD;
    if (!text || !/^\d+$/.test(text)) return null;
    return new HelperClient(Number(text));
  }

  private call(request: string): void {
    const { binding, reason } = loadNative();
    if (!binding) throw new MountError(`the mount helper needs the native addon: ${reason}`);
    let reply: string;
    try {
      reply = binding.helperCall(this.fd, request);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw Object.assign(new MountError(`cannot reach the mount helper: ${e.message}`, { cause: err }), {
        op: request.split('\t')[0],
        errnoCode: e.code ?? 'EUNKNOWN',
      });
    }
    checkHelperReply(reply);
  }

  mountOverlay(o: OverlayOp): void {
    this.call(overlayRequest(o));
  }

  unmount(target: string): void {
    this.call(unmountRequest(target));
  }

  bind(src: string, dst: string, options: { readonly?: boolean } = {}): void {
    this.call(bindRequest(src, dst, options));
  }
}

function fromEnvOrThrow(): HelperClient {
  const client = HelperClient.fromEnv();
  if (!client)
    throw new MountError('no mount helper here: not running under `branching run` or a sandbox with a helper');
  return client;
}

/** Mounts an overlay through this sandbox's helper. */
export function mountOverlay(o: OverlayOp): void {
  fromEnvOrThrow().mountOverlay(o);
}

/** Detaches a mount through this sandbox's helper. */
export function unmount(target: string): void {
  fromEnvOrThrow().unmount(target);
}
