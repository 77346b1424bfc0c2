// Shared helpers for `npm run bench`: timing, medians, synthetic trees, and the table printer.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const now = () => Number(process.hrtime.bigint()) / 1e6;

export async function time(fn) {
  const start = now();
  await fn();
  return now() - start;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function benchDir(prefix = 'branching-bench-') {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

/** A project-like tree: `files` small files spread over nested directories, committed to git. */
export function makeTree(root, files, { git = true } = {}) {
  mkdirSync(root, { recursive: true });
  const perDir = 50;
  for (let i = 0; i < files; i++) {
    const dir = join(root, `pkg${Math.floor(i / (perDir * 20))}`, `mod${Math.floor(i / perDir) % 20}`);
    if (i % perDir === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}.js`), `export const v${i} = ${i};\n// ${'x'.repeat(i % 200)}\n`);
  }
  if (git) commitAll(root, 'init');
}

/** `git init` and one commit of everything in `dir`, by a fixed author. */
export function commitAll(dir, message = 'bench') {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };
  execFileSync('git', ['init', '-q'], { cwd: dir, env });
  // A background auto-gc would repack .git while the baselines copy it.
  execFileSync('git', ['config', 'gc.auto', '0'], { cwd: dir, env });
  execFileSync('git', ['add', '-A'], { cwd: dir, env });
  execFileSync('git', ['commit', '-qm', message], { cwd: dir, env });
}

/** The change set of the issue: 10 modified, 2 deleted, 3 added. Returns the relative paths touched. */
export function changeFiles(files) {
  const modified = Array.from({ length: 10 }, (_, k) => k * Math.floor(files / 10));
  const deleted = [files - 1, files - 2];
  const rel = (i) => join(`pkg${Math.floor(i / 1000)}`, `mod${Math.floor(i / 50) % 20}`, `f${i}.js`);
  return { modified: modified.map(rel), deleted: deleted.map(rel), added: ['new/a.js', 'new/b.js', 'c.js'] };
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '-';
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function printTable(title, columns, rows) {
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  console.log(`\n${title}`);
  console.log(`| ${columns.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`);
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of cells) console.log(`| ${r.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`);
}
