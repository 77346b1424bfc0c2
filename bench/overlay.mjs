// The overlay fast path, each figure against a baseline measured in the same run:
//  - branch create on 1k..100k-file trees vs a bare overlay mount(2) of the same layers (and vs mkdir+mount);
//  - commit of 15 files (10 modified, 2 deleted, 3 added) vs copying those files;
//  - launcher spawn + `node -e 0` vs a plain `node -e 0` (and `branching run -- node -e 0`);
//  - I/O inside a branch (require of typescript, a `find` walk, `git status`) vs the same in the workspace.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Workspace } from '../dist/index.js';
import { benchDir, changeFiles, commitAll, fmtMs, makeTree, median, now, printTable, time } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SIZES = (process.env.BENCH_OVERLAY_SIZES ?? '1000,10000,100000').split(',').map(Number);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const CREATE_REPS = Number(process.env.BENCH_CREATE_REPS ?? 30);
const binding = createRequire(import.meta.url)(join(root, 'native', 'build', 'Release', 'branching.node'));
const LAUNCHER = join(root, 'native', 'build', 'Release', 'branching-launcher');
const isRoot = process.getuid?.() === 0;

/** The bare mount(2), as the backend would issue it (directly as root, else through the helper). */
function bareMount(target, lowers, upper, work) {
  if (isRoot) {
    const data = `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},redirect_dir=on,index=off,metacopy=off`;
    binding.mount('overlay', target, 'overlay', 0, data);
  } else {
    const fd = Number(process.env.BRANCHING_HELPER_FD);
    const reply = binding.helperCall(fd, ['overlay', target, lowers.join(':'), upper, work, 'index=off,metacopy=off'].join('\t'));
    if (!JSON.parse(reply).ok) throw new Error(reply);
  }
}

function bareUnmount(target) {
  if (isRoot) binding.umount2(target, binding.constants.MNT_DETACH);
  else binding.helperCall(Number(process.env.BRANCHING_HELPER_FD), `umount\t${target}`);
}

function timeSync(fn) {
  const start = now();
  fn();
  return now() - start;
}

async function createRows(work) {
  const rows = [];
  for (const files of SIZES) {
    const project = join(work, `p${files}`);
    makeTree(project, files, { git: false });
    const ws = new Workspace(project, { backend: 'overlay', stateDir: join(work, 'state'), onNotice: () => {} });
    const scratch = join(work, 'bare');
    const create = [];
    const bare = [];
    const mkdirMount = [];
    for (let r = 0; r < CREATE_REPS; r++) {
      // Interleaved, so that drift on this shared machine hits all three alike.
      let b;
      create.push(await time(async () => (b = await ws.branch(`c${r}`))));
      await b.abort();
      const dirs = ['upper', 'work', 'merged'].map((d) => join(scratch, d));
      for (const d of dirs) mkdirSync(d, { recursive: true });
      bare.push(timeSync(() => bareMount(dirs[2], [project], dirs[0], dirs[1])));
      bareUnmount(dirs[2]);
      rmSync(scratch, { recursive: true, force: true });
      mkdirMount.push(
        timeSync(() => {
          for (const d of dirs) mkdirSync(d, { recursive: true });
          bareMount(dirs[2], [project], dirs[0], dirs[1]);
        }),
      );
      bareUnmount(dirs[2]);
      rmSync(scratch, { recursive: true, force: true });
    }
    await ws.close();
    rmSync(project, { recursive: true, force: true });
    const row = { files, create: median(create), bareMount: median(bare), mkdirAndMount: median(mkdirMount) };
    row.vsBare = row.create / row.bareMount;
    row.vsMkdirMount = row.create / row.mkdirAndMount;
    rows.push(row);
  }
  return rows;
}

function applyChanges(dir, changes) {
  for (const m of changes.modified) writeFileSync(join(dir, m), 'changed\n');
  for (const d of changes.deleted) unlinkSync(join(dir, d));
  for (const a of changes.added) {
    mkdirSync(dirname(join(dir, a)), { recursive: true });
    writeFileSync(join(dir, a), 'added\n');
  }
}

async function commitRow(work) {
  const files = 10000;
  const project = join(work, 'commit');
  makeTree(project, files);
  const changes = changeFiles(files);
  const ws = new Workspace(project, { backend: 'overlay', stateDir: join(work, 'state'), onNotice: () => {} });
  const commit = [];
  const copy = [];
  const reset = () => {
    execFileSync('git', ['checkout', '-q', '--', '.'], { cwd: project });
    execFileSync('git', ['clean', '-qfd'], { cwd: project });
  };
  for (let r = 0; r < REPS; r++) {
    const b = await ws.branch(`commit${r}`);
    applyChanges(b.path, changes);
    commit.push(await time(() => b.commit()));
    reset();
    // The baseline: copy the same 13 files from a prepared directory and delete the 2 (what rsync would do).
    const src = join(work, 'changed');
    applyChanges(mkdirTreeLike(project, src, changes), changes);
    copy.push(
      timeSync(() => {
        for (const m of [...changes.modified, ...changes.added]) {
          mkdirSync(dirname(join(project, m)), { recursive: true });
          cpSync(join(src, m), join(project, m));
        }
        for (const d of changes.deleted) rmSync(join(project, d), { force: true });
      }),
    );
    rmSync(src, { recursive: true, force: true });
    reset();
  }
  await ws.close();
  return { commit: median(commit), copy: median(copy), ratio: median(commit) / median(copy) };
}

/** The directories (and the files to be deleted) the change set touches, outside the project. */
function mkdirTreeLike(project, dir, changes) {
  for (const rel of [...changes.modified, ...changes.deleted]) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    cpSync(join(project, rel), join(dir, rel));
  }
  return dir;
}

/** As root, each command also runs as nobody (setpriv in front of both sides, so the ratio stays paired). */
const NOBODY = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

function asUser(user, file, args) {
  if (user === 'root' || !NOBODY) return [file, args];
  return ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', file, ...args]];
}

function spawnRow(work, user) {
  const helperSpec = ['userns', 'mountns', `helper\t${work}`].join('\n');
  // BranchContext's shape with network: false: what a sandboxed test run pays at start.
  const contextSpec = ['userns', 'mountns', 'netns', 'rdonly\t/', 'pidns'].join('\n');
  const launch = (spec) => () => {
    const [file, args] = asUser(user, LAUNCHER, ['-e', '0']);
    const env = { ...process.env, BRANCHING_LAUNCH_SPEC: spec, BRANCHING_LAUNCH_EXEC: process.execPath };
    const r = spawnSync(file, args, { env, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`the launcher failed (${spec.replace(/\n/g, ' ')}): ${r.status}`);
  };
  const plain = () => spawnSync(...asUser(user, process.execPath, ['-e', '0']), { stdio: 'ignore' });
  const cli = () =>
    spawnSync(...asUser(user, process.execPath, [join(root, 'dist', 'cli.js'), 'run', '--', process.execPath, '-e', '0']), {
      cwd: work,
      stdio: 'ignore',
    });
  const t = { plain: [], launcher: [], context: [], cli: [] };
  for (let r = 0; r < REPS * 4; r++) {
    t.plain.push(timeSync(plain));
    t.launcher.push(timeSync(launch(helperSpec)));
    t.context.push(timeSync(launch(contextSpec)));
    if (r % 4 === 0) t.cli.push(timeSync(cli));
  }
  const p = median(t.plain);
  return {
    user,
    plain: p,
    launcher: median(t.launcher),
    context: median(t.context),
    cli: median(t.cli),
    ratio: median(t.launcher) / p,
    contextRatio: median(t.context) / p,
    cliRatio: median(t.cli) / p,
  };
}

async function ioRows(work) {
  const project = join(work, 'io');
  makeTree(project, 10000, { git: false });
  cpSync(join(root, 'node_modules', 'typescript'), join(project, 'node_modules', 'typescript'), { recursive: true });
  commitAll(project, 'init');
  const ws = new Workspace(project, { backend: 'overlay', stateDir: join(work, 'state'), onNotice: () => {} });
  const b = await ws.branch('io');
  const tasks = {
    'require typescript': (cwd) => spawnSync(process.execPath, ['-e', "require('./node_modules/typescript')"], { cwd }),
    'find walk': (cwd) => spawnSync('find', ['.', '-type', 'f'], { cwd, stdio: 'ignore' }),
    'git status': (cwd) => spawnSync('git', ['status', '--porcelain'], { cwd, stdio: 'ignore' }),
  };
  const rows = [];
  for (const [task, fn] of Object.entries(tasks)) {
    const first = timeSync(() => fn(b.path));
    fn(project); // warm both
    const native = [];
    const inBranch = [];
    for (let r = 0; r < REPS; r++) {
      native.push(timeSync(() => fn(project)));
      inBranch.push(timeSync(() => fn(b.path)));
    }
    rows.push({ task, native: median(native), branch: median(inBranch), first, ratio: median(inBranch) / median(native) });
  }
  await b.abort();
  await ws.close();
  return rows;
}

export async function run({ backends }) {
  if (!backends.includes('overlay')) {
    console.log('\n(overlay suite skipped: the overlay backend is unavailable here; run as root or under `branching run`)');
    return { skipped: true };
  }
  const work = benchDir('branching-bench-ovl-');
  try {
    const create = await createRows(work);
    printTable(
      `Overlay branch create (median of ${CREATE_REPS}) vs a bare overlay mount(2) of the same layers`,
      ['files', 'branch create', 'bare mount(2)', 'mkdir ×3 + mount(2)', 'vs bare mount', 'vs mkdir+mount'],
      create.map((r) => ({
        files: r.files,
        'branch create': fmtMs(r.create),
        'bare mount(2)': fmtMs(r.bareMount),
        'mkdir ×3 + mount(2)': fmtMs(r.mkdirAndMount),
        'vs bare mount': `${r.vsBare.toFixed(2)}×`,
        'vs mkdir+mount': `${r.vsMkdirMount.toFixed(2)}×`,
      })),
    );
    const commit = await commitRow(work);
    printTable(
      `Overlay commit of 15 files (10 modified, 2 deleted, 3 added; median of ${REPS}) vs copying them`,
      ['overlay commit', 'copy the files', 'ratio'],
      [{ 'overlay commit': fmtMs(commit.commit), 'copy the files': fmtMs(commit.copy), ratio: `${commit.ratio.toFixed(2)}×` }],
    );
    chmodSync(work, 0o755);
    const spawns = [spawnRow(work, process.getuid?.() === 0 ? 'root' : 'user')];
    if (NOBODY) spawns.push(spawnRow(work, 'nobody'));
    printTable(
      `Sandbox spawn (median of ${REPS * 4}, interleaved) vs a plain \`node -e 0\` as the same user`,
      ['user', 'plain node -e 0', 'launcher + helper', 'ratio', 'BranchContext spec', 'ratio (context)', 'branching run', 'ratio (cli)'],
      spawns.map((spawn) => ({
        user: spawn.user,
        'plain node -e 0': fmtMs(spawn.plain),
        'launcher + helper': fmtMs(spawn.launcher),
        ratio: `${spawn.ratio.toFixed(3)}×`,
        'BranchContext spec': fmtMs(spawn.context),
        'ratio (context)': `${spawn.contextRatio.toFixed(3)}×`,
        'branching run': fmtMs(spawn.cli),
        'ratio (cli)': `${spawn.cliRatio.toFixed(2)}×`,
      })),
    );
    const io = await ioRows(work);
    printTable(
      `I/O inside an overlay branch vs the workspace itself (warm, median of ${REPS}; 10k files + typescript)`,
      ['task', 'native', 'in branch', 'ratio', 'first run in branch'],
      io.map((r) => ({
        task: r.task,
        native: fmtMs(r.native),
        'in branch': fmtMs(r.branch),
        ratio: `${r.ratio.toFixed(2)}×`,
        'first run in branch': fmtMs(r.first),
      })),
    );
    return { create, commit, spawn: spawns, io };
  } finally {
    for (const name of readdirSync(work)) rmSync(join(work, name), { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}
