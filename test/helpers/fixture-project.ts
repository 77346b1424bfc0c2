import { cpSync, mkdtempSync, realpathSync, symlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const speculateFixtures = join(repoRoot, 'test', 'fixtures', 'speculate');
export const patchFile = (name: string): string => join(speculateFixtures, 'patches', `${name}.diff`);

/**
 * A fresh copy of a fixture project in a temp dir. Its node_modules is a
 * symlink to the repository's, so the copy (and every branch of it, which
 * copies the symlink) resolves vitest and jest without an install.
 */
export function copyFixture(name: string): { path: string; cleanup: () => Promise<void> } {
  const parent = realpathSync(mkdtempSync(join(tmpdir(), 'branching-spec-')));
  const path = join(parent, name);
  cpSync(join(speculateFixtures, name), path, { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(path, 'node_modules'));
  return { path, cleanup: () => fs.rm(parent, { recursive: true, force: true }) };
}
