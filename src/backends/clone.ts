import { readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import type { Change } from '../base/changes.ts';
import { copyTree, type Fingerprint, removeTree, scanTree } from '../base/fsutil.ts';
import type { Backend, BranchHandle, CreateContext, ParentView } from './backend.ts';

/**
 * The portable backend: a branch is a copy of its parent, made with reflinks
 * (FICLONE on Linux, clonefile on macOS) where the filesystem has them and a
 * plain copy elsewhere. It needs no privileges and runs on any OS.
 *
 * Change detection needs no content comparison: at creation every copied
 * inode's (ino, ctime) is recorded, and since ctime cannot be set by user
 * code, any write, chmod or replacement shows up as a different fingerprint.
 * Filesystems with coarse timestamps could give a write in the same clock
 * tick as the copy the same ctime, so files copied in the last moments of
 * creation are also compared byte for byte.
 */
export interface CloneHandle extends BranchHandle {
  readonly path: string;
  readonly manifest: Map<string, Fingerprint>;
  /** ctime (ns) below which a fingerprint match is trusted without a content check. */
  readonly trustedBeforeNs: bigint;
}

/** Coarse timestamp ticks are at most a few ms (jiffies); keep a wide margin. */
const COARSE_TICK_NS = 50_000_000n;

export class CloneBackend implements Backend<CloneHandle> {
  readonly kind = 'clone' as const;

  async create(parent: ParentView<CloneHandle>, context: CreateContext): Promise<CloneHandle> {
    const path = join(context.dir, 'tree');
    const manifest = new Map<string, Fingerprint>();
    await copyTree(parent.path, path, {
      onEntry: (rel, fp) => manifest.set(rel, fp),
      // node_modules and the like: hundreds of MB nobody's test writes, shared rather than copied.
      shared: { names: context.shared, base: context.workspace },
    });
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    return { path, manifest, trustedBeforeNs: nowNs - COARSE_TICK_NS };
  }

  async changes(handle: CloneHandle, parent: ParentView<CloneHandle>): Promise<Change[]> {
    const changes: Change[] = [];
    const seen = new Set<string>();
    const walked = new Set<string>(['']);
    const replaced = new Set<string>();
    const suspects: Array<{ rel: string; abs: string; fp: Fingerprint }> = [];
    // Directories come before their contents, so a replaced directory is known before anything below it.
    for (const { rel, fp: now } of await scanTree(handle.path)) {
      const parentRel = parentOf(rel);
      if (replaced.has(parentRel)) {
        if (now.kind === 'dir') replaced.add(rel);
        continue;
      }
      const abs = join(handle.path, rel);
      const before = handle.manifest.get(rel);
      seen.add(rel);
      if (now.kind === 'dir') {
        if (before?.kind === 'dir' && before.ino === now.ino) {
          if (before.mode !== now.mode) changes.push({ op: 'mkdir', path: rel, mode: now.mode });
          walked.add(rel);
        } else if (before) {
          // Replaced (a new inode, or a file turned into a directory): take the whole tree.
          changes.push({ op: 'tree', path: rel, source: abs });
          markSubtreeSeen(handle.manifest, rel, seen);
          replaced.add(rel);
        } else {
          changes.push({ op: 'mkdir', path: rel, mode: now.mode });
          walked.add(rel);
        }
        continue;
      }
      if (before && sameFingerprint(before, now)) {
        // Trusted unless it was copied so late that a write in the same clock tick could share its ctime.
        if (now.kind === 'file' && before.ctimeNs >= handle.trustedBeforeNs) suspects.push({ rel, abs, fp: now });
        continue;
      }
      this.pushEntry(changes, rel, abs, now);
    }
    for (const suspect of suspects) {
      if (!(await sameContent(suspect.abs, join(parent.path, suspect.rel)))) {
        this.pushEntry(changes, suspect.rel, suspect.abs, suspect.fp);
      }
    }
    for (const rel of handle.manifest.keys()) {
      // Only the topmost deleted path needs an operation; below a type change, the replacement covers it.
      if (rel !== '' && !seen.has(rel) && walked.has(parentOf(rel))) changes.push({ op: 'delete', path: rel });
    }
    return changes;
  }

  private pushEntry(changes: Change[], rel: string, abs: string, fp: Fingerprint): void {
    if (fp.kind === 'file') changes.push({ op: 'file', path: rel, source: abs });
    else if (fp.kind === 'symlink') changes.push({ op: 'symlink', path: rel, target: readlinkSync(abs) });
    // Sockets, fifos and devices are not carried over (copyTree skips them too).
  }

  stagingDir(_parent: ParentView<CloneHandle>, fallback: string): string {
    return fallback;
  }

  async destroy(handle: CloneHandle): Promise<void> {
    await removeTree(handle.path);
  }

  async reclaim(dir: string): Promise<void> {
    await removeTree(dir);
  }
}

function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return (
    a.kind === b.kind &&
    a.ino === b.ino &&
    a.ctimeNs === b.ctimeNs &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.mode === b.mode
  );
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

function markSubtreeSeen(manifest: Map<string, Fingerprint>, rel: string, seen: Set<string>): void {
  const prefix = `${rel}/`;
  for (const key of manifest.keys()) if (key.startsWith(prefix)) seen.add(key);
}

async function sameContent(a: string, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([fs.readFile(a), fs.readFile(b)]);
    return x.equals(y);
  } catch {
    return false;
  }
}
