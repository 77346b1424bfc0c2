/**
 * The program a module-function target runs: `node -e RUNNER_SOURCE`.
 *
 * It is kept as source text (run with `-e`) rather than a file so that it
 * works the same from the TypeScript sources and from the bundle, and inside
 * a sandbox where only the node binary needs to be visible.
 *
 * Protocol over the Node IPC channel (fd 3), which has no size limit and no
 * pipe-buffer deadlock because both ends are event-driven:
 *   parent -> child  { type: 'branching:call', module, export, args }
 *   child  -> parent { type: 'branching:result', ok: true, value }
 *                  | { type: 'branching:result', ok: false, error: { name, message, stack, code } }
 * The child exits as soon as the result has been written: a target that
 * leaves timers or servers behind does not keep its context alive.
 */

export const RESULT_MESSAGE = 'branching:result';
export const CALL_MESSAGE = 'branching:call';

export interface CallMessage {
  type: typeof CALL_MESSAGE;
  module: string;
  export: string;
  args: unknown[];
}

export interface RemoteError {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
}

export type ResultMessage =
  | { type: typeof RESULT_MESSAGE; ok: true; value: unknown }
  | { type: typeof RESULT_MESSAGE; ok: false; error: RemoteError };

export function isResultMessage(value: unknown): value is ResultMessage {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === RESULT_MESSAGE;
}

// Plain CommonJS, no dependencies. BRANCHING_CLOSE_FDS=1: close every
// descriptor above 2 that was inherited without O_CLOEXEC (Node's own are all
// close-on-exec), except the IPC channel, before any user code runs.
export const RUNNER_SOURCE = String.raw`
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const O_CLOEXEC = 0o2000000;

function closeInheritedFds() {
  const keep = process.channel && typeof process.channel.fd === 'number' ? process.channel.fd : -1;
  for (const name of fs.readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd <= 2 || fd === keep) continue;
    try {
      const flags = /flags:\s*([0-7]+)/.exec(fs.readFileSync('/proc/self/fdinfo/' + fd, 'utf8'));
      if (flags && (parseInt(flags[1], 8) & O_CLOEXEC) === 0) fs.closeSync(fd);
    } catch {}
  }
}
if (process.env.BRANCHING_CLOSE_FDS === '1') {
  delete process.env.BRANCHING_CLOSE_FDS;
  try { closeInheritedFds(); } catch {}
}

function describe(err) {
  if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
    return { name: String(err.name || 'Error'), message: String(err.message), stack: err.stack ? String(err.stack) : undefined, code: err.code };
  }
  return { name: 'Error', message: 'non-error value thrown: ' + String(err) };
}

let reported = false;
function report(message, exitCode) {
  if (reported) return;
  reported = true;
  try {
    JSON.stringify(message);
  } catch (err) {
    message = { type: '${RESULT_MESSAGE}', ok: false, error: describe(new TypeError('the return value is not JSON-serialisable: ' + err.message)) };
    exitCode = 1;
  }
  process.send(message, () => process.exit(exitCode));
}

process.on('uncaughtException', (err) => report({ type: '${RESULT_MESSAGE}', ok: false, error: describe(err) }, 1));
process.on('unhandledRejection', (err) => report({ type: '${RESULT_MESSAGE}', ok: false, error: describe(err) }, 1));

function specifierUrl(spec) {
  if (spec.startsWith('file:')) return spec;
  if (spec.startsWith('.') || path.isAbsolute(spec)) return pathToFileURL(path.resolve(spec)).href;
  return spec;
}

process.once('message', async (call) => {
  try {
    if (!call || call.type !== '${CALL_MESSAGE}') throw new Error('the runner expected a call message');
    const mod = await import(specifierUrl(call.module));
    const fn = mod[call.export];
    if (typeof fn !== 'function') {
      throw new TypeError('export ' + JSON.stringify(call.export) + ' of ' + call.module + ' is not a function');
    }
    const value = await fn(...call.args);
    report({ type: '${RESULT_MESSAGE}', ok: true, value }, 0);
  } catch (err) {
    report({ type: '${RESULT_MESSAGE}', ok: false, error: describe(err) }, 1);
  }
});
`;
