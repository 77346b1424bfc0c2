// `npm run bench process`: the cost of running one child through BranchContext, plain and
// sandboxed, against a bare `child_process.spawn` of the same program, measured in the same run.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir, fmtMs, median, printTable, time } from './lib.mjs';

const ROUNDS = 15;

function bare(args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

export async function run() {
  const { Workspace, BranchContext } = await import('../dist/index.js');
  const root = benchDir('branching-bench-process-');
  const project = join(root, 'project');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(project);
  writeFileSync(join(project, 'mod.mjs'), 'export const f = (n) => "x".repeat(n);\n');
  const ws = new Workspace(project, { onNotice: () => {} });
  const branch = await ws.branch('bench');
  const probe = new BranchContext(['true'], { workspace: branch, onNotice: () => {} });
  await probe.wait();
  const canSandbox = probe.sandboxed;
  const cases = [
    { name: 'node -e 0', bare: () => bare(['-e', '0'], branch.path), target: [process.execPath, '-e', '0'] },
    {
      name: 'module fn, 1 MB result',
      bare: () => bare(['--input-type=module', '-e', `(await import(${JSON.stringify(join(project, 'mod.mjs'))})).f(1e6)`], branch.path),
      target: { module: join(project, 'mod.mjs'), export: 'f', args: [1e6] },
    },
  ];
  const rows = [];
  for (const c of cases) {
    const samples = { bare: [], plain: [], sandbox: [] };
    // Interleaved, so that machine noise hits every variant alike.
    for (let i = 0; i < ROUNDS; i++) {
      samples.bare.push(await time(c.bare));
      samples.plain.push(await time(() => new BranchContext(c.target, { workspace: branch, sandbox: false }).wait()));
      if (canSandbox) {
        samples.sandbox.push(await time(() => new BranchContext(c.target, { workspace: branch, downgrade: false }).wait()));
      }
    }
    const b = median(samples.bare);
    const p = median(samples.plain);
    const s = canSandbox ? median(samples.sandbox) : null;
    rows.push({
      case: c.name,
      'bare spawn': fmtMs(b),
      'BranchContext plain': `${fmtMs(p)} (${(p / b).toFixed(2)}x)`,
      'BranchContext sandboxed': s === null ? 'unavailable' : `${fmtMs(s)} (${(s / b).toFixed(2)}x)`,
    });
  }
  printTable(`BranchContext overhead (median of ${ROUNDS}, uid ${process.getuid?.()})`, Object.keys(rows[0]), rows);
  await branch.abort();
  rmSync(root, { recursive: true, force: true });
  return rows;
}
