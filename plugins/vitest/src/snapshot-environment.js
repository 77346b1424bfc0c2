// The snapshot environment the plugin installs (test.snapshotEnvironment). Snapshot files and
// inline-snapshot rewrites are the framework's own output: inside the sandbox they must reach the
// real tree, not the test file's throw-away branch. The pool bind-mounts the real root at
// `realView` inside the sandbox; this maps every snapshot path under the root onto it.
import { relative } from 'node:path';
import { VitestSnapshotEnvironment } from 'vitest/runtime';
import { sandboxInfo } from './state.js';

const info = sandboxInfo();

function real(path) {
  if (!info) return path;
  const rel = relative(info.root, path);
  if (rel.startsWith('..') || rel === '') return path;
  return `${info.realView}/${rel}`;
}

class BranchingSnapshotEnvironment extends VitestSnapshotEnvironment {
  prepareDirectory(dir) {
    return super.prepareDirectory(real(dir));
  }
  saveSnapshotFile(file, snapshot) {
    return super.saveSnapshotFile(real(file), snapshot);
  }
  readSnapshotFile(file) {
    return super.readSnapshotFile(real(file));
  }
  removeSnapshotFile(file) {
    return super.removeSnapshotFile(real(file));
  }
}

export default new BranchingSnapshotEnvironment();
