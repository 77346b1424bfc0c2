// Vitest resolves and transforms modules in its main process, which sees the real tree, not this
// worker's layers. A module a test created inside its sandbox (a config loader's compiled `.mjs` in
// TMPDIR, generated code in the project) is missing there, and the import fails although vanilla
// Vitest would find it. The worker can see the file, so it asks again with a query naming its
// scratch dir; the plugin (sandbox-files.ts) then reads the file through this worker's view and
// Vite transforms it as without the sandbox.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The query by which a worker says "this file exists in my sandbox": its value is the worker's scratch dir. */
export const SANDBOX_QUERY = 'branching-sandbox';
type Fetch = (id: string, ...rest: unknown[]) => Promise<unknown>;
interface WorkerRpc {
  fetch: Fetch;
}
interface RpcHolder {
  rpc?: WorkerRpc;
}

// birpc answers every property with a call function, so a marker on the proxy cannot be read back.
const served = new WeakSet<object>();

/** The file an import id names, when it exists in this worker's view; null for anything else. */
export function sandboxPathOf(id: string): string | null {
  let path = id;
  try {
    if (path.startsWith('file://')) path = fileURLToPath(path.replace(/[?#].*$/, ''));
  } catch {
    return null;
  }
  if (path.startsWith('/@fs/')) path = path.slice('/@fs'.length);
  path = path.replace(/[?#].*$/, '');
  return isAbsolute(path) && existsSync(path) ? path : null;
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'ERR_LOAD_URL') return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return message.startsWith('Cannot find module') || message.includes('Failed to load url');
}

/** `path` as an import id that names the worker whose sandbox holds it. */
export function markedId(path: string, workerDir: string): string {
  return `${path}?${SANDBOX_QUERY}=${encodeURIComponent(workerDir)}`;
}

/** The path and worker dir of a marked id, else null. */
export function parseMarkedId(id: string): { path: string; workerDir: string } | null {
  const at = id.indexOf(`?${SANDBOX_QUERY}=`);
  if (at < 0) return null;
  const path = id.slice(0, at).replace(/^file:\/\//, '');
  return { path: decodeURIComponent(path), workerDir: decodeURIComponent(id.slice(at + SANDBOX_QUERY.length + 2)) };
}

/**
 * Wraps the worker's RPC (Vitest keeps it on the worker state and reads it at every fetch) so that
 * a module missing from the main process's view but present in this worker's is asked for again, marked.
 * Idempotent: Vitest creates a new worker state per test file, and the setup runs per file.
 */
export function serveSandboxModules(state: RpcHolder | undefined, workerDir: string): void {
  const rpc = state?.rpc;
  if (!state || !rpc || served.has(rpc)) return;
  const fetch: Fetch = async (id, ...rest) => {
    try {
      return await rpc.fetch(id, ...rest);
    } catch (err) {
      const path = isNotFound(err) && !id.includes(`?${SANDBOX_QUERY}=`) ? sandboxPathOf(id) : null;
      if (!path) throw err;
      return await rpc.fetch(markedId(path, workerDir), ...rest);
    }
  };
  const wrapped = new Proxy(rpc, {
    get: (target, key) => (key === 'fetch' ? fetch : Reflect.get(target, key)),
  });
  served.add(wrapped);
  state.rpc = wrapped;
}
