// Reading an overlayfs upper directory: the changes a branch made to the tree below it. Used to
// commit a branch (apply its changes to the tree beneath, seen through the parent's mount) and to
// let snapshot files written under `jest -u` reach the real tree.
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const { dirname, join } = require('node:path');
const { isOpaqueDir } = require('branching');

/** A whiteout (deletion marker) is a character device with device number 0/0. */
function isWhiteout(st) {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Puts the non-directory `source` at `target`, replacing what is there (written aside, then renamed). */
function placeEntry(source, target, st) {
  // not the pid: every sandboxed worker is pid 2 of its own PID namespace
  const aside = `${target}.branching-${randomBytes(6).toString('hex')}`;
  fs.rmSync(aside, { force: true, recursive: true });
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), aside);
  else {
    fs.copyFileSync(source, aside);
    fs.chmodSync(aside, st.mode & 0o7777);
  }
  const existing = fs.lstatSync(target, { throwIfNoEntry: false });
  if (existing?.isDirectory()) fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(aside, target);
}

function copyTreeInto(source, target) {
  fs.cpSync(source, target, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
}

/** Applies every change recorded in `upper` to `target` (a tree showing the branch's parent). */
function applyUpper(upper, target) {
  for (const name of fs.readdirSync(upper)) {
    const source = join(upper, name);
    const dest = join(target, name);
    const st = fs.lstatSync(source);
    if (isWhiteout(st)) {
      fs.rmSync(dest, { recursive: true, force: true });
    } else if (st.isDirectory()) {
      // An opaque directory replaces the one below (it was deleted and made again in the branch).
      const opaque = isOpaqueDir(source);
      const existing = fs.lstatSync(dest, { throwIfNoEntry: false });
      if (existing && (opaque || !existing.isDirectory())) fs.rmSync(dest, { recursive: true, force: true });
      if (!fs.existsSync(dest)) fs.mkdirSync(dest);
      fs.chmodSync(dest, st.mode & 0o7777);
      if (opaque) copyTreeInto(source, dest);
      else applyUpper(source, dest);
    } else {
      placeEntry(source, dest, st);
    }
  }
}

/**
 * Applies what the branch did to one path (relative to the tree root): a new version is copied,
 * a whiteout deletes it. Returns whether the branch touched it.
 */
function applyUpperPath(upper, target, rel) {
  const source = join(upper, rel);
  const st = fs.lstatSync(source, { throwIfNoEntry: false });
  if (!st || st.isDirectory()) return false;
  const dest = join(target, rel);
  if (isWhiteout(st)) fs.rmSync(dest, { force: true });
  else {
    fs.mkdirSync(dirname(dest), { recursive: true });
    placeEntry(source, dest, st);
  }
  return true;
}

/**
 * Makes every directory under `dir` searchable and writable by its owner: overlayfs leaves mode-000
 * directories in its work dir (work/work, and work/work/incompat/volatile for volatile mounts),
 * which an unprivileged owner could not otherwise empty.
 */
function unlockTree(dir) {
  try {
    fs.chmodSync(dir, 0o700);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) unlockTree(join(dir, entry.name));
    }
  } catch {
    // gone already
  }
}

/** rm -rf of a layer directory (upper, work, tmp), coping with overlayfs's mode-000 directories. */
function removeLayerDir(dir) {
  unlockTree(join(dir, 'work'));
  fs.rmSync(dir, { recursive: true, force: true });
}

module.exports = { applyUpper, applyUpperPath, isWhiteout, removeLayerDir, unlockTree };
