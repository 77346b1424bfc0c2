// Jest's own packages must come from the Jest installation that is running us (a project may have
// Jest 29 while this plugin sits next to Jest 30), so they are resolved from the entry script first:
// jest-cli's bin in the CLI process, jest-worker's processChild.js in a worker.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const localRequire = createRequire(__filename);

function searchPaths(): string[] {
  const paths: string[] = [];
  if (require.main?.filename) paths.push(dirname(require.main.filename));
  if (process.argv[1]) paths.push(dirname(process.argv[1]));
  paths.push(process.cwd(), __dirname);
  return paths;
}

/** Resolves `name` as the running Jest would; `via` names a package to resolve it from (its own dependency). */
export function resolveJestModule(name: string, via?: string): string {
  const paths = searchPaths();
  if (via) {
    for (const p of paths) {
      try {
        const viaPath = localRequire.resolve(`${via}/package.json`, { paths: [p] });
        return localRequire.resolve(name, { paths: [dirname(viaPath)] });
      } catch {
        // not installed along this path: try the next
      }
    }
  }
  return localRequire.resolve(name, { paths });
}

export function requireJestModule<T = any>(name: string, via?: string): T {
  return localRequire(resolveJestModule(name, via)) as T;
}

/** Loads a module by absolute path (an environment class); ESM interop like Jest's requireOrDefault. */
export function requireFrom<T = any>(path: string): T {
  return localRequire(path) as T;
}

/** The version of the running Jest, from @jest/core (the CLI) or jest-runner (a worker); null if unknown. */
export function runningJestVersion(): string | null {
  for (const [name, via] of [
    ['@jest/core/package.json', undefined],
    ['jest-runner/package.json', '@jest/core'],
    ['jest-runner/package.json', undefined],
  ] as const) {
    try {
      return JSON.parse(readFileSync(resolveJestModule(name, via), 'utf8')).version as string;
    } catch {
      // not along these paths
    }
  }
  return null;
}
