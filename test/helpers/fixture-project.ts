import { cpSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeLayerDir } from '../../src/base/layer-dir.ts';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const speculateFixtures = join(repoRoot, 'test', 'fixtures', 'speculate');
export const patchFile = (name: string): string => join(speculateFixtures, 'patches', `${name}.diff`);

/**
 * A fresh copy of a fixture project in a temp dir. Its node_modules is a
 * real directory of symlinks to the repository's packages, so the copy (and
 * every branch of it, which copies the links) resolves vitest and jest
 * without an install, while what runners write into node_modules (vitest's
 * .vite-temp bundled config) stays in the copy: the repository's
 * node_modules may not be writable (the tests also run as nobody).
 */
export function copyFixture(name: string): { path: string; cleanup: () => Promise<void> } {
  const parent = realpathSync(mkdtempSync(join(tmpdir(), 'branching-spec-')));
  const path = join(parent, name);
  cpSync(join(speculateFixtures, name), path, { recursive: true });
  linkNodeModules(join(repoRoot, 'node_modules'), join(path, 'node_modules'));
  return { path, cleanup: () => removeLayerDir(parent) };
}

export function linkNodeModules(from: string, to: string): void {
  mkdirSync(to);
  for (const name of readdirSync(from)) {
    if (name.startsWith('.') && name !== '.bin') continue; // caches and npm's own bookkeeping
    symlinkSync(join(from, name), join(to, name));
  }
}
