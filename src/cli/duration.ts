import { UsageError } from './command.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The one duration syntax of every command: `500ms`, `30s`, `10m`, `1h`; a bare number is seconds. Returns ms. */
export function parseDuration(text: string, option = 'timeout'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? 's'] : Number.NaN;
  if (!(ms > 0))
    throw new UsageError(`--${option} must be a duration like 90s, 10m or 500ms; got ${JSON.stringify(text)}`);
  return ms;
}
