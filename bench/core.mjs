// Branch lifecycle on trees of 1k/10k/30k files, against `cp -a` and `git worktree add` in the same run.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Workspace } from '../dist/index.js';
import { benchDir, changeFiles, fmtMs, makeTree, median, printTable, time } from './lib.mjs';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,30000').split(',').map(Number);
const REPS = Number(process.env.BENCH_REPS ?? 5);

function applyChanges(root, changes) {
  for (const m of changes.modified) writeFileSync(join(root, m), 'changed\n');
  for (const d of changes.deleted) unlinkSync(join(root, d));
  for (const a of changes.added) {
    mkdirSync(dirname(join(root, a)), { recursive: true });
    writeFileSync(join(root, a), 'added\n');
  }
}

async function measureBackend(kind, root, changes, results) {
  const ws = new Workspace(root, { backend: kind, onNotice: () => {} });
  const create = [];
  const commit = [];
  const abort = [];
  for (let r = 0; r < REPS; r++) {
    // Interleaved: create+abort, then create+change+commit (and undo the change so trees stay equal).
    let b;
    create.push(await time(async () => (b = await ws.branch(`bench-a${r}`))));
    abort.push(await time(() => b.abort()));
    const c = await ws.branch(`bench-c${r}`);
    applyChanges(c.path, changes);
    commit.push(await time(() => c.commit()));
    execFileSync('git', ['checkout', '-q', '--', '.'], { cwd: root });
    execFileSync('git', ['clean', '-qfd'], { cwd: root });
  }
  await ws.close();
  results.push({ method: `branching ${kind}`, create: median(create), commit: median(commit), teardown: median(abort) });
}

function measureBaselines(root, changes, work, results) {
  const cp = { create: [], commit: [], teardown: [] };
  const wt = { create: [], teardown: [] };
  for (let r = 0; r < REPS; r++) {
    const copy = join(work, `cp${r}`);
    cp.create.push(timeSync(() => execFileSync('cp', ['-a', root, copy])));
    applyChanges(copy, changes);
    // The baseline commit: copy the changed files back and delete the deleted ones (what rsync would do).
    cp.commit.push(
      timeSync(() => {
        for (const m of [...changes.modified, ...changes.added]) {
          mkdirSync(dirname(join(root, m)), { recursive: true });
          cpSync(join(copy, m), join(root, m));
        }
        for (const d of changes.deleted) rmSync(join(root, d), { force: true });
      }),
    );
    execFileSync('git', ['checkout', '-q', '--', '.'], { cwd: root });
    execFileSync('git', ['clean', '-qfd'], { cwd: root });
    cp.teardown.push(timeSync(() => rmSync(copy, { recursive: true, force: true })));
    const tree = join(work, `wt${r}`);
    wt.create.push(timeSync(() => execFileSync('git', ['worktree', 'add', '-q', '--detach', tree], { cwd: root })));
    wt.teardown.push(timeSync(() => execFileSync('git', ['worktree', 'remove', '--force', tree], { cwd: root })));
  }
  results.push({ method: 'cp -a', create: median(cp.create), commit: median(cp.commit), teardown: median(cp.teardown) });
  results.push({ method: 'git worktree add', create: median(wt.create), commit: null, teardown: median(wt.teardown) });
}

function timeSync(fn) {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function run({ backends }) {
  const out = [];
  for (const files of SIZES) {
    const work = benchDir();
    const root = join(work, 'project');
    makeTree(root, files);
    const changes = changeFiles(files);
    const results = [];
    measureBaselines(root, changes, work, results);
    for (const kind of backends) await measureBackend(kind, root, changes, results);
    const cpCreate = results.find((r) => r.method === 'cp -a').create;
    for (const r of results) out.push({ files, ...r, createVsCp: r.create / cpCreate });
    rmSync(work, { recursive: true, force: true });
    console.log(`(done: ${files} files)`);
  }
  printTable(
    `Branch lifecycle (median of ${REPS}; commit = 10 modified, 2 deleted, 3 added)`,
    ['files', 'method', 'create', 'commit', 'teardown', 'create vs cp -a'],
    out.map((r) => ({
      files: r.files,
      method: r.method,
      create: fmtMs(r.create),
      commit: fmtMs(r.commit),
      teardown: fmtMs(r.teardown),
      'create vs cp -a': `${r.createVsCp.toPrecision(3)}×`,
    })),
  );
  return out;
}
