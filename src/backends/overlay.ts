/**
 * The overlay backend: a branch is an overlayfs mount at `<branch dir>/merged`
 * whose upper and work dirs live in the branch's private state dir. Its lower
 * layers are its parent's layers (main: [workspace]; a nested branch:
 * [parent.upper, ...parent.lowers]), so nesting adds one layer and copies
 * nothing.
 *
 * Mounts are made in the calling process's own mount namespace: directly with
 * mount(2) when the process is real root, or through the privileged helper of
 * `branching run` (BRANCHING_HELPER_FD) for everyone else. Either way the
 * branch path is a real directory of this namespace, never /proc/<pid>/root.
 */
import {
  chmodSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative, native } from '../addon.ts';
import type { Change } from '../base/changes.ts';
import { hasErrno, MountError } from '../base/errors.ts';
import { mountsUnder, removeLayerDir, removeLayerDirSync } from '../base/layer-dir.ts';
import type { OverlayOp } from '../base/mount-wire.ts';
import type { Backend, BackendProbe, BranchHandle, CreateContext, ParentView } from './backend.ts';
import { HelperClient } from './helper-client.ts';

/** How this process gets overlays mounted, and what that implies for the on-disk format. */
export interface Mounter {
  readonly kind: 'direct' | 'helper';
  /** `trusted.overlay.` for a real-root mount, `user.overlay.` for userxattr mounts. */
  readonly xattrPrefix: string;
  /** redirect_dir=on: renaming a lower directory works and leaves a redirect xattr. */
  readonly redirects: boolean;
  mount(o: OverlayOp): void;
  /** A read-only recursive bind of `src` at `dst` (both canonical): lower layers are only ever read. */
  bind(src: string, dst: string): void;
  unmount(target: string): void;
}

export interface OverlayHandle extends BranchHandle {
  /** The merged mount: the branch's files. */
  readonly path: string;
  readonly dir: string;
  readonly upper: string;
  readonly work: string;
  /** Upper-most first, as overlayfs lists them. */
  readonly lowers: readonly string[];
}

const CAP_SYS_ADMIN = 21;
const CAP_DAC_OVERRIDE = 1;
const HOW_TO =
  'start the program with `branching run -- <command>` (e.g. `npx branching run -- node agent.js`), which gives it a mount namespace and a mount helper, or run it as root';

/** Paths travel in overlay mount options: ',' and ':' separate options and layers there. */
function unsafeForOptions(path: string): boolean {
  return /[,:\n\t\\]/.test(path);
}

function hasCap(bit: number): boolean {
  try {
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** Real root in the initial user namespace: trusted.* xattrs and redirect_dir=on are available. */
function inInitialUserNs(): boolean {
  try {
    return /^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}

class DirectMounter implements Mounter {
  readonly kind = 'direct';
  readonly xattrPrefix: string;
  readonly redirects: boolean;
  private readonly options: string[];

  constructor(initialNs: boolean) {
    this.redirects = initialNs;
    this.xattrPrefix = initialNs ? 'trusted.overlay.' : 'user.overlay.';
    // metacopy=off: a chmod must copy the data up, since commits hard-link upper files.
    // index=off: a parent's upper dir is a lower layer of its children while it is mounted.
    this.options = initialNs
      ? ['redirect_dir=on', 'index=off', 'metacopy=off']
      : ['userxattr', 'index=off', 'metacopy=off'];
  }

  mount(o: OverlayOp): void {
    const data = [`lowerdir=${o.lowers.join(':')}`, `upperdir=${o.upper}`, `workdir=${o.work}`, ...this.options];
    native()!.mount('overlay', o.target, 'overlay', 0, data.join(','));
  }

  bind(src: string, dst: string): void {
    const c = native()!.constants;
    native()!.mount(src, dst, null, c.MS_BIND | c.MS_REC, null);
    try {
      native()!.mount(dst, dst, null, c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY, null); // the source is ignored on remount
    } catch (err) {
      native()!.umount2(dst, c.MNT_DETACH | c.UMOUNT_NOFOLLOW);
      throw err;
    }
  }

  unmount(target: string): void {
    const c = native()!.constants;
    native()!.umount2(target, c.MNT_DETACH | c.UMOUNT_NOFOLLOW);
  }
}

class HelperMounter implements Mounter {
  readonly kind = 'helper';
  readonly xattrPrefix = 'user.overlay.';
  readonly redirects = false;
  constructor(private readonly client: HelperClient) {}

  mount(o: OverlayOp): void {
    this.client.mountOverlay({ ...o, options: ['index=off', 'metacopy=off'] });
  }

  bind(src: string, dst: string): void {
    // The launcher's helper makes read-only binds only; a layer stack's base bind is a lower dir,
    // never written through.
    this.client.bind(src, dst, { readonly: true });
  }

  unmount(target: string): void {
    this.client.unmount(target);
  }
}

/** One test mount in a scratch dir: proves overlayfs, the caps and the options work here. */
function tryDirectMount(mounter: DirectMounter): string | null {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'branching-overlay-probe-')));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d));
    const target = join(dir, 'merged');
    mounter.mount({ target, lowers: [join(dir, 'lower')], upper: join(dir, 'upper'), work: join(dir, 'work') });
    mounter.unmount(target);
    return null;
  } catch (err) {
    return `a test overlay mount failed: ${(err as Error).message}`;
  } finally {
    removeLayerDirSync(dir);
  }
}

/** Is the helper behind `fd` alive? It answers a malformed request with an error line. */
function helperAlive(fd: number): string | null {
  try {
    native()!.helperCall(fd, 'ping');
    return null;
  } catch (err) {
    return `the mount helper (BRANCHING_HELPER_FD=${fd}) is gone: ${(err as Error).message}`;
  }
}

type MounterChoice = { mounter: Mounter; reason: string } | { mounter: null; reason: string };
let cachedChoice: MounterChoice | undefined;

/**
 * Root with CAP_SYS_ADMIN mounts directly; anyone else needs the helper of
 * `branching run`. The answer is cached: the test mount costs about a ms.
 */
export function chooseMounter(env: NodeJS.ProcessEnv = process.env, { refresh = false } = {}): MounterChoice {
  if (cachedChoice && !refresh && env === process.env) return cachedChoice;
  const choice = computeMounter(env);
  if (env === process.env) cachedChoice = choice;
  return choice;
}

function computeMounter(env: NodeJS.ProcessEnv): MounterChoice {
  if (process.platform !== 'linux')
    return { mounter: null, reason: `overlayfs is Linux-only (this is ${process.platform})` };
  const { binding, reason } = loadNative();
  if (!binding) return { mounter: null, reason: `nothing can mount without the native addon: ${reason}` };
  if (process.getuid?.() === 0 && hasCap(CAP_SYS_ADMIN) && hasCap(CAP_DAC_OVERRIDE)) {
    const direct = new DirectMounter(inInitialUserNs());
    const failure = tryDirectMount(direct);
    if (!failure) return { mounter: direct, reason: 'mounted directly (root)' };
    if (!HelperClient.fromEnv(env)) return { mounter: null, reason: failure };
  }
  const client = HelperClient.fromEnv(env);
  if (client) {
    const dead = helperAlive(client.fd);
    if (dead) return { mounter: null, reason: `${dead}; ${HOW_TO}` };
    return { mounter: new HelperMounter(client), reason: 'mounted by the helper of `branching run`' };
  }
  const who = process.getuid?.() === 0 ? 'this root process lacks CAP_SYS_ADMIN' : 'this process is not root';
  return { mounter: null, reason: `${who} and runs outside \`branching run\`; ${HOW_TO}` };
}

/** Roots the helper of `branching run` accepts (BRANCHING_HELPER_ROOTS), or null when unknown. */
function helperRoots(env: NodeJS.ProcessEnv): string[] | null {
  const text = env.BRANCHING_HELPER_ROOTS;
  return text ? text.split(':').filter(Boolean) : null;
}

function isUnder(path: string, root: string): boolean {
  return path === root || root === '/' || path.startsWith(`${root}/`);
}

export function probeOverlay(workspace: string, env: NodeJS.ProcessEnv = process.env): BackendProbe {
  const choice = chooseMounter(env);
  if (!choice.mounter) return { kind: 'overlay', available: false, reason: choice.reason };
  if (unsafeForOptions(workspace)) {
    return {
      kind: 'overlay',
      available: false,
      reason: `the workspace path ${workspace} contains a character overlayfs options cannot carry (',', ':', '\\' or a control character)`,
    };
  }
  const roots = choice.mounter.kind === 'helper' ? helperRoots(env) : null;
  if (roots && !roots.some((r) => isUnder(workspace, r))) {
    return {
      kind: 'overlay',
      available: false,
      reason: `the workspace ${workspace} is outside the directories \`branching run\` allows mounts in (${roots.join(', ')}); add \`--allow <dir>\` or use \`--cwd <dir>\``,
    };
  }
  const mounter = choice.mounter;
  return { kind: 'overlay', available: true, reason: choice.reason, create: () => new OverlayBackend(mounter) };
}

/** A 0/0 character device: an overlayfs whiteout. */
export function isWhiteout(st: import('node:fs').Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** One mounted overlay layer, as the change reader needs it. */
export interface UpperView {
  upper: string;
  /** Where the layer is mounted (its merged view). */
  merged: string;
}

/**
 * Reads an upper dir: whiteouts are deletions, opaque (or, as root,
 * redirected) directories replace the whole subtree, other directories are
 * walked, files and symlinks are put as they are. With `forCommit`, overlay
 * xattrs are stripped from upper files, which the journal may hard-link into
 * the target.
 */
export async function readUpperChanges(
  layer: UpperView,
  mounter: Mounter,
  options: { forCommit?: boolean } = {},
): Promise<Change[]> {
  return readUpperChangesSync(layer, mounter, options);
}

/** readUpperChanges, synchronously (uppers of test layers are small, and settling one happens in a sync push). */
export function readUpperChangesSync(layer: UpperView, mounter: Mounter, { forCommit = false } = {}): Change[] {
  const out: Change[] = [];
  const binding = native()!;
  const xattr = (path: string, name: string) => binding.getxattr(path, mounter.xattrPrefix + name);
  // Depth first in name order, as a recursive walk would go, but with an explicit stack (any depth);
  // each directory's names are kept reversed, to be taken from the end.
  const open = (rel: string) => ({
    rel,
    names: readdirSync(rel === '' ? layer.upper : join(layer.upper, rel))
      .sort()
      .reverse(),
  });
  const stack = [open('')];
  while (stack.length > 0) {
    const dir = stack[stack.length - 1];
    const name = dir.names.pop();
    if (name === undefined) {
      stack.pop();
      continue;
    }
    const childRel = dir.rel === '' ? name : `${dir.rel}/${name}`;
    const childAbs = join(layer.upper, childRel);
    const st = lstatSync(childAbs);
    if (isWhiteout(st)) out.push({ op: 'delete', path: childRel });
    else if (st.isDirectory()) {
      const opaque = xattr(childAbs, 'opaque')?.toString() === 'y';
      const redirected = mounter.redirects && xattr(childAbs, 'redirect') !== null;
      if (opaque && !mounter.redirects) out.push({ op: 'tree', path: childRel, source: childAbs });
      else if (opaque || redirected) {
        // A redirected directory (or one that may hold one) takes its content from lower layers: read the merged view.
        out.push({ op: 'tree', path: childRel, source: join(layer.merged, childRel) });
      } else {
        out.push({ op: 'mkdir', path: childRel, mode: st.mode & 0o7777 });
        stack.push(open(childRel));
      }
    } else if (st.isFile()) {
      if (forCommit) stripOverlayXattrs(childAbs);
      out.push({ op: 'file', path: childRel, source: childAbs });
    } else if (st.isSymbolicLink()) {
      out.push({ op: 'symlink', path: childRel, target: readlinkSync(childAbs) });
    }
    // Sockets, fifos and devices are not carried over (the clone backend skips them too).
  }
  return out;
}

/** A committed file may be the upper inode itself (hard link): it must not carry overlay bookkeeping into the target. */
function stripOverlayXattrs(path: string): void {
  const binding = native()!;
  for (const name of binding.listxattr(path)) {
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) binding.removexattr(path, name);
  }
}

export class OverlayBackend implements Backend<OverlayHandle> {
  readonly kind = 'overlay' as const;
  constructor(readonly mounter: Mounter) {}

  async create(parent: ParentView<OverlayHandle>, context: CreateContext): Promise<OverlayHandle> {
    // The helper only accepts canonical paths.
    const dir = realpathSync(context.dir);
    const lowers = parent.handle ? [parent.handle.upper, ...parent.handle.lowers] : [realpathSync(parent.path)];
    const handle: OverlayHandle = {
      path: join(dir, 'merged'),
      dir,
      upper: join(dir, 'upper'),
      work: join(dir, 'work'),
      lowers,
    };
    if (unsafeForOptions(dir)) {
      throw new MountError(
        `the branch state directory ${dir} contains ',', ':' or '\\', which overlayfs options cannot carry`,
        {
          path: dir,
        },
      );
    }
    // Synchronous on purpose: each call is a few µs, far less than a threadpool round trip.
    for (const d of [handle.upper, handle.work, handle.path]) mkdirSync(d, { mode: 0o700 });
    // The merged root shows the upper root's owner and mode: make them the parent's.
    const top = statSync(parent.path);
    chmodSync(handle.upper, top.mode & 0o7777);
    if (process.getuid?.() === 0) lchownSync(handle.upper, top.uid, top.gid);
    try {
      this.mounter.mount({ target: handle.path, lowers, upper: handle.upper, work: handle.work });
    } catch (err) {
      throw this.mountError(err, handle);
    }
    return handle;
  }

  private mountError(err: unknown, handle: OverlayHandle): MountError {
    const e = err as Error & { errnoCode?: string; code?: string };
    const code = e.errnoCode ?? e.code;
    let hint = '';
    if (code === 'EPERM' && this.mounter.kind === 'helper') {
      hint = '; the branch state directory must be under a directory `branching run` allows (`--allow <dir>`)';
    } else if (code === 'EINVAL' && handle.lowers.length > 1) {
      hint = `; ${handle.lowers.length} layers may exceed the mount options' size limit (one page): nest less deeply or use a shorter state dir`;
    }
    return new MountError(`cannot mount the overlay branch at ${handle.path}: ${e.message}${hint}`, {
      path: handle.path,
      cause: err,
    });
  }

  /**
   * Upper files sit on the workspace's filesystem, so the journal hard-links
   * them: a commit into main copies no data.
   */
  async changes(handle: OverlayHandle): Promise<Change[]> {
    return readUpperChanges({ upper: handle.upper, merged: handle.path }, this.mounter, { forCommit: true });
  }

  /**
   * A commit into a parent branch must go through the parent's merged mount
   * (its layers must not change under it), and a rename only works within
   * one mount, so the journal stages there; into main, in the state dir.
   */
  stagingDir(parent: ParentView<OverlayHandle>, fallback: string): string {
    return parent.handle ? parent.path : fallback;
  }

  async destroy(handle: OverlayHandle): Promise<void> {
    this.unmountQuietly(handle.path);
    // The work dir is the one part of a branch dir a plain (non-root) rm -r cannot remove.
    await removeLayerDir(handle.work);
  }

  private unmountQuietly(target: string): void {
    try {
      this.mounter.unmount(target);
    } catch (err) {
      const e = err as { errnoCode?: string; code?: string };
      const code = e.errnoCode ?? e.code;
      // EINVAL: not a mount point (already unmounted); ENOENT: already removed.
      if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
    }
  }

  async reclaim(dir: string): Promise<void> {
    await reclaimOverlayDir(dir, this.mounter);
  }
}

export { mountsUnder };

/**
 * Reclaims the state dir of a branch whose process died. A root process's
 * mounts live in the host namespace and outlive it: unmount whatever is still
 * mounted under the dir before anything is removed, and refuse to remove
 * through a mount that stays (that would delete files through the overlay).
 */
export async function reclaimOverlayDir(dir: string, mounter: Mounter | null = chooseMounter().mounter): Promise<void> {
  let canonical: string;
  try {
    canonical = realpathSync(dir);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return;
    throw err;
  }
  for (const point of mountsUnder(canonical)) {
    try {
      mounter?.unmount(point);
    } catch {
      // reported below if it is still mounted
    }
  }
  const left = mountsUnder(canonical);
  if (left.length > 0) {
    throw new MountError(
      `cannot reclaim ${dir}: ${left.join(', ')} is still mounted and this process cannot unmount it`,
      {
        path: left[0],
      },
    );
  }
  await removeLayerDir(canonical);
}
