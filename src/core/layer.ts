/**
 * A stack of overlay layers mounted in place over one directory (a project
 * root), so that every path of it (relative, absolute, __dirname) sees the
 * top layer: the test plugins push a layer per test file and one per test.
 *
 * overlayfs refuses to stack more than two overlays (the kernel's maximum
 * filesystem stacking depth), so a layer cannot simply take the current
 * merged view at the target as its lower dir. Instead the target's original
 * content is bound once to a hidden path of the scratch dir, and layer N is
 * mounted with `lowerdir=upperN-1:...:upper1:original`: every layer is one
 * overlay deep however many are stacked, and the layers below stay mounted
 * (covered), so popping the top one shows the one below again.
 *
 * Each layer also keeps a descriptor of the target taken just before it was
 * mounted: /proc/self/fd/<fd> is the view under the layer, which changes()
 * compares against.
 */
import {
  chmodSync,
  closeSync,
  constants as fsc,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  realpathSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { chooseMounter, type Mounter, readUpperChanges, readUpperChangesSync } from '../backends/overlay.ts';
import { applyChangesSync, type Change } from '../base/changes.ts';
import { ArgumentError, LayerError, MountError } from '../base/errors.ts';
import { assertTopMountIs, emptyDirSync, removeLayerDir, removeLayerDirSync } from '../base/layer-dir.ts';
import { belowView, describeChanges, existsIn, type LayerChange } from './layer-changes.ts';
import {
  canonicalDir,
  checkKeepDest,
  checkWorkspaceRoot,
  commitIntoWorkspace,
  cwdUnder,
  isUnder,
  type KeptLayer,
  keepUpper,
  makeLayerDirs,
  reenter,
  scanUpper,
} from './layer-ops.ts';

export type { LayerChange, LayerChangeKind } from './layer-changes.ts';
export type { KeptLayer } from './layer-ops.ts';

export interface LayerStackOptions {
  /** The directory the layers are mounted over (absolute). */
  target: string;
  /** Where the layers' upper and work dirs go (absolute, outside the target), e.g. a tmpfs. */
  scratch: string;
  /** How mounts are made; by default chooseMounter()'s (mount(2) as root, else the helper of `branching run`). */
  mounter?: Mounter;
}

export interface LayerInfo {
  readonly name: string;
  /** 1 for the bottom layer. */
  readonly depth: number;
  /**
   * The layer's upper dir: what it changed, in overlayfs's format. A layer pushed over an empty
   * view needs no mount (see push()): its upper is the target itself.
   */
  readonly upper: string;
}

interface Layer extends LayerInfo {
  readonly dir: string;
  readonly work: string;
  /** A descriptor of the target taken just before this layer was mounted: the view under it. */
  readonly below: number;
  /** The upper root's mode and owner as mounted: a layer that changed nothing still has them. */
  readonly root: { mode: number; uid: number; gid: number };
  /** The overlay's device number, which no other mount has while this one is mounted. */
  readonly dev: number;
  /** Pushed over an empty view: not mounted, its writes go to the view itself, and ending it empties that. */
  readonly direct: boolean;
}

export interface LayerCommitOptions {
  /** The workspace's state dir (as for Workspace): it must be on the mount of the workspace root. */
  stateDir?: string;
}

export class LayerStack {
  readonly target: string;
  readonly scratch: string;
  readonly mounter: Mounter;
  private readonly layers: Layer[] = [];
  /** Holds `base` (the bind of the original target) and one dir per layer; exists while depth > 0. */
  private stackDir: string | null = null;
  private made = 0;
  /** Removals of unmounted layer dirs still running (off the caller's path: see settled()). */
  private readonly removing = new Set<Promise<void>>();
  private removalError: unknown = null;
  /** A popped layer that changed nothing, still mounted for the next push() (see popToSpare()). */
  private spare: Layer | null = null;

  constructor(options: LayerStackOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ArgumentError('LayerStack needs { target, scratch }', { argument: 'options' });
    }
    this.target = canonicalDir(options.target, 'target');
    this.scratch = canonicalDir(options.scratch, 'scratch');
    if (isUnder(this.scratch, this.target)) {
      throw new ArgumentError(
        `scratch ${this.scratch} is inside the target ${this.target}: the first layer would hide it, and overlayfs refuses overlapping layers`,
        { argument: 'scratch', path: this.scratch, code: 'ERR_BRANCHING_LAYER_SCRATCH_INSIDE' },
      );
    }
    this.mounter = options.mounter ?? defaultMounter();
  }

  get depth(): number {
    return this.layers.length;
  }

  get top(): LayerInfo | null {
    const layer = this.layers.at(-1);
    return layer ? infoOf(layer) : null;
  }

  /**
   * Mounts a new layer over the target: it sees everything below, and its writes stay in it. Over an
   * empty view (a TMPDIR between tests, typically) nothing is mounted: what the layer holds is then
   * whatever the target holds, and ending it empties the target again.
   */
  push(name = `layer-${this.layers.length + 1}`): LayerInfo {
    if (typeof name !== 'string' || name === '') {
      throw new ArgumentError('a layer name must be a non-empty string', { argument: 'name' });
    }
    if (this.spare && this.isUnchanged(this.spare)) return this.takeSpare(name);
    this.settle();
    if (readdirSync(this.target).length === 0) return this.pushDirect(name);
    const stackDir = this.stackDir ?? this.openStack();
    const dir = join(stackDir, String(++this.made));
    const cwd = cwdUnder(this.target);
    let layer: Layer;
    try {
      layer = this.mountLayer(name, stackDir, dir);
    } catch (err) {
      removeLayerDirSync(dir);
      if (this.layers.length === 0) this.closeStack();
      throw mountError(
        `cannot mount layer ${JSON.stringify(name)} over ${this.target}`,
        this.target,
        err,
        this.mounter,
        { layers: this.layers.length + 1 },
      );
    }
    this.layers.push(layer);
    reenter(cwd, this.target);
    return infoOf(layer);
  }

  private mountLayer(name: string, stackDir: string, dir: string): Layer {
    const { upper, work } = makeLayerDirs(dir);
    // The merged root shows the upper root's owner and mode: make them the target's.
    const root = statSync(this.target);
    chmodSync(upper, root.mode & 0o7777);
    if (process.getuid?.() === 0) lchownSync(upper, root.uid, root.gid);
    const below = openSync(this.target, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      // A direct layer's writes are in the upper (or the base) under it.
      const uppers = this.layers.filter((l) => !l.direct).map((l) => l.upper);
      const lowers = [...uppers.reverse(), join(stackDir, 'base')];
      this.mounter.mount({ target: this.target, lowers, upper, work });
    } catch (err) {
      closeSync(below);
      throw err;
    }
    const { mode, uid, gid } = statSync(upper);
    const { dev } = statSync(this.target);
    return {
      name,
      depth: this.layers.length + 1,
      upper,
      work,
      dir,
      below,
      root: { mode, uid, gid },
      dev,
      direct: false,
    };
  }

  private pushDirect(name: string): LayerInfo {
    const { mode, uid, gid, dev } = statSync(this.target);
    // The view under the layer is empty: a descriptor of a removed empty directory shows just that.
    const empty = mkdtempSync(join(this.scratch, '.branching-empty-'));
    const below = openSync(empty, fsc.O_RDONLY | fsc.O_DIRECTORY);
    rmdirSync(empty);
    const layer: Layer = {
      name,
      depth: this.layers.length + 1,
      upper: this.target,
      work: '',
      dir: '',
      below,
      root: { mode, uid, gid },
      dev,
      direct: true,
    };
    this.layers.push(layer);
    return infoOf(layer);
  }

  /** Ends a direct layer: the target is emptied again, with its own mode and owner as they were. */
  private endDirect(layer: Layer): void {
    const cwd = cwdUnder(this.target);
    emptyDirSync(this.target);
    const st = statSync(this.target);
    if (st.mode !== layer.root.mode) chmodSync(this.target, layer.root.mode & 0o7777);
    if ((st.uid !== layer.root.uid || st.gid !== layer.root.gid) && process.getuid?.() === 0) {
      lchownSync(this.target, layer.root.uid, layer.root.gid);
    }
    closeSync(layer.below);
    this.layers.pop();
    reenter(cwd, this.target);
  }

  /** The spare becomes the top layer again: it is mounted and shows exactly the layer below. */
  private takeSpare(name: string): LayerInfo {
    const layer = { ...(this.spare as Layer), name };
    this.spare = null;
    this.layers.push(layer);
    return infoOf(layer);
  }

  private isUnchanged(layer: Layer): boolean {
    const st = statSync(layer.upper);
    return (
      st.mode === layer.root.mode &&
      st.uid === layer.root.uid &&
      st.gid === layer.root.gid &&
      readdirSync(layer.upper).length === 0
    );
  }

  /**
   * Unmounts the top layer: the target shows the layer below again. Its scratch is removed in the
   * background, since a test suite pops a layer per test: settled() waits for that.
   */
  pop(): void {
    this.settle();
    const layer = this.requireTop('pop');
    if (layer.direct) this.endDirect(layer);
    else {
      this.unmountTop(layer);
      this.discard(layer.dir);
    }
    if (this.layers.length === 0) this.closeStack();
  }

  /**
   * pop(), for a caller whose next step is push(): a top layer that changed nothing stays mounted
   * as a spare, and that push() takes it over instead of unmounting and mounting (a test suite's
   * common case: most tests write nothing). The target shows the layer below either way. What is
   * written while the spare is up belongs to the layer below: settle() (which every other method
   * calls first) applies it there. Descriptors opened while the spare is up still see the spare.
   */
  popToSpare(): void {
    this.settle();
    const layer = this.requireTop('popToSpare');
    // A direct layer costs no mount to end or to push again.
    if (layer.direct || !this.isUnchanged(layer)) {
      this.pop();
      return;
    }
    this.layers.pop();
    this.spare = layer;
  }

  /** Unmounts the spare, if one is up, applying what was written while it was up to the layer below. */
  settle(): void {
    const spare = this.spare;
    if (!spare) return;
    this.spare = null;
    const written = this.isUnchanged(spare)
      ? []
      : readUpperChangesSync({ upper: spare.upper, merged: this.target }, this.mounter);
    try {
      // The view under the spare, through the descriptor taken before it was mounted: the layer below.
      if (written.length > 0) applyChangesSync(written, belowView(spare.below));
    } finally {
      this.unmountTop(spare, { layer: false });
      this.discard(spare.dir);
      if (this.layers.length === 0) this.closeStack();
    }
  }

  /**
   * Resolves once the scratch of every popped layer is removed; rejects with the first removal
   * that failed (the scratch dir then still holds that layer's files).
   */
  async settled(): Promise<void> {
    while (this.removing.size > 0) await Promise.all(this.removing);
    const err = this.removalError;
    this.removalError = null;
    if (err) throw err;
  }

  /** Removes an unmounted layer dir (or, after its layers, the stack dir) in the background. */
  private discard(dir: string, after: Promise<unknown>[] = []): void {
    const removal: Promise<void> = Promise.all(after)
      .then(() => removeLayerDir(dir))
      .catch((err: unknown) => {
        this.removalError ??= err;
      })
      .finally(() => this.removing.delete(removal));
    this.removing.add(removal);
  }

  /** What the top layer changed relative to the view under it, parents before children. */
  async changes(): Promise<LayerChange[]> {
    this.settle();
    const layer = this.requireTop('changes');
    const raw = await readUpperChanges({ upper: layer.upper, merged: this.target }, this.mounter);
    return describeChanges(raw, belowView(layer.below));
  }

  /**
   * Keeps the top layer for inspection, then pops it: its upper dir becomes
   * `dest/changes` (whiteouts removed), `dest/deleted.txt` lists what it
   * deleted, and `dest/opaque.txt` (when there are any) the directories it
   * replaced wholesale.
   */
  async keep(dest: string): Promise<KeptLayer> {
    this.settle();
    const layer = this.requireTop('keep');
    const destDir = checkKeepDest(dest, this.forbiddenPaths());
    if (layer.direct) return this.keepDirect(destDir);
    const scan = scanUpper(layer.upper, this.mounter.xattrPrefix);
    // Only a directory that hides something below was replaced: new directories may be marked opaque too.
    const opaque = scan.opaque.filter((rel) => existsIn(belowView(layer.below), rel));
    this.unmountTop(layer);
    try {
      return await keepUpper(layer.upper, destDir, { deleted: scan.deleted, opaque });
    } finally {
      removeLayerDirSync(layer.dir);
      if (this.layers.length === 0) this.closeStack();
    }
  }

  /** keep() of a direct layer: the target's content is copied out (it deleted nothing), then emptied. */
  private async keepDirect(destDir: string): Promise<KeptLayer> {
    const kept = await keepUpper(this.target, destDir, { deleted: [], opaque: [], copy: true });
    this.pop();
    return kept;
  }

  /**
   * Lands the top layer's changes (relative to the view under it) in the real
   * tree at `workspaceRoot` through the workspace's crash-safe journal, then
   * pops the layer. `workspaceRoot` must show the real tree, not the layers:
   * a path outside the target (the plugins' sandboxes bind the real project
   * at one). A failed commit leaves the layer mounted, to keep or pop.
   */
  async commitTo(workspaceRoot: string, options: LayerCommitOptions = {}): Promise<void> {
    this.settle();
    const layer = this.requireTop('commitTo');
    const root = checkWorkspaceRoot(workspaceRoot, this.forbiddenPaths());
    const changes: Change[] = await readUpperChanges({ upper: layer.upper, merged: this.target }, this.mounter, {
      forCommit: true,
    });
    await commitIntoWorkspace(root, changes, options.stateDir);
    this.pop();
  }

  private forbiddenPaths(): string[] {
    return this.stackDir ? [this.target, this.stackDir] : [this.target];
  }

  private requireTop(what: string): Layer {
    const layer = this.layers.at(-1);
    if (!layer) {
      throw new LayerError(`${what}() needs a layer, and the layer stack over ${this.target} is empty`, {
        path: this.target,
        code: 'ERR_BRANCHING_LAYER_EMPTY',
      });
    }
    return layer;
  }

  /** Binds the target's original content into a fresh stack dir, where every layer finds it. */
  private openStack(): string {
    const dir = realpathSync(mkdtempSync(join(this.scratch, '.branching-layers-')));
    const base = join(dir, 'base');
    mkdirSync(base, { mode: 0o700 });
    try {
      this.mounter.bind(this.target, base);
    } catch (err) {
      removeLayerDirSync(dir);
      throw mountError(`cannot bind ${this.target} to ${base}`, base, err, this.mounter);
    }
    this.stackDir = dir;
    return dir;
  }

  private closeStack(): void {
    const dir = this.stackDir;
    if (!dir) return;
    this.mounter.unmount(join(dir, 'base'));
    this.stackDir = null;
    this.discard(dir, [...this.removing]);
  }

  /** Unmounts the top layer (which must be this stack's: never someone else's mount over the target). */
  private unmountTop(layer: Layer, { layer: listed = true } = {}): void {
    // The target showing the layer's device number means the layer is on top; anything else gets
    // the mount table read, which says what happened.
    if (statSync(this.target).dev !== layer.dev) assertTopMountIs(this.target, layer.upper);
    const cwd = cwdUnder(this.target);
    this.mounter.unmount(this.target);
    closeSync(layer.below);
    if (listed) this.layers.pop();
    reenter(cwd, this.target);
  }
}

function infoOf(layer: Layer): LayerInfo {
  return { name: layer.name, depth: layer.depth, upper: layer.upper };
}

function defaultMounter(): Mounter {
  const choice = chooseMounter();
  if (!choice.mounter) throw new MountError(`a layer stack needs overlay mounts, and ${choice.reason}`);
  return choice.mounter;
}

function mountError(message: string, path: string, err: unknown, mounter: Mounter, { layers = 1 } = {}): MountError {
  const e = err as Error & { errnoCode?: string; code?: string };
  const code = e.errnoCode ?? e.code;
  let hint = '';
  if (mounter.kind === 'helper' && code === 'EPERM') {
    hint = '; the target and the scratch dir must both be under a directory `branching run` allows (`--allow <dir>`)';
  } else if ((code === 'EINVAL' || code === 'ENAMETOOLONG' || code === 'E2BIG') && layers > 1) {
    hint = `; the lower dirs of ${layers} layers may exceed the one page mount options can fill: use a shorter scratch path or fewer layers`;
  }
  return new MountError(`${message}: ${e.message}${hint}`, { path, cause: err });
}
