// On globalThis, so that the package index and `branching/layers` loaded in one process show a notice once.
const SHOWN = Symbol.for('branching.notices.shown');
const registry = globalThis as { [SHOWN]?: Set<string> };
registry[SHOWN] ??= new Set<string>();
const shown: Set<string> = registry[SHOWN];

/**
 * The default sink for notices (fallbacks, downgrades, crash leftovers): each
 * distinct message once per process on stderr; BRANCHING_QUIET=1 silences it.
 */
export function showNoticeOnce(message: string): void {
  if (process.env.BRANCHING_QUIET === '1' || shown.has(message)) return;
  shown.add(message);
  process.stderr.write(`${message}\n`);
}
