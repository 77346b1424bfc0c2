// File operations on overlay upper directories: landing a branch's writes in the real tree
// (`commit`), and removing scratch trees that tests may have left unreadable.
import {
  chmodSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { core } from './core.js';

function lstatOrNull(path) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** An opaque directory replaces the lower one instead of merging with it (rm -rf d; mkdir d). */
function isOpaque(dir) {
  const addon = core.nativeAddon();
  if (!addon) return false;
  for (const name of ['user.overlay.opaque', 'trusted.overlay.opaque']) {
    try {
      if (addon.getxattr(dir, name)?.toString() === 'y') return true;
    } catch {
      // trusted.* is unreadable without CAP_SYS_ADMIN: then it was not an overlay of ours
    }
  }
  return false;
}

/**
 * Applies the overlay upper directory `upper` to `target`: files, symlinks and directories are
 * copied, a whiteout (0/0 character device) deletes, an opaque directory replaces. Never follows a
 * symlink of the target tree: an existing entry is removed before a new one is put in its place.
 */
export function applyUpper(upper, target) {
  for (const name of readdirSync(upper)) applyEntry(join(upper, name), join(target, name));
}

function applyEntry(src, dst) {
  const st = lstatSync(src);
  const existing = lstatOrNull(dst);
  if (st.isCharacterDevice() && st.rdev === 0) {
    if (existing) rmSync(dst, { recursive: true, force: true });
    return;
  }
  const mode = st.mode & 0o7777;
  if (st.isDirectory()) {
    const replace = existing && (!existing.isDirectory() || isOpaque(src));
    if (replace) rmSync(dst, { recursive: true, force: true });
    if (!existing || replace) mkdirSync(dst);
    for (const name of readdirSync(src)) applyEntry(join(src, name), join(dst, name));
    chmodSync(dst, mode);
    return;
  }
  if (existing) rmSync(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst);
  } else if (st.isFile()) {
    copyFileSync(src, dst);
    chmodSync(dst, mode);
    utimesSync(dst, st.atime, st.mtime);
  }
}

/**
 * Copies an overlay layer (from the in-memory per-test scratch to the state dir) as it is:
 * whiteouts stay whiteouts, so the copy still says what the test deleted.
 */
export function copyLayer(src, dst) {
  const st = lstatSync(src);
  if (st.isDirectory()) {
    mkdirSync(dst, { recursive: true });
    for (const name of readdirSync(src)) copyLayer(join(src, name), join(dst, name));
    chmodSync(dst, st.mode & 0o7777);
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst);
  } else if (st.isFile()) {
    copyFileSync(src, dst);
    chmodSync(dst, st.mode & 0o7777);
  } else if (st.isCharacterDevice() && st.rdev === 0) {
    core.nativeAddon()?.mknodWhiteout(dst);
  }
}

/** rm -rf that also copes with directories a test made unreadable and overlayfs's mode-000 work dirs. */
export function forceRemove(dir) {
  try {
    rmSync(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    if (err?.code !== 'EACCES' && err?.code !== 'EPERM' && err?.code !== 'ENOTEMPTY') throw err;
  }
  makeWritable(dir);
  rmSync(dir, { recursive: true, force: true });
}

function makeWritable(dir) {
  try {
    chmodSync(dir, 0o700);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) makeWritable(join(dir, entry.name));
    }
  } catch {
    // not ours to change: rm reports it
  }
}

/** forceRemove without blocking the event loop (the main Vitest process removes worker scratch). */
export async function forceRemoveAsync(dir) {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    forceRemove(dir);
  }
}
