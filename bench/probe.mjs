import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The backends that work here, in the order they are benchmarked. */
export function probeBackends(Workspace) {
  const dir = mkdtempSync(join(tmpdir(), 'branching-probe-'));
  const available = [];
  for (const kind of ['overlay', 'clone']) {
    try {
      new Workspace(dir, { backend: kind, onNotice: () => {} });
      available.push(kind);
    } catch (err) {
      console.log(`(${kind} backend unavailable: ${err.message})`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return available;
}
