// testEnvironmentOptions.branching (or a file's `@jest-environment-options {"branching": {...}}`,
// which, as in Jest, replaces the config's `branching` object rather than merging into it).
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ArgumentError, defaultBranchRoot } from 'branching';

export type KeepMode = 'never' | 'on-failure';

export interface BranchingOptions {
  /** The directory branched: the git work tree's top around rootDir by default, else rootDir. */
  root: string;
  perTest: boolean;
  keep: KeepMode;
  commit: boolean;
  network: boolean;
  /** false (or BRANCHING_NO_FALLBACK=1): refuse to run without the sandbox instead of falling back. */
  fallback: boolean;
}

type BooleanKey = 'perTest' | 'commit' | 'network' | 'fallback';

export const DEFAULTS = Object.freeze({ perTest: true, keep: 'never', commit: false, network: true, fallback: true });
const KEYS = ['root', 'perTest', 'keep', 'commit', 'network', 'fallback'];
const PREFIX = 'testEnvironmentOptions.branching';

function fail(key: string, message: string): never {
  const argument = key ? `${PREFIX}.${key}` : PREFIX;
  throw new ArgumentError(`jest-environment-branching: ${argument} ${message}`, { argument });
}

function checkBoolean(raw: Record<string, unknown>, key: BooleanKey): boolean {
  const value = raw[key];
  if (value === undefined) return DEFAULTS[key];
  if (typeof value !== 'boolean') fail(key, `must be true or false; got ${JSON.stringify(value)}`);
  return value;
}

function checkRoot(value: unknown, rootDir: string): string {
  if (value === undefined) {
    return defaultBranchRoot(rootDir);
  }
  if (typeof value !== 'string' || value === '') fail('root', `must be a non-empty path; got ${JSON.stringify(value)}`);
  const absolute = resolve(rootDir, value);
  let isDir: boolean;
  try {
    isDir = statSync(absolute).isDirectory();
  } catch {
    fail('root', `names ${absolute}, which does not exist`);
  }
  if (!isDir) fail('root', `names ${absolute}, which is not a directory`);
  return realpathSync(absolute);
}

/** Validated options with defaults; throws ArgumentError naming the offending option. */
export function parseOptions(raw: unknown, rootDir: string, env: NodeJS.ProcessEnv = process.env): BranchingOptions {
  const given = raw ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) fail('', `must be an object; got ${JSON.stringify(raw)}`);
  const obj = given as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KEYS.includes(key)) fail(key, `is not an option (known: ${KEYS.join(', ')})`);
  }
  const keep = obj.keep === undefined ? DEFAULTS.keep : obj.keep;
  if (keep !== 'never' && keep !== 'on-failure') {
    fail('keep', `must be 'never' or 'on-failure'; got ${JSON.stringify(obj.keep)}`);
  }
  return {
    root: checkRoot(obj.root, rootDir),
    perTest: checkBoolean(obj, 'perTest'),
    keep,
    commit: checkBoolean(obj, 'commit'),
    network: checkBoolean(obj, 'network'),
    fallback: checkBoolean(obj, 'fallback') && env.BRANCHING_NO_FALLBACK !== '1',
  };
}

/** Why this run may not fall back (for the refusal's message). */
export function noFallbackSource(env: NodeJS.ProcessEnv = process.env): string {
  return env.BRANCHING_NO_FALLBACK === '1' ? 'BRANCHING_NO_FALLBACK=1' : `${PREFIX}.fallback is false`;
}
