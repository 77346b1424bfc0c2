import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeLayerDir } from '../../src/base/layer-dir.ts';
import { commitAll } from './tree.ts';

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
    if (name !== '.bin') symlinkSync(join(from, name), join(to, name));
  }
  linkBins(join(from, '.bin'), join(to, '.bin'));
}

/**
 * The repository's .bin, except that `jest` and `vitest` are always the main versions: npm links the
 * bins of the aliased older versions (jest27, ...) under the same names, and whichever it linked last wins.
 */
function linkBins(from: string, to: string): void {
  mkdirSync(to);
  const main: Record<string, string> = { jest: 'jest/bin/jest.js', vitest: 'vitest/vitest.mjs' };
  for (const name of readdirSync(from)) {
    symlinkSync(main[name] ? join(from, '..', main[name]) : join(from, name), join(to, name));
  }
}

/** A git repository with packages/x (Vitest) and packages/y (Jest); node_modules at the top and in packages/x. */
export function monorepo(): { repo: string; cleanup: () => Promise<void> } {
  const parent = realpathSync(mkdtempSync(join(tmpdir(), 'branching-mono-')));
  const repo = join(parent, 'repo');
  cpSync(join(speculateFixtures, 'vitest-project'), join(repo, 'packages/x'), { recursive: true });
  cpSync(join(speculateFixtures, 'jest-project'), join(repo, 'packages/y'), { recursive: true });
  linkNodeModules(join(repoRoot, 'node_modules'), join(repo, 'node_modules'));
  // Vitest writes its bundled config into the nearest node_modules: the package's own, inside a package workspace.
  linkNodeModules(join(repoRoot, 'node_modules'), join(repo, 'packages/x/node_modules'));
  writeFileSync(join(repo, '.gitignore'), 'node_modules\n');
  commitAll(repo, 'monorepo');
  return { repo, cleanup: () => removeLayerDir(parent) };
}

/** A fixture patch as `git diff` at the top level writes it: paths under `pkg`. */
export function topLevelPatch(name: string, pkg: string): { diff: string; name: string } {
  const diff = readFileSync(patchFile(name), 'utf8')
    .replaceAll(' a/src/', ` a/${pkg}/src/`)
    .replaceAll(' b/src/', ` b/${pkg}/src/`);
  return { name: `${name} (top level)`, diff };
}
