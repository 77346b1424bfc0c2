/**
 * Removing overlay scratch directories (upper, work and whatever sits beside
 * them), and the mount-table reads that make that safe.
 *
 * overlayfs creates `work/work` (and, for volatile mounts,
 * `work/work/incompat/volatile`) with mode 000: its owner cannot list or
 * empty it without a chmod first, so a plain `rm -rf` fails for everyone but
 * root. And a recursive rm walks into mount points: removing a scratch dir
 * while a bind of the real tree is still mounted inside it would delete the
 * real tree. Both are handled here, once, with the other mount-table reads
 * of layer stacks (which mount is on top of a path, which mount a path is on).
 */
import {
  chmodSync,
  closeSync,
  constants as fsc,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { hasErrno, LayerError, MountError } from './errors.ts';
import { removeTree, removeTreeSync } from './fsutil.ts';

function isUnder(path: string, root: string): boolean {
  return path === root || root === '/' || path.startsWith(`${root}/`);
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
export function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Mount points at or under `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const found: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const point = unescapeMountPath(field);
    if (isUnder(point, dir)) found.push(point);
  }
  return found.sort((a, b) => b.length - a.length);
}

/** The id of the mount `path` is on (from /proc/self/fdinfo): two paths on one fs but different mounts cannot rename between them. */
export function mountIdOf(path: string): number {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    const id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    if (id === undefined) throw new MountError(`cannot tell which mount ${path} is on`, { path });
    return Number(id);
  } finally {
    closeSync(fd);
  }
}

/**
 * Throws while anything is mounted at or under `dir`; with `keepDir`, mounts at `dir` itself are
 * allowed (only its content is to be removed).
 */
function refuseIfMounted(dir: string, { keepDir = false } = {}): void {
  let mounted: string[];
  let real: string;
  try {
    real = realpathSync(dir);
    mounted = mountsUnder(real);
  } catch {
    return; // gone already, or no /proc (not Linux, where nothing is mounted by us either)
  }
  if (keepDir) mounted = mounted.filter((point) => point !== real);
  if (mounted.length > 0) {
    throw new MountError(
      `refusing to ${keepDir ? 'empty' : 'remove'} ${dir}: ${mounted.join(', ')} is still mounted there, and removing it would delete through the mount`,
      { path: mounted[0], code: 'ERR_BRANCHING_STILL_MOUNTED' },
    );
  }
}

/**
 * Removes everything inside `dir` and keeps `dir` itself (which may be a mount point, or have layers
 * mounted over it). Throws a MountError, removing nothing, while anything is mounted inside it.
 */
export function emptyDirSync(dir: string): void {
  const names = readdirSync(dir);
  if (names.length === 0) return;
  refuseIfMounted(dir, { keepDir: true });
  for (const name of names) removeTreeSync(join(dir, name));
}

/** The work dirs overlayfs locks: unlocked up front, since nearly every layer dir has one. */
function unlockWorkDirsSync(dir: string): void {
  for (const work of [join(dir, 'work', 'work'), join(dir, 'work')]) {
    try {
      chmodSync(work, 0o700);
    } catch {
      // no such work dir
    }
  }
}

/**
 * rm -rf of an overlay scratch directory (a layer dir holding `upper` and
 * `work`, a work dir, or a whole tree of them) that is no longer mounted.
 * Throws a MountError, removing nothing, while anything is mounted under it.
 */
export function removeLayerDirSync(dir: string): void {
  refuseIfMounted(dir);
  unlockWorkDirsSync(dir);
  try {
    rmSync(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    if (!hasErrno(err, 'EACCES', 'EPERM', 'ENOTEMPTY')) throw err;
  }
  // A test may have left read-only directories in its upper, and volatile mounts lock deeper work dirs:
  // removeTreeSync unlocks every directory on its way down.
  removeTreeSync(dir);
}

/** removeLayerDirSync without blocking the event loop on a large tree. */
export async function removeLayerDir(dir: string): Promise<void> {
  refuseIfMounted(dir);
  unlockWorkDirsSync(dir);
  // removeTree unlocks whatever else is locked (read-only dirs a test left, volatile work dirs) and retries.
  await removeTree(dir);
}

/**
 * The topmost mount at `target` must be the overlay whose upper dir is
 * `upper`; a later mount over the target would otherwise be unmounted in its
 * place. Mounts list in the order they were made, so the last line for a
 * mount point is the one on top.
 */
export function assertTopMountIs(target: string, upper: string): void {
  let top: string | null = null;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields[4] && unescapeMountPath(fields[4]) === target) top = line;
  }
  if (!top) {
    throw new LayerError(`the layer over ${target} is no longer mounted (unmounted by someone else?)`, {
      path: target,
      code: 'ERR_BRANCHING_LAYER_GONE',
    });
  }
  const [fstype, , superOptions = ''] = top.split(' - ')[1]?.split(' ') ?? [];
  const upperOption = superOptions.split(',').find((o) => o.startsWith('upperdir='));
  if (fstype !== 'overlay' || !upperOption || unescapeMountPath(upperOption.slice('upperdir='.length)) !== upper) {
    throw new LayerError(`something else is mounted over the top layer at ${target}: unmount it first`, {
      path: target,
      code: 'ERR_BRANCHING_LAYER_COVERED',
    });
  }
}
