import type { Change } from '../base/changes.ts';

export type BackendKind = 'overlay' | 'clone' | 'branchfs';
export type BackendChoice = BackendKind | 'auto';
export const BACKEND_KINDS: readonly BackendKind[] = ['overlay', 'clone', 'branchfs'];

/** Backend-private state of one branch. */
export interface BranchHandle {
  /** Directory where the branch's files are visible: a real directory, safe as any tool's cwd. */
  readonly path: string;
}

/** What a backend sees of a branch's parent: the workspace root, or another branch. */
export interface ParentView<H extends BranchHandle = BranchHandle> {
  /** `main`, or the parent branch's id. */
  readonly id: string;
  /** Where the parent's files are visible (the target of a child's commit). */
  readonly path: string;
  /** The parent branch's handle; undefined for the workspace root. */
  readonly handle?: H;
}

export interface CreateContext {
  /** A fresh private directory for this branch, inside the workspace's state dir. */
  readonly dir: string;
  /** Workspace root (the main tree). */
  readonly workspace: string;
  /**
   * Directory names (at any depth) that a copying backend shares with the workspace instead of
   * copying: a symlink to the workspace's own directory. A copy-on-write backend may ignore it.
   */
  readonly shared: readonly string[];
}

/**
 * One backend per file, behind this interface, chosen by one factory
 * (backends/factory.ts). The core (core/workspace.ts) owns naming, locking,
 * versions and the crash-safe journal; a backend only makes a branch's tree,
 * says what changed in it, and tears it down.
 */
export interface Backend<H extends BranchHandle = BranchHandle> {
  readonly kind: BackendKind;
  /** Materialises a branch of `parent`. */
  create(parent: ParentView<H>, context: CreateContext): Promise<H>;
  /** What the branch changed relative to its parent, ordered parents-first. */
  changes(handle: H, parent: ParentView<H>): Promise<Change[]>;
  /**
   * Where a child's commit into this branch (or into main, with `handle`
   * undefined) is staged: a directory on the same mount as the target.
   */
  stagingDir(parent: ParentView<H>, fallback: string): string;
  /** Releases everything the branch holds (mounts, directories). Idempotent. */
  destroy(handle: H): Promise<void>;
  /** Reclaims the private dir of a branch whose owning process died. */
  reclaim(dir: string): Promise<void>;
}

/**
 * Why a backend can or cannot serve a workspace here.
 */
export interface BackendProbe {
  kind: BackendKind;
  available: boolean;
  /** Why it is unavailable, or how it was chosen: shown in notices. */
  reason: string;
  create?: () => Backend;
}
