import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');

/** Child-process tests run the built bundle; make sure it exists (npm install / npm test build it). */
export function assertBuilt(): string {
  const entry = join(repoRoot, 'dist', 'index.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` (npm test does it first)`);
  return entry;
}
