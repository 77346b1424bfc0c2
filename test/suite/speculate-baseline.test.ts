import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Workspace } from '../../src/core/workspace.ts';
import { type ProgressEvent, type SuiteSpeculateOptions, speculate } from '../../src/suite/speculate.ts';
import { tempDir, writeTree } from '../helpers/tree.ts';

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@t',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@t',
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env: gitEnv, encoding: 'utf8' });

let dir: { path: string; cleanup: () => Promise<void> };
let project: string;
let ws: Workspace;
beforeEach(async () => {
  dir = tempDir('branching-baseline-');
  project = join(dir.path, 'project');
  await writeTree(project, { value: 'bad\n', 'notes.txt': 'one\n' });
  git(project, 'init', '-q');
  git(project, 'add', '-A');
  git(project, 'commit', '-qm', 'start');
  ws = await Workspace.open(project, { onNotice: () => {} });
});
afterEach(async () => {
  await ws.close();
  await dir.cleanup();
});

/** A dry run: the workspace stays as it is, so a second run sees the same content. */
function run(extra: Partial<SuiteSpeculateOptions> = {}) {
  const notices: string[] = [];
  const outcome = speculate({
    workspace: ws,
    candidates: [{ value: 'good\n' }],
    test: { command: ['sh', '-c', 'test "$(cat value)" = good'] },
    dryRun: true,
    onProgress: (e: ProgressEvent) => {
      if (e.type === 'notice') notices.push(e.message);
    },
    ...extra,
  });
  return outcome.then((o) => ({ ...o, notices }));
}

test('the baseline is cached by the exact workspace content: any byte changed, committed or not, means a new one', async () => {
  expect((await run()).baseline.source).toBe('run');
  const cached = await run();
  expect(cached.baseline).toMatchObject({ source: 'cache', failing: ['(command)'] });
  expect(cached.winner?.name).toBe('#1');
  // a plain command's exit status counts as its one test
  expect(cached.winner).toMatchObject({ stage: 'full', counts: { passed: 1, failed: 0, skipped: 0 } });
  await fs.writeFile(join(project, 'notes.txt'), 'one!\n'); // one byte more, not committed
  expect((await run()).baseline.source).toBe('run');
  expect((await run()).baseline.source).toBe('cache');
  await fs.writeFile(join(project, 'new.txt'), 'x'); // an untracked file
  expect((await run()).baseline.source).toBe('run');
  git(project, 'add', '-A');
  git(project, 'commit', '-qm', 'more'); // same content, now committed: still the same tree
  expect((await run()).baseline.source).toBe('cache');
  expect((await run({ cacheBaseline: false })).baseline.source).toBe('run');
});

test('a dirty working tree is reported, in the outcome and once as a notice', async () => {
  const clean = await run();
  expect(clean.uncommittedChanges).toBe(0);
  expect(clean.notices).toEqual([]);
  await fs.writeFile(join(project, 'notes.txt'), 'two\n');
  await fs.writeFile(join(project, 'extra.txt'), 'x\n');
  const dirty = await run();
  expect(dirty.uncommittedChanges).toBe(2);
  expect(dirty.notices).toEqual(['candidates are applied on top of 2 uncommitted changes']);
});

test('baselineFrom: a Jest-shaped report the user has replaces the baseline run', async () => {
  const report = join(dir.path, 'report.json');
  await fs.writeFile(
    report,
    JSON.stringify({
      testResults: [
        { name: join(project, 't.test.js'), status: 'failed', assertionResults: [{ title: 'x', status: 'failed' }] },
      ],
    }),
  );
  const outcome = await run({ baselineFrom: report });
  expect(outcome.baseline).toMatchObject({ source: 'report', failing: ['t.test.js > x'], durationMs: null });
  await expect(run({ baselineFrom: join(dir.path, 'missing.json') })).rejects.toMatchObject({
    name: 'ArgumentError',
    argument: 'baselineFrom',
  });
});
