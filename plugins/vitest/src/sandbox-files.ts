// The main-process half of serving modules that exist only in a worker's sandbox (module-fetch.ts
// is the worker's half). A worker asks again for such a module with an id marked with its scratch
// dir; Vite then reads the file through that worker's own view of the filesystem,
// /proc/<launcher pid>/root (the launcher shares the worker's mount namespace), and transforms it
// as vanilla Vitest would.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, normalize, resolve } from 'node:path';
import { parseMarkedId } from './module-fetch.ts';

// The pool and the plugin may be loaded from different bundles: one registry per process.
const REGISTRY = Symbol.for('branching.vitest.workerViews');
const registry: Map<string, number> =
  ((globalThis as Record<symbol, unknown>)[REGISTRY] as Map<string, number>) ?? new Map<string, number>();
(globalThis as Record<symbol, unknown>)[REGISTRY] = registry;

/** Sandboxed files Vite resolved, and the worker whose view holds each. */
const sandboxed = new Map<string, string>();

/** The pool records each sandboxed worker: its scratch dir and the launcher's pid. */
export function registerWorkerView(workerDir: string, pid: number): void {
  registry.set(workerDir, pid);
}

export function unregisterWorkerView(workerDir: string): void {
  registry.delete(workerDir);
}

/** `path` as the worker behind `workerDir` sees it, from this process. */
function viewPath(workerDir: string, path: string): string | null {
  const pid = registry.get(workerDir);
  // Only what the worker itself can see: an absolute, normalized path inside its own root.
  if (pid === undefined || !isAbsolute(path) || normalize(path) !== path) return null;
  return `/proc/${pid}/root${path}`;
}

/** A relative or absolute import of a sandboxed module that names a file only its worker can see. */
function besideSandboxed(id: string, importer: string): string | null {
  const workerDir = sandboxed.get(importer);
  if (!workerDir || !(id.startsWith('.') || isAbsolute(id))) return null;
  const path = resolve(dirname(importer), id);
  const seen = viewPath(workerDir, path);
  if (existsSync(path) || !seen || !existsSync(seen)) return null;
  sandboxed.set(path, workerDir);
  return path;
}

/** Vite plugin hooks: resolve marked ids to their paths, and load them through the worker's view. */
export const sandboxFilesHooks = {
  resolveId(id: string, importer?: string): string | null {
    const marked = parseMarkedId(id);
    if (marked && registry.has(marked.workerDir)) {
      sandboxed.set(marked.path, marked.workerDir);
      return marked.path;
    }
    return importer ? besideSandboxed(id, importer) : null;
  },
  load(id: string): string | null {
    const workerDir = sandboxed.get(id);
    const path = workerDir ? viewPath(workerDir, id) : null;
    return path ? readFileSync(path, 'utf8') : null;
  },
};
