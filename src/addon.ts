import { createRequire } from 'node:module';
import {
  type BinaryContext,
  fixFor,
  packageRoot,
  platformId,
  readVersion,
  resolveBinary,
  thisModuleFile,
} from './binaries.ts';
import type { NativeBinding } from './native.js';

export type { NativeBinding };

export interface NativeLoad {
  binding: NativeBinding | null;
  /** Why the addon is unavailable, for notices; null when it loaded. */
  reason: string | null;
  /** The file that was loaded, or that failed to; null when none was found. */
  file: string | null;
  /** Where it came from: `BRANCHING_NATIVE_DIR`, `the local build` or the platform package's name. */
  source: string | null;
}

let cached: NativeLoad | undefined;

/**
 * Loads branching.node from the first place that has one (src/binaries.ts). A missing addon is
 * not an error: the library runs on the portable backend and says why. A present one that does
 * not load, or was built for another version, says exactly what failed and how to fix it.
 */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  if (process.env.BRANCHING_NO_NATIVE === '1') {
    cached = {
      binding: null,
      reason: 'the native addon is disabled by BRANCHING_NO_NATIVE=1',
      file: null,
      source: null,
    };
    return cached;
  }
  cached = loadFrom({ root: packageRoot(), env: process.env, platform: platformId() });
  return cached;
}

/** One load, without the cache: for tests that point it at other places. */
export function loadFrom(context: BinaryContext): NativeLoad {
  const found = resolveBinary('addon', context);
  if (!found.file) return { binding: null, reason: found.reason, file: null, source: found.source };
  const { file, source } = found;
  const here = thisModuleFile();
  let binding: NativeBinding;
  try {
    binding = createRequire(here)(file) as NativeBinding;
  } catch (err) {
    // The real load error (a foreign architecture, a missing shared library, an old glibc), first line only.
    const detail = (err as Error).message.split('\n')[0];
    const reason = `the native addon ${file} (${source}) does not load (${detail}); ${fixFor(source!, context)}`;
    return { binding: null, reason, file, source };
  }
  const expected = context.root ? readVersion(context.root) : null;
  if (expected && binding.version !== expected) {
    const built =
      typeof binding.version === 'string' ? `built for branching ${binding.version}` : 'built by an older branching';
    const reason = `the native addon ${file} (${source}) is stale (${built}, this is ${expected}); ${fixFor(source!, context)}`;
    return { binding: null, reason, file, source };
  }
  return { binding, reason: null, file, source };
}

export function native(): NativeBinding | null {
  return loadNative().binding;
}
