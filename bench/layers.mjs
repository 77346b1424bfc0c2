// The per-test layer as the plugins use it: two core LayerStacks (the project's and TMPDIR's) in
// lockstep, inside `branching run` (mounts go through the launcher's mount helper, as in a sandboxed
// worker), with the scratch on a tmpfs. One "test" is push, optionally a write to each target, the
// project's changes(), then pop or popToSpare; the variants alternate in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir, fmtMs, median, printTable } from './lib.mjs';

const root = join(import.meta.dirname, '..');
const TESTS = Number(process.env.BENCH_LAYER_TESTS ?? 300);
const ROUNDS = Number(process.env.BENCH_REPS ?? 5);

const VARIANTS = [
  { key: 'clean-pop', label: 'test writes nothing, pop()', write: false, spare: false },
  { key: 'clean-spare', label: 'test writes nothing, popToSpare()', write: false, spare: true },
  { key: 'dirty-pop', label: 'test writes a file in each, pop()', write: true, spare: false },
  { key: 'dirty-spare', label: 'test writes a file in each, popToSpare()', write: true, spare: true },
];

/** The child: runs one variant TESTS times over a file layer and prints the mean ms per test. */
const CHILD = `
import { LayerStack } from ${JSON.stringify(join(root, 'dist', 'index.js'))};
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [dir, tests, write, spare] = [process.argv[2], Number(process.argv[3]), process.argv[4] === '1', process.argv[5] === '1'];
const project = join(dir, 'project'), tmp = join(dir, 'tmp'), scratch = join(dir, 'scratch');
const stacks = [new LayerStack({ target: project, scratch }), new LayerStack({ target: tmp, scratch })];
for (const s of stacks) s.push('file');
const start = process.hrtime.bigint();
for (let i = 0; i < tests; i++) {
  for (const s of stacks) s.push('test');
  if (write) for (const t of [project, tmp]) writeFileSync(join(t, 'out.txt'), String(i));
  await stacks[0].changes();
  for (const s of stacks.toReversed()) spare ? s.popToSpare() : s.pop();
}
const ms = Number(process.hrtime.bigint() - start) / 1e6 / tests;
for (const s of stacks.toReversed()) s.pop();
await Promise.all(stacks.map((s) => s.settled()));
console.log(JSON.stringify({ ms }));
`;

function runVariant(work, shm, variant, round) {
  const dir = join(shm, `${variant.key}-${round}`);
  for (const d of ['project', 'tmp', 'scratch']) mkdirSync(join(dir, d), { recursive: true });
  for (let i = 0; i < 200; i++) writeFileSync(join(dir, 'project', `f${i}.js`), `export const v = ${i};\n`);
  const argv = [join(root, 'dist', 'cli.js'), 'run', '--allow', shm, '--', process.execPath, join(work, 'child.mjs')];
  const result = spawnSync(process.execPath, [...argv, dir, String(TESTS), variant.write ? '1' : '0', variant.spare ? '1' : '0'], {
    encoding: 'utf8',
  });
  rmSync(dir, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`layers (${variant.key}) failed:\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)).ms;
}

export async function run() {
  const probe = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'run', '--', 'true']);
  if (probe.status !== 0) {
    console.log('(layers: `branching run` is unavailable here)');
    return [];
  }
  const work = benchDir('branching-bench-layers-');
  // The plugins keep layers in a tmpfs: /dev/shm where there is one.
  const shm = existsSync('/dev/shm')
    ? realpathSync(mkdtempSync('/dev/shm/branching-bench-layers-'))
    : benchDir('branching-bench-layers-shm-');
  try {
    writeFileSync(join(work, 'child.mjs'), CHILD);
    const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
    for (let r = 0; r < ROUNDS; r++) for (const v of VARIANTS) samples[v.key].push(runVariant(work, shm, v, r));
    const rows = VARIANTS.map((v) => ({
      'per test (both stacks)': v.label,
      median: fmtMs(median(samples[v.key])),
      ms: median(samples[v.key]),
    }));
    printTable(
      `Per-test layers, project + TMPDIR stacks through the mount helper, ${TESTS} tests, median of ${ROUNDS}`,
      ['per test (both stacks)', 'median'],
      rows,
    );
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
}
