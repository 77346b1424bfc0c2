import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
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
  const file = new URL('../native/build/Release/branching.node', here);
  try {
    cached = { binding: require(file.pathname) as NativeBinding, reason: null };
  } catch (err) {
    const detail = (err as Error).message.split('\n')[0];
    cached = {
      binding: null,
      reason: `the native addon is not built (${detail}); run \`npm rebuild branching\` with a C++ compiler available`,
    };
  }
  return cached;
}

export function native(): NativeBinding | null {
  return loadNative().binding;
}
