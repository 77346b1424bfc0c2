// Notices go to stderr once per process and message. Workers all print the same fallback notice,
// so only the first worker (JEST_WORKER_ID 1, which in-band runs use too) prints it.
const shown = new Set<string>();

export function notice(message: string, { everyWorker = false } = {}): void {
  if (process.env.BRANCHING_QUIET === '1' || shown.has(message)) return;
  const worker = process.env.JEST_WORKER_ID;
  if (!everyWorker && worker !== undefined && worker !== '1') return;
  shown.add(message);
  process.stderr.write(`${message}\n`);
}
