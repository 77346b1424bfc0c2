// The Jest plugin's overhead: one fixture suite run by vanilla Jest, by the environment alone (clone
// fallback) and by the preset (workers in the sandbox), interleaved, in the same run. Reports the
// median wall time of the whole `jest` CLI and the ratio to vanilla.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeSandbox } from '../dist/index.js';
import { benchDir, fmtMs, median, now, printTable } from './lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const JEST = join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const REPS = Number(process.env.BENCH_REPS ?? 5);
const FILES = Number(process.env.BENCH_JEST_FILES ?? 8);
const TESTS = Number(process.env.BENCH_JEST_TESTS ?? 10);
const WORKER_FILES = Number(process.env.BENCH_JEST_WORKER_FILES ?? 24);

/** A project of `files` test files with TESTS tests each, doing a little real work (require, compute, read, write a temp file). */
export function makeSuite(dir, files = FILES) {
  mkdirSync(join(dir, '__tests__'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(
    join(dir, 'jest.config.js'),
    `const mode = process.env.BENCH_MODE;
module.exports = {
  testMatch: ['**/__tests__/**/*.test.js'],
  cacheDirectory: ${JSON.stringify(join(dir, '..', 'cache'))},
  ...(mode === 'environment' ? { testEnvironment: 'branching' } : {}),
  ...(mode === 'preset' ? { preset: 'jest-environment-branching' } : {}),
};
`,
  );
  writeFileSync(join(dir, 'lib.js'), 'exports.fib = (n) => (n < 2 ? n : exports.fib(n - 1) + exports.fib(n - 2));\n');
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => i) }));
  for (let f = 0; f < files; f++) {
    const tests = Array.from(
      { length: TESTS },
      (_, t) => `test('case ${t}', () => {
  expect(fib(18)).toBe(2584);
  const data = JSON.parse(fs.readFileSync('data.json', 'utf8'));
  expect(data.items.length).toBe(200);
  fs.writeFileSync(path.join(os.tmpdir(), 'scratch-${t}.txt'), 'x');
});`,
    );
    writeFileSync(
      join(dir, '__tests__', `suite${f}.test.js`),
      `const fs = require('node:fs');\nconst os = require('node:os');\nconst path = require('node:path');\nconst { fib } = require('../lib.js');\n${tests.join('\n')}\n`,
    );
  }
}

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** One whole `jest` CLI run: wall time, and CPU time of Jest and its workers when /usr/bin/time is there. */
function runJest(dir, mode, args) {
  const cpuFile = join(dir, '..', 'cpu.txt');
  const argv = [JEST, '--ci', '--silent', ...args];
  const [command, commandArgs] = TIME
    ? [TIME, ['-f', '%U %S', '-o', cpuFile, process.execPath, ...argv]]
    : [process.execPath, argv];
  const start = now();
  const result = spawnSync(command, commandArgs, {
    cwd: dir,
    env: { ...process.env, BENCH_MODE: mode, BRANCHING_QUIET: '1' },
    encoding: 'utf8',
  });
  const wall = now() - start;
  if (result.status !== 0) throw new Error(`jest (${mode}) failed:\n${result.stderr}`);
  const cpu = TIME
    ? readFileSync(cpuFile, 'utf8')
        .trim()
        .split(/\s+/)
        .reduce((sum, v) => sum + Number(v) * 1000, 0)
    : null;
  return { wall, cpu };
}

const LABELS = {
  vanilla: 'vanilla Jest 30',
  environment: "testEnvironment: 'branching' (clone fallback)",
  preset: 'preset (sandboxed workers, overlay per file and per test)',
};

/** Interleaved runs of every mode on one suite; rows with medians and ratios to vanilla. */
function measure(title, dir, modes, args) {
  const samples = Object.fromEntries(modes.map((m) => [m, { wall: [], cpu: [] }]));
  for (const mode of modes) runJest(dir, mode, args); // warm Jest's transform cache and the page cache
  for (let r = 0; r < REPS; r++) {
    for (const mode of modes) {
      const { wall, cpu } = runJest(dir, mode, args);
      samples[mode].wall.push(wall);
      if (cpu !== null) samples[mode].cpu.push(cpu);
    }
  }
  const base = samples.vanilla;
  const ratio = (values, baseline) => (values.length ? `${(median(values) / median(baseline)).toFixed(2)}×` : '-');
  const rows = modes.map((mode) => ({
    suite: title,
    mode: LABELS[mode],
    wall: fmtMs(median(samples[mode].wall)),
    'wall ratio': ratio(samples[mode].wall, base.wall),
    cpu: samples[mode].cpu.length ? fmtMs(median(samples[mode].cpu)) : '-',
    'cpu ratio': ratio(samples[mode].cpu, base.cpu),
    wallMs: median(samples[mode].wall),
    cpuMs: samples[mode].cpu.length ? median(samples[mode].cpu) : null,
  }));
  printTable(`Jest: ${title}, whole CLI run, median of ${REPS}`, ['mode', 'wall', 'wall ratio', 'cpu', 'cpu ratio'], rows);
  return rows;
}

export async function run() {
  const modes = ['vanilla', 'environment'];
  const sandbox = probeSandbox();
  if (sandbox.available) modes.push('preset');
  else console.log(`(preset: no sandbox here: ${sandbox.reason})`);
  const rows = [];
  for (const [files, args, note] of [
    [FILES, [], 'Jest picks in-band for vanilla (fast cached timings)'],
    [WORKER_FILES, ['--maxWorkers=2'], 'more than 20 files: Jest uses 2 workers for vanilla too'],
  ]) {
    const work = benchDir('branching-bench-jest-');
    try {
      const dir = join(work, 'proj');
      makeSuite(dir, files);
      rows.push(...measure(`${files} files × ${TESTS} tests (${note})`, dir, modes, args));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return rows;
}
