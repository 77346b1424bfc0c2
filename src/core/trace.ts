/**
 * BRANCHING_TRACE=1 prints the duration of each phase of branch operations
 * on stderr: the tool for finding where a slow create or commit spends it.
 */
const enabled = process.env.BRANCHING_TRACE === '1';

export function tracer(operation: string): (phase: string) => void {
  if (!enabled) return () => {};
  let last = performance.now();
  return (phase) => {
    const now = performance.now();
    process.stderr.write(`[branching] ${operation} ${phase}: ${(now - last).toFixed(2)} ms\n`);
    last = now;
  };
}
