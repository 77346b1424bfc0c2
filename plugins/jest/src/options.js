// testEnvironmentOptions.branching (or a file's `@jest-environment-options {"branching": {...}}`,
// which, as in Jest, replaces the config's `branching` object rather than merging into it).
const { realpathSync, statSync } = require('node:fs');
const { resolve } = require('node:path');
const { ArgumentError } = require('branching');

const DEFAULTS = Object.freeze({ perTest: true, keep: 'never', commit: false, network: true });
const KEYS = ['root', 'perTest', 'keep', 'commit', 'network'];
const PREFIX = 'testEnvironmentOptions.branching';

function fail(key, message) {
  const argument = key ? `${PREFIX}.${key}` : PREFIX;
  throw new ArgumentError(`jest-environment-branching: ${argument} ${message}`, { argument });
}

function checkBoolean(raw, key) {
  if (raw[key] === undefined) return DEFAULTS[key];
  if (typeof raw[key] !== 'boolean') fail(key, `must be true or false; got ${JSON.stringify(raw[key])}`);
  return raw[key];
}

function checkRoot(value, rootDir) {
  if (value === undefined) value = rootDir;
  else if (typeof value !== 'string' || value === '')
    fail('root', `must be a non-empty path; got ${JSON.stringify(value)}`);
  const absolute = resolve(rootDir, value);
  let st;
  try {
    st = statSync(absolute);
  } catch {
    fail('root', `names ${absolute}, which does not exist`);
  }
  if (!st.isDirectory()) fail('root', `names ${absolute}, which is not a directory`);
  return realpathSync(absolute);
}

/** Validated options with defaults; throws ArgumentError naming the offending option. */
function parseOptions(raw, rootDir) {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) fail('', `must be an object; got ${JSON.stringify(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!KEYS.includes(key)) fail(key, `is not an option (known: ${KEYS.join(', ')})`);
  }
  const keep = raw.keep === undefined ? DEFAULTS.keep : raw.keep;
  if (keep !== 'never' && keep !== 'on-failure') {
    fail('keep', `must be 'never' or 'on-failure'; got ${JSON.stringify(raw.keep)}`);
  }
  return {
    root: checkRoot(raw.root, rootDir),
    perTest: checkBoolean(raw, 'perTest'),
    keep,
    commit: checkBoolean(raw, 'commit'),
    network: checkBoolean(raw, 'network'),
  };
}

module.exports = { DEFAULTS, parseOptions };
