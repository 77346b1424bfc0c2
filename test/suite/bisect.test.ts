import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBranchingError } from '../../src/base/errors.ts';
import { bisectFlaky } from '../../src/suite/bisect.ts';
import { repoRoot } from '../helpers/build.ts';
import { linkNodeModules } from '../helpers/fixture-project.ts';
import { snapshot, tempDir } from '../helpers/tree.ts';
import { commitAll, flakyTest, git, makeFlakyHistory, STABLE_TEST, writeFile, writeProject } from './flaky-fixtures.ts';

const RUNNER = [process.execPath, 'run.mjs'];

let tmp: ReturnType<typeof tempDir>;
let repo: string;
beforeEach(() => {
  tmp = tempDir('branching-bisect-t-');
  repo = join(tmp.path, 'repo');
});
afterEach(() => tmp.cleanup());

/** Everything a user could lose: the tree (with .git: index, HEAD, refs) and git's own view of it. */
async function userState(dir: string) {
  return {
    tree: await snapshot(dir),
    head: git(dir, 'rev-parse', 'HEAD'),
    symbolicHead: git(dir, 'symbolic-ref', '-q', 'HEAD'),
    status: git(dir, 'status', '--porcelain'),
  };
}

describe('bisectFlaky', () => {
  it('names the commit that introduced a p≈0.3 flake, leaving the user tree, index and HEAD alone', async () => {
    const { shas } = makeFlakyHistory(repo, { commits: 12, culprit: 7 });
    // Uncommitted work the bisection must neither see nor touch: a staged change, and a working-tree
    // edit that would make every run fail if the runs used the user's tree.
    writeFile(join(repo, 'notes', 'staged.txt'), 'staged\n');
    git(repo, 'add', 'notes/staged.txt');
    writeFile(join(repo, 'tests', 'a.mjs'), `export const tests = { adds: () => { throw new Error('wip'); } };\n`);
    const before = await userState(repo);
    const events: string[] = [];
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: 'main',
      command: RUNNER,
      onProgress: (e) => events.push(e.kind),
    });
    expect(report.status).toBe('found');
    expect(report.culprit?.sha).toBe(shas[7]);
    expect(report.culprit?.index).toBe(7);
    expect(report.culprit?.subject).toMatch(/introduces the flake/);
    expect(report.culprit?.probability).toBeGreaterThanOrEqual(0.95);
    expect(report.commits).toBe(12);
    // Runs are accounted for: the per-revision tallies add up, and only revisions ≥ the culprit ever failed.
    const tallied = report.tested.reduce((sum, r) => sum + r.passes + r.fails, 0);
    expect(tallied).toBe(report.runs);
    expect(report.tested.filter((r) => r.fails > 0).every((r) => r.index >= 7)).toBe(true);
    // Ambiguity costs runs: the revision just before the culprit needed several passes to be cleared.
    expect(report.tested.find((r) => r.index === 6)?.passes ?? 0).toBeGreaterThan(1);
    expect(events.filter((e) => e === 'run')).toHaveLength(report.runs);
    expect(await userState(repo)).toEqual(before);
  });

  it('runs the setup once per distinct lockfile and reuses node_modules otherwise', async () => {
    const { shas } = makeFlakyHistory(repo, { commits: 4, culprit: 3, lockfileAt: [2] });
    const counter = join(tmp.path, 'setup-count');
    // The "install": records that it ran, and builds node_modules from this revision's lockfile.
    const setup = `echo ran >> '${counter}' && mkdir -p node_modules/dep && cp package-lock.json node_modules/dep/lock`;
    // The test command refuses a node_modules that does not belong to this revision's lockfile.
    const check = `const fs = require('node:fs'); if (fs.readFileSync('node_modules/dep/lock', 'utf8') !== fs.readFileSync('package-lock.json', 'utf8')) { console.error('stale node_modules'); process.exit(9); }`;
    writeFile(join(repo, 'check.cjs'), check);
    const before = await userState(repo);
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: shas[4] as string,
      parallel: 2,
      command: ['/bin/sh', '-c', `${process.execPath} ${join(repo, 'check.cjs')} && ${process.execPath} run.mjs`],
      setup,
    });
    expect(report.culprit?.sha).toBe(shas[3]);
    expect(report.status).toBe('found');
    const ran = readFileSync(counter, 'utf8').trim().split('\n').length;
    expect(report.setup.ran).toBe(ran);
    expect(report.setup.ran + report.setup.cached).toBe(report.revisionsTested);
    // Two lockfiles in the history (before commit 2, and from it on): one install for each.
    const lockfilesTested = new Set(report.tested.map((r) => (r.index >= 2 ? 'v2' : 'v0')));
    expect(report.setup.ran).toBe(lockfilesTested.size);
    expect(report.setup.cached).toBeGreaterThan(0);
    expect(await userState(repo)).toEqual(before);
  });

  it('checks revisions out without moving the HEAD of a linked worktree or of its main repository', async () => {
    const { shas } = makeFlakyHistory(repo, { commits: 3, culprit: 2 });
    const linked = join(tmp.path, 'linked');
    git(repo, 'worktree', 'add', '-q', linked, '-b', 'side');
    const beforeMain = await userState(repo);
    const beforeLinked = await userState(linked);
    const report = await bisectFlaky({ repository: linked, good: shas[0] as string, bad: 'side', command: RUNNER });
    expect(report.culprit?.sha).toBe(shas[2]);
    expect(await userState(repo)).toEqual(beforeMain);
    expect(await userState(linked)).toEqual(beforeLinked);
  });

  it('reports a bad revision that never fails instead of inventing a culprit', async () => {
    const { shas } = makeFlakyHistory(repo, { commits: 3, culprit: 99 });
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: shas[3] as string,
      command: RUNNER,
      badRuns: 3,
    });
    expect(report).toMatchObject({ status: 'bad-never-failed', culprit: null, runs: 3 });
    expect(report.tested).toEqual([{ index: 3, sha: shas[3], passes: 3, fails: 0, skips: 0 }]);
  });

  it('stops at the run budget and says the answer is inconclusive', async () => {
    const { shas } = makeFlakyHistory(repo, { commits: 8, culprit: 5 });
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: shas[8] as string,
      command: RUNNER,
      runs: 6,
    });
    expect(report.runs).toBe(6);
    expect(report.status).toBe('inconclusive');
    expect(report.culprit?.probability).toBeLessThan(0.95);
  });

  it('skips a revision whose suite does not load, and still names the true culprit', async () => {
    // Commit 4 breaks tests/a.mjs (a syntax error), commit 5 fixes it; commit 6 introduces the flake.
    mkdirSync(repo, { recursive: true });
    git(repo, 'init', '-q', '-b', 'main');
    writeProject(repo, { 'a.mjs': STABLE_TEST, 'b.mjs': STABLE_TEST });
    const shas = [commitAll(repo, 'good')];
    for (let i = 1; i <= 8; i++) {
      if (i === 4) writeFile(join(repo, 'tests', 'a.mjs'), 'export const tests = { adds: () => { ;\n');
      else if (i === 5) writeFile(join(repo, 'tests', 'a.mjs'), STABLE_TEST);
      else if (i === 6) writeFile(join(repo, 'tests', 'b.mjs'), flakyTest('b', 0.5));
      else writeFile(join(repo, 'notes', `${i}.txt`), `${i}\n`);
      shas.push(commitAll(repo, `commit ${i}`));
    }
    const skips: string[] = [];
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: 'main',
      command: RUNNER,
      onProgress: (e) => {
        if (e.kind === 'run' && e.verdict === 'skip') skips.push(`${e.index}: ${e.reason}`);
      },
    });
    expect(report).toMatchObject({ status: 'found', culprit: { index: 6, sha: shas[6] } });
    // The broken revision was run, never counted as evidence, and reported as skipped with its reason.
    expect(report.tested.find((r) => r.index === 4)).toMatchObject({ passes: 0, fails: 0 });
    expect(report.skipped).toEqual([{ index: 4, sha: shas[4], reason: 'tests/a.mjs failed to load' }]);
    expect(report.skippedRuns).toBeGreaterThan(0);
    expect(skips.length).toBe(report.skippedRuns);
    expect(skips.every((s) => s === '4: tests/a.mjs failed to load')).toBe(true);
  });

  it('with --test, a revision that does not have the test yet is a skip, not a pass', async () => {
    // tests/c.mjs arrives, already flaky, at commit 3: before it there is nothing to judge.
    mkdirSync(repo, { recursive: true });
    git(repo, 'init', '-q', '-b', 'main');
    writeProject(repo, { 'a.mjs': STABLE_TEST });
    const shas = [commitAll(repo, 'good')];
    for (let i = 1; i <= 5; i++) {
      if (i === 3) writeFile(join(repo, 'tests', 'c.mjs'), flakyTest('c', 0.5));
      else writeFile(join(repo, 'notes', `${i}.txt`), `${i}\n`);
      shas.push(commitAll(repo, `commit ${i}`));
    }
    const notices: string[] = [];
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: 'main',
      command: RUNNER,
      test: 'tests/c.mjs > sometimes',
      onProgress: (e) => {
        if (e.kind === 'notice') notices.push(e.message);
      },
    });
    // Revisions 1 and 2 could be culprits too (the test may expose older code): only skipped revisions are left.
    expect(report.status).toBe('skipped-range');
    expect(report.possibleCulprits?.map((c) => c.index)).toEqual([1, 2, 3]);
    for (const index of [1, 2]) {
      expect(report.tested.find((r) => r.index === index)).toMatchObject({ passes: 0, fails: 0, skips: 1 });
      expect(report.skipped).toContainEqual({
        index,
        sha: shas[index],
        reason: 'tests/c.mjs > sometimes is not in the report',
      });
    }
    // The fixture runner is neither vitest nor jest: the whole command runs, and the user is told so.
    expect(report.command).toEqual(RUNNER);
    expect(notices).toEqual([expect.stringMatching(/every run executes all of it; only tests\/c.mjs > sometimes/)]);
  });

  it('with --test, judges only that test: another test failing is no evidence', async () => {
    mkdirSync(repo, { recursive: true });
    git(repo, 'init', '-q', '-b', 'main');
    // tests/b.mjs > sometimes exists throughout (rate 0: stable) and turns flaky at commit 3; tests/z.mjs
    // fails at every revision, the good one included: judged as a whole suite, nothing could be bisected.
    const alwaysFails = `export const tests = { broken: () => { throw new Error('always'); } };\n`;
    writeProject(repo, { 'b.mjs': flakyTest('b', 0), 'z.mjs': alwaysFails });
    const shas = [commitAll(repo, 'good')];
    for (let i = 1; i <= 5; i++) {
      if (i === 3) writeFile(join(repo, 'tests', 'b.mjs'), flakyTest('b', 0.5));
      else writeFile(join(repo, 'notes', `${i}.txt`), `${i}\n`);
      shas.push(commitAll(repo, `commit ${i}`));
    }
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: 'main',
      command: RUNNER,
      test: 'tests/b.mjs > sometimes',
    });
    expect(report).toMatchObject({ status: 'found', culprit: { index: 3, sha: shas[3] }, skippedRuns: 0 });
  });

  it('rejects bad revisions with typed errors, changing nothing', async () => {
    const { shas } = makeFlakyHistory(repo, { commits: 2, culprit: 1 });
    const before = await snapshot(tmp.path);
    const cases: Array<[Record<string, unknown>, string, string?]> = [
      [{ good: 'no-such-rev' }, 'good', 'ERR_BRANCHING_UNKNOWN_REVISION'],
      [{ bad: '--output=x' }, 'bad'],
      [{ good: shas[2], bad: shas[0] }, 'good', 'ERR_BRANCHING_NOT_ANCESTOR'],
      [{ good: shas[1], bad: shas[1] }, 'bad', 'ERR_BRANCHING_EMPTY_RANGE'],
      [{ confidence: 1.5 }, 'confidence'],
      [{ command: [] }, 'command'],
      [{ test: '' }, 'test'],
      [{ format: 'xml' }, 'format'],
      [{ flakeRate: 2 }, 'flakeRate'],
      [{ repository: tmp.path }, 'repository', 'ERR_BRANCHING_NOT_A_REPOSITORY'],
    ];
    for (const [override, argument, code] of cases) {
      const err = await bisectFlaky({
        repository: repo,
        good: shas[0] as string,
        bad: shas[2] as string,
        command: RUNNER,
        ...override,
      } as never).catch((e) => e);
      expect(isBranchingError(err, 'ArgumentError'), String(err)).toBe(true);
      expect(err.argument).toBe(argument);
      if (code) expect(err.code).toBe(code);
    }
    expect(await snapshot(tmp.path)).toEqual(before);
  });
});

/** A project for the real framework: tests/a (the target, which uses src/lib, plus a test that always fails) and tests/b. */
const FRAMEWORKS = {
  vitest: {
    ext: 'mjs',
    files: { 'vitest.config.mjs': `export default { cacheDir: '.vite', test: { include: ['tests/*.test.mjs'] } };\n` },
    command: [process.execPath, join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run'],
    lib: (body: string) => `export const add = ${body};\n`,
    test: (name: string) =>
      `import { describe, expect, test } from 'vitest';\nimport { add } from '../src/lib.mjs';\n` +
      `describe('grp', () => {\n  test('adds', () => expect(add(1, 1)).toBe(2));\n` +
      `  test('other', () => { throw new Error('${name} must not run'); });\n});\n`,
  },
  jest: {
    ext: 'js',
    files: { 'package.json': '{ "name": "bisect-jest", "private": true }\n' },
    command: [process.execPath, join('node_modules', 'jest', 'bin', 'jest.js'), '--ci'],
    lib: (body: string) => `exports.add = ${body};\n`,
    test: (name: string) =>
      `const { add } = require('../src/lib.js');\n` +
      `describe('grp', () => {\n  test('adds', () => expect(add(1, 1)).toBe(2));\n` +
      `  test('other', () => { throw new Error('${name} must not run'); });\n});\n`,
  },
} as const;

/** Eight commits: 4 breaks src/lib (a syntax error), 5 repairs it, 6 makes tests/a > grp > adds fail. */
function frameworkHistory(dir: string, framework: keyof typeof FRAMEWORKS): string[] {
  const f = FRAMEWORKS[framework];
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'gc.auto', '0');
  for (const [name, content] of Object.entries(f.files)) writeFile(join(dir, name), content);
  writeFile(join(dir, '.gitignore'), 'node_modules/\n.vite/\n');
  writeFile(join(dir, 'src', `lib.${f.ext}`), f.lib('(a, b) => a + b'));
  writeFile(join(dir, 'tests', `a.test.${f.ext}`), f.test('a'));
  writeFile(join(dir, 'tests', `b.test.${f.ext}`), f.test('b'));
  linkNodeModules(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  const shas = [commitAll(dir, 'good')];
  for (let i = 1; i <= 8; i++) {
    if (i === 4) writeFile(join(dir, 'src', `lib.${f.ext}`), f.lib('(a, b) => { a + ;'));
    else if (i === 5) writeFile(join(dir, 'src', `lib.${f.ext}`), f.lib('(a, b) => a + b'));
    else if (i === 6) writeFile(join(dir, 'src', `lib.${f.ext}`), f.lib('(a, b) => a + b + 1'));
    else writeFile(join(dir, 'notes', `${i}.txt`), `${i}\n`);
    shas.push(commitAll(dir, `commit ${i}`));
  }
  return shas;
}

describe.each(['vitest', 'jest'] as const)('bisectFlaky --test with the real %s', (framework) => {
  it('names the culprit, skips the revision that does not load, and runs only the target test', async () => {
    const shas = frameworkHistory(repo, framework);
    const file = `tests/a.test.${FRAMEWORKS[framework].ext}`;
    const runs: Array<{ index: number; verdict: string; testsRun: number }> = [];
    const report = await bisectFlaky({
      repository: repo,
      good: shas[0] as string,
      bad: 'main',
      command: [...FRAMEWORKS[framework].command],
      test: `${file} > grp > adds`,
      // The failure is deterministic: saying so lets a pass or two settle each revision.
      flakeRate: 0.99,
      onProgress: (e) => {
        if (e.kind === 'run') runs.push({ index: e.index, verdict: e.verdict, testsRun: e.testsRun });
      },
    });
    expect(report).toMatchObject({ status: 'found', culprit: { index: 6, sha: shas[6] } });
    expect(report.command.slice(-2)).toEqual(['-t', 'grp adds']);
    expect(report.skipped).toEqual([{ index: 4, sha: shas[4], reason: `${file} failed to load` }]);
    // Every run that gave evidence ran exactly one test: the target (tests/a > grp > other and tests/b always fail).
    expect(runs.filter((r) => r.verdict !== 'skip').every((r) => r.testsRun === 1)).toBe(true);
    expect(runs.filter((r) => r.verdict === 'skip')).toEqual([{ index: 4, verdict: 'skip', testsRun: 0 }]);
  });
});
