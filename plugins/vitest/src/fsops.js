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
  if (isWhiteout(st)) {
    if (existing) rmSync(dst, { recursive: true, force: true });
    return;
  }
  const mode = st.mode & 0o7777;
  if (st.isDirectory()) {
    const replace = existing && (!existing.isDirectory() || core.isOpaqueDir(src));
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

const isWhiteout = (st) => st.isCharacterDevice() && st.rdev === 0;

/**
 * Copies an overlay layer (from the in-memory per-test scratch to the state dir) for inspection:
 * files, directories and symlinks as they are; returns the paths the layer deleted (its
 * whiteouts), relative to `src`.
 */
export function copyLayer(src, dst, rel = '', deleted = []) {
  const st = lstatSync(src);
  if (st.isDirectory()) {
    mkdirSync(dst, { recursive: true });
    for (const name of readdirSync(src)) copyLayer(join(src, name), join(dst, name), join(rel, name), deleted);
    chmodSync(dst, st.mode & 0o7777);
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst);
  } else if (st.isFile()) {
    copyFileSync(src, dst);
    chmodSync(dst, st.mode & 0o7777);
  } else if (isWhiteout(st)) {
    deleted.push(rel);
  }
  return deleted;
}

/** Removes the whiteouts of a kept layer on disk and returns their paths (relative to `dir`). */
export function takeWhiteouts(dir, rel = '', deleted = []) {
  for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const path = join(rel, entry.name);
    if (entry.isDirectory()) takeWhiteouts(dir, path, deleted);
    else if (entry.isCharacterDevice() && isWhiteout(lstatSync(join(dir, path)))) {
      rmSync(join(dir, path));
      deleted.push(path);
    }
  }
  return deleted;
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
