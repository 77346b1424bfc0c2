import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { NativeBinding } from './native.js';

export type { NativeBinding };

interface NativeLoad {
  binding: NativeBinding | null;
  /** Why the addon is unavailable, for notices; null when it loaded. */
  reason: string | null;
}

let cached: NativeLoad | undefined;

/**
 * Loads native/build/Release/branching.node. Both src/ and dist/ sit one
 * level below the package root, so one relative URL serves the sources (under
 * Vitest) and the bundles. A missing addon is not an error: the library runs
 * on the portable backend and says why.
 */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  if (process.env.BRANCHING_NO_NATIVE === '1') {
    cached = { binding: null, reason: 'the native addon is disabled by BRANCHING_NO_NATIVE=1' };
    return cached;
  }
  // In the CJS bundle import.meta.url is tsup's shim, which believes it runs in a browser when a
  // global `document` exists (jsdom and happy-dom test environments define one): __filename is right.
  const here = typeof __filename === 'string' ? pathToFileURL(__filename).href : import.meta.url;
  const require = createRequire(here);
  // fileURLToPath, not URL.pathname: a path with a space or a non-ASCII character stays a path.
  const file = fileURLToPath(new URL('../native/build/Release/branching.node', here));
  try {
    cached = { binding: require(file) as NativeBinding, reason: null };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const detail = e.message.split('\n')[0];
    // A missing file is "not built"; anything else (a stale or foreign .node) says exactly what failed.
    const missing = e.code === 'MODULE_NOT_FOUND' && !existsSync(file);
    cached = {
      binding: null,
      reason: missing
        ? `the native addon is not built (${file}); run \`npm rebuild branching\` with a C++ compiler available`
        : `the native addon ${file} does not load (${detail}); rebuild it with \`npm rebuild branching\``,
    };
  }
  return cached;
}

export function native(): NativeBinding | null {
  return loadNative().binding;
}
