import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from '../helpers/build.ts';

/** Fixture projects for the flaky-test tools: the tiny runner of test/fixtures/flaky plus generated tests. */
export const FIXTURE_DIR = join(repoRoot, 'test', 'fixtures', 'flaky');
export { chance } from '../fixtures/flaky/lib/chance.mjs';

export const STABLE_TEST = `export const tests = { adds: () => { if (1 + 1 !== 2) throw new Error('math'); } };\n`;

export function flakyTest(salt: string, rate: number): string {
  return `import { flake } from '../lib/chance.mjs';\nexport const tests = { sometimes: () => flake('${salt}', ${rate}) };\n`;
}

/** Fails when an earlier run in the same tree left its marker in the project. */
export const PROJECT_CARRYOVER_TEST = `import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
export const tests = {
  'fresh project': () => {
    if (existsSync('.cache/seen')) throw new Error('an earlier run left .cache/seen');
    mkdirSync('.cache', { recursive: true });
    writeFileSync('.cache/seen', '');
  },
};
`;

/** Fails when an earlier run left its marker in TMPDIR. */
export const TMPDIR_CARRYOVER_TEST = `import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
export const tests = {
  'fresh tmp': () => {
    const marker = join(tmpdir(), 'seen');
    if (existsSync(marker)) throw new Error('an earlier run left ' + marker);
    writeFileSync(marker, '');
  },
};
`;

/** Writes the runner, the chance library and `tests/<name>` files into `dir`. */
export function writeProject(dir: string, tests: Record<string, string>): void {
  mkdirSync(join(dir, 'lib'), { recursive: true });
  mkdirSync(join(dir, 'tests'), { recursive: true });
  copyFileSync(join(FIXTURE_DIR, 'run.mjs'), join(dir, 'run.mjs'));
  copyFileSync(join(FIXTURE_DIR, 'lib', 'chance.mjs'), join(dir, 'lib', 'chance.mjs'));
  for (const [name, content] of Object.entries(tests)) writeFile(join(dir, 'tests', name), content);
}

export function writeFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'fixture',
  GIT_AUTHOR_EMAIL: 'fixture@example.com',
  GIT_COMMITTER_NAME: 'fixture',
  GIT_COMMITTER_EMAIL: 'fixture@example.com',
};

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' }).trim();
}

export function commitAll(dir: string, message: string): string {
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '--no-verify', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

export interface History {
  /** shas[0] is the good commit; shas[i] is commit i. */
  shas: string[];
}

/**
 * A repository whose commit `culprit` turns tests/b.mjs into a test failing
 * in ≈ `rate` of runs (seeded by the run index); every other commit touches
 * an unrelated file. `lockfileAt` lists commits that change package-lock.json.
 */
export function makeFlakyHistory(
  dir: string,
  {
    commits,
    culprit,
    rate = 0.3,
    lockfileAt = [],
  }: { commits: number; culprit: number; rate?: number; lockfileAt?: number[] },
): History {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'gc.auto', '0');
  writeProject(dir, { 'a.mjs': STABLE_TEST, 'b.mjs': STABLE_TEST });
  writeFile(join(dir, '.gitignore'), 'node_modules/\n');
  writeFile(join(dir, 'package-lock.json'), '{"lockfileVersion":3,"v":0}\n');
  const shas = [commitAll(dir, 'good: the suite passes')];
  for (let i = 1; i <= commits; i++) {
    if (i === culprit) writeFile(join(dir, 'tests', 'b.mjs'), flakyTest('b', rate));
    else writeFile(join(dir, 'notes', `commit-${i}.txt`), `commit ${i}\n`);
    if (lockfileAt.includes(i)) writeFile(join(dir, 'package-lock.json'), `{"lockfileVersion":3,"v":${i}}\n`);
    shas.push(commitAll(dir, i === culprit ? `commit ${i}: refactor b (introduces the flake)` : `commit ${i}`));
  }
  return { shas };
}
