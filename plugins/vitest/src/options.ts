// The plugin's options (branching({...}), test.environmentOptions.branching, a file's docblock),
// validated once: bad input is an ArgumentError naming the option.
import { isAbsolute } from 'node:path';
import { core } from './core.ts';

export interface BranchingOptions {
  /** The directory to branch (absolute). Default: the top of the git work tree around Vitest's root, else that root. */
  root?: string;
  /** A nested branch per test, rolled back after it (sandbox only). Default true. */
  perTest?: boolean;
  /** 'on-failure': keep a failing test's branch and print its path. Default 'never'. */
  keep?: 'never' | 'on-failure';
  /** Land the writes of passing tests in the real tree. Default false. */
  commit?: boolean;
  /** false: the sandbox gets its own network namespace with only loopback. Default true. */
  network?: boolean;
  /** false: refuse to run where the sandbox is unavailable instead of degrading (also BRANCHING_NO_FALLBACK=1). Default true. */
  fallback?: boolean;
}

export type ResolvedOptions = Required<Omit<BranchingOptions, 'root'>> & { root: string | undefined };

const DEFAULTS: ResolvedOptions = {
  root: undefined,
  perTest: true,
  keep: 'never',
  commit: false,
  network: true,
  fallback: true,
};
const BOOLEANS = ['perTest', 'commit', 'network', 'fallback'] as const;

function fail(key: string, message: string): Error {
  return new core.ArgumentError(`vitest-environment-branching: branching.${key} ${message}`, {
    argument: `branching.${key}`,
  });
}

/** Validates options and fills in the defaults. */
export function resolveOptions(raw: unknown): ResolvedOptions {
  if (raw === undefined || raw === null) return { ...DEFAULTS };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new core.ArgumentError('vitest-environment-branching: the branching options must be an object', {
      argument: 'branching',
    });
  }
  for (const key of Object.keys(raw)) if (!(key in DEFAULTS)) throw fail(key, 'is not an option');
  const options = { ...DEFAULTS, ...(raw as BranchingOptions) };
  if (options.root !== undefined && (typeof options.root !== 'string' || !isAbsolute(options.root))) {
    throw fail('root', `must be an absolute path; got ${JSON.stringify(options.root)}`);
  }
  for (const key of BOOLEANS) {
    if (typeof options[key] !== 'boolean')
      throw fail(key, `must be true or false; got ${JSON.stringify(options[key])}`);
  }
  if (options.keep !== 'never' && options.keep !== 'on-failure') {
    throw fail('keep', `must be 'never' or 'on-failure'; got ${JSON.stringify(options.keep)}`);
  }
  return options;
}

/** Whether running without the sandbox is refused (the option, or BRANCHING_NO_FALLBACK=1 for a whole run). */
export function fallbackRefused(options: ResolvedOptions): boolean {
  return !options.fallback || process.env.BRANCHING_NO_FALLBACK === '1';
}

/**
 * The branching options a test file's docblock sets, or undefined. Vitest files a docblock's
 * `@vitest-environment-options {...}` under the environment's name (`{ jsdom: {...} }`), so the
 * documented form `{"branching": {...}}` arrives as `{ <env>: { branching: {...} } }`; under
 * `@vitest-environment branching` the object itself may be the options too.
 */
export function docblockOptions(environment: { name?: string; options?: unknown } | undefined): unknown {
  const all = environment?.options;
  if (!all || typeof all !== 'object') return undefined;
  const name = environment?.name === 'happy-dom' ? 'happyDOM' : environment?.name;
  const own = name ? (all as Record<string, unknown>)[name] : undefined;
  if (!own || typeof own !== 'object') return undefined;
  if ('branching' in own) return (own as { branching: unknown }).branching;
  return name === 'branching' ? own : undefined;
}
