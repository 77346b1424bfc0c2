// Suites shaped like real projects, each run vanilla and with its one line of plugin, interleaved in
// the same run: tests that spawn git in temp repositories (Vitest), a ts-jest project (Jest, its
// own preset plus the runner line), and a jsdom suite (Vitest, environment: 'jsdom'). Reports the
// median wall time of the whole CLI run and the ratio to vanilla.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeSandbox } from '../dist/index.js';
import { benchDir, commitAll, fmtMs, median, now, printTable } from './lib.mjs';

const root = join(import.meta.dirname, '..');
const REPS = Number(process.env.BENCH_REPS ?? 5);
const FILES = Number(process.env.BENCH_SUITE_FILES ?? 12);
const TESTS = Number(process.env.BENCH_SUITE_TESTS ?? 8);
function vitestProject(dir, environment, body) {
  mkdirSync(join(dir, 'test'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "name": "bench", "private": true, "type": "module" }\n');
  writeFileSync(
    join(dir, 'vitest.config.mjs'),
    `import { defineConfig } from 'vitest/config';
import branching from 'vitest-environment-branching/plugin';
export default defineConfig({
  cacheDir: process.env.BENCH_CACHE,
  plugins: process.env.BENCH_MODE === 'plugin' ? [branching()] : [],
  test: { environment: ${JSON.stringify(environment)}, include: ['test/**/*.test.js'] },
});
`,
  );
  for (let f = 0; f < FILES; f++) writeFileSync(join(dir, 'test', `f${f}.test.js`), body(f));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  commitAll(dir);
}

const gitBody = () => `import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
const git = (cwd, ...a) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', ...a], { cwd, encoding: 'utf8' });
for (let i = 0; i < ${TESTS}; i++) {
  test('repo ' + i, () => {
    const repo = mkdtempSync(join(tmpdir(), 'repo-'));
    git(repo, 'init', '-q');
    writeFileSync(join(repo, 'a.txt'), String(i));
    git(repo, 'add', 'a.txt');
    git(repo, 'commit', '-qm', 'c' + i);
    expect(git(repo, 'log', '--format=%s').trim()).toBe('c' + i);
  });
}
`;

const jsdomBody = (f) => `import { expect, test } from 'vitest';
for (let i = 0; i < ${TESTS}; i++) {
  test('renders ' + i, () => {
    document.body.innerHTML = '<ul>' + Array.from({ length: 50 }, (_, k) => '<li>' + k + '</li>').join('') + '</ul>';
    expect(document.querySelectorAll('li')).toHaveLength(50);
    localStorage.setItem('k${f}', String(i));
    expect(localStorage.getItem('k${f}')).toBe(String(i));
  });
}
`;

function tsJestProject(dir) {
  cpSync(join(root, 'test', 'fixtures', 'jest-tsjest'), dir, { recursive: true });
  rmSync(join(dir, '__tests__'), { recursive: true });
  mkdirSync(join(dir, '__tests__'));
  for (let f = 0; f < FILES; f++) {
    const tests = Array.from(
      { length: TESTS },
      (_, t) => `test('sum ${t}', () => {
  const entries: Entry[] = Array.from({ length: ${t + 5} }, (_, k) => ({ name: String(k), size: k }));
  expect(total(entries)).toBe(${((t + 5) * (t + 4)) / 2});
  writeFileSync(join(tmpdir(), 'f${f}-${t}.txt'), 'x');
});`,
    );
    writeFileSync(
      join(dir, '__tests__', `f${f}.test.ts`),
      `import { expect, test } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Entry, total } from '../src';
${tests.join('\n')}
`,
    );
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  commitAll(dir);
}

const SUITES = [
  {
    name: `git in temp repos (Vitest, ${FILES} files × ${TESTS} tests)`,
    make: (dir) => vitestProject(dir, 'node', gitBody),
    argv: () => [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--configLoader=runner', '--reporter=dot'],
    modes: { vanilla: 'vanilla', plugin: 'plugin' },
  },
  {
    name: `jsdom (Vitest, ${FILES} files × ${TESTS} tests)`,
    make: (dir) => vitestProject(dir, 'jsdom', jsdomBody),
    argv: () => [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--configLoader=runner', '--reporter=dot'],
    modes: { vanilla: 'vanilla', plugin: 'plugin' },
  },
  {
    name: `ts-jest (Jest 30, ${FILES} files × ${TESTS} tests, runner line)`,
    make: tsJestProject,
    argv: (cache) => [join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--silent', `--cacheDirectory=${cache}`],
    // The fixture's jest.config.js reads JEST_FIXTURE_MODE.
    modes: { vanilla: 'vanilla', plugin: 'runner' },
  },
];

function runOnce(suite, dir, cache, mode) {
  const start = now();
  const result = spawnSync(process.execPath, suite.argv(cache), {
    cwd: dir,
    env: { ...process.env, BENCH_MODE: mode, JEST_FIXTURE_MODE: mode, BENCH_CACHE: cache, NO_COLOR: '1' },
    encoding: 'utf8',
  });
  const ms = now() - start;
  if (result.status !== 0) throw new Error(`${suite.name} (${mode}) failed:\n${result.stdout}\n${result.stderr}`);
  return ms;
}

function measure(suite) {
  const work = benchDir('branching-bench-suite-');
  try {
    const dir = join(work, 'proj');
    suite.make(dir);
    const cache = join(work, 'cache');
    const modes = Object.entries(suite.modes);
    for (const [, mode] of modes) runOnce(suite, dir, cache, mode); // warm transform and page caches
    const samples = Object.fromEntries(modes.map(([key]) => [key, []]));
    for (let r = 0; r < REPS; r++) {
      for (const [key, mode] of modes) {
        samples[key].push(runOnce(suite, dir, cache, mode));
        execFileSync('git', ['clean', '-fdxq', '-e', 'node_modules'], { cwd: dir });
      }
    }
    const vanilla = median(samples.vanilla);
    const plugin = median(samples.plugin);
    return { suite: suite.name, vanilla: fmtMs(vanilla), plugin: fmtMs(plugin), ratio: `${(plugin / vanilla).toFixed(2)}×`, vanillaMs: vanilla, pluginMs: plugin, reps: REPS };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function run() {
  const sandbox = probeSandbox();
  if (!sandbox.available) {
    console.log(`(suites: no sandbox here, the plugins would fall back: ${sandbox.reason})`);
    return [];
  }
  const rows = SUITES.map(measure);
  printTable(`Real-shaped suites, whole CLI run, median of ${REPS} (interleaved)`, ['suite', 'vanilla', 'plugin', 'ratio'], rows);
  return rows;
}
