#!/usr/bin/env node
// `npm run bench [suite...]`: runs the benchmark suites in bench/, prints a table per suite and writes
// bench/results/latest.json. Baselines are always measured in the same run, and ratios are reported.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
spawnSync(process.execPath, [join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js')], {
  cwd: root,
  stdio: 'ignore',
});
process.env.BRANCHING_QUIET = '1';

const { Workspace } = await import(join(root, 'dist', 'index.js'));
const { probeBackends } = await import(join(root, 'bench', 'probe.mjs'));
const backends = probeBackends(Workspace);
const SUITES = ['core', 'overlay', 'layers', 'process', 'speculate', 'bisect', 'jest', 'vitest', 'suites'];
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : SUITES;

const report = {
  date: new Date().toISOString(),
  machine: { node: process.version, kernel: release(), cpus: cpus().length, uid: process.getuid?.() },
  backends,
  suites: {},
};
for (const name of chosen) {
  const suite = await import(join(root, 'bench', `${name}.mjs`));
  report.suites[name] = await suite.run({ backends });
}
const file = join(root, 'bench', 'results', 'latest.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(report, null, 2));
console.log(`\nwrote ${file}`);
