// A test that reads what an earlier test of its file wrote fails with ENOENT under per-test
// rollback, which looks like a bug in the test rather than the plugin doing its job. The failure
// then names the earlier test and the fix.
import { isAbsolute, relative, resolve } from 'node:path';
import type { FinishedLayer } from './sandbox.ts';

function enoentPath(err: unknown): string | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { code?: unknown; path?: unknown; message?: unknown };
  if (e.code === 'ENOENT' && typeof e.path === 'string') return e.path;
  const match = typeof e.message === 'string' ? /ENOENT[^']*'([^']+)'/.exec(e.message) : null;
  return match ? match[1] : null;
}

/** The earlier test whose rolled-back layer wrote `rel` (or something under it), if any. */
function writerOf(rel: string, finished: readonly FinishedLayer[]): string | null {
  for (let i = finished.length - 1; i >= 0; i--) {
    const hit = finished[i].changes.some(
      (c) => c.kind !== 'deleted' && (c.path === rel || c.path.startsWith(`${rel}/`)),
    );
    if (hit) return finished[i].test;
  }
  return null;
}

function appendToError(err: { message: string; stack?: string }, hint: string): void {
  const original = err.message;
  err.message = `${original}\n\n${hint}`;
  if (typeof err.stack === 'string' && err.stack.includes(original)) {
    err.stack = err.stack.replace(original, err.message);
  }
}

/**
 * Adds the explanation to each ENOENT error of a failed test whose path an earlier test of the file
 * wrote. `errors` are jest-circus's (an error, or an [error, asyncError] pair).
 */
export function explainRollback(
  errors: unknown[],
  finished: readonly FinishedLayer[],
  { root, cwd }: { root: string; cwd: string },
): void {
  for (const entry of errors) {
    const err = Array.isArray(entry) ? entry[0] : entry;
    const path = enoentPath(err);
    if (path === null) continue;
    const rel = relative(root, resolve(cwd, path));
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) continue;
    const writer = writerOf(rel.split('\\').join('/'), finished);
    if (writer === null) continue;
    appendToError(
      err as { message: string; stack?: string },
      `\`${rel}\` was written by test '${writer}' of this file and rolled back after it; tests that share files need \`perTest: false\` (per file: docblock)`,
    );
  }
}
