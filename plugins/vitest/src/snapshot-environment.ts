// The snapshot environment the plugin installs (test.snapshotEnvironment). Snapshot files and
// inline-snapshot rewrites are the framework's own output: inside the sandbox they must reach the
// real tree, not the file's throw-away branch. The pool binds the real tree inside the sandbox;
// this maps every snapshot path under the root onto it.
import { relative } from 'node:path';
import { sandboxInfo } from './state.ts';

// Vitest 4.1+ exports the class from vitest/runtime, 4.0 only from vitest/snapshot.
const { VitestSnapshotEnvironment } = await import('vitest/runtime').catch(() => import('vitest/snapshot'));

const info = sandboxInfo();

function real(path: string): string {
  if (!info) return path;
  const rel = relative(info.root, path);
  if (rel.startsWith('..') || rel === '') return path;
  return `${info.realRoot}/${rel}`;
}

class BranchingSnapshotEnvironment extends VitestSnapshotEnvironment {
  override prepareDirectory(dir: string): Promise<void> {
    return super.prepareDirectory(real(dir));
  }
  override saveSnapshotFile(file: string, snapshot: string): Promise<void> {
    return super.saveSnapshotFile(real(file), snapshot);
  }
  override readSnapshotFile(file: string): Promise<string | null> {
    return super.readSnapshotFile(real(file));
  }
  override removeSnapshotFile(file: string): Promise<void> {
    return super.removeSnapshotFile(real(file));
  }
}

export default new BranchingSnapshotEnvironment();
