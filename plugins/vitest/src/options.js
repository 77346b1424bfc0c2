// The options of `environmentOptions.branching` (and of a file's @vitest-environment-options),
// validated once: bad input is an ArgumentError naming the option.
import { isAbsolute } from 'node:path';
import { core } from './core.js';

/**
 * @typedef {object} BranchingOptions
 * @property {string} [root]  the directory to branch (default: Vitest's root)
 * @property {boolean} [perTest]  a nested branch per test, rolled back after it (default true)
 * @property {'never' | 'on-failure'} [keep]  keep a failing test's branch and print its path (default 'never')
 * @property {boolean} [commit]  land the writes of passing tests in the real tree (default false)
 * @property {boolean} [network]  false: the sandbox gets its own network namespace with only loopback (default true)
 */

const DEFAULTS = { root: undefined, perTest: true, keep: 'never', commit: false, network: true };

function fail(key, message) {
  return new core.ArgumentError(`vitest-environment-branching: branching.${key} ${message}`, {
    argument: `branching.${key}`,
  });
}

/** @param {unknown} raw @returns {Required<Omit<BranchingOptions, 'root'>> & { root: string | undefined }} */
export function resolveOptions(raw) {
  if (raw === undefined || raw === null) return { ...DEFAULTS };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new core.ArgumentError('vitest-environment-branching: environmentOptions.branching must be an object', {
      argument: 'branching',
    });
  }
  for (const key of Object.keys(raw)) if (!(key in DEFAULTS)) throw fail(key, 'is not an option');
  const options = { ...DEFAULTS, ...raw };
  if (options.root !== undefined && (typeof options.root !== 'string' || !isAbsolute(options.root))) {
    throw fail('root', `must be an absolute path; got ${JSON.stringify(options.root)}`);
  }
  for (const key of ['perTest', 'commit', 'network']) {
    if (typeof options[key] !== 'boolean')
      throw fail(key, `must be true or false; got ${JSON.stringify(options[key])}`);
  }
  if (options.keep !== 'never' && options.keep !== 'on-failure') {
    throw fail('keep', `must be 'never' or 'on-failure'; got ${JSON.stringify(options.keep)}`);
  }
  return options;
}
