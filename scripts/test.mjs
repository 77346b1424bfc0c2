#!/usr/bin/env node
// `npm test`: the whole suite as the current user, then (when that user is
// root, as in CI) the privileged-feature suites again as the unprivileged
// user `nobody`, because our users are mostly not root. Ends with one plain
// summary line, "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CELLS, cellLabel, prepareCell, UNPRIVILEGED_CELL_SUITES } from './vitest-matrix.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
/** Suites that touch namespaces, mounts or permissions: they run as nobody too. */
const UNPRIVILEGED_SUITES = [
  'test/process',
  // The launcher (src/sandbox/launcher.ts, native/launcher.c and its mount helper) and the addon.
  'test/sandbox',
  'test/native',
  // Forced removal of overlay scratch: mode-000 work dirs are what an unprivileged user cannot rm.
  'test/base',
  // The Jest plugin: sandbox and clone-fallback runs of the real Jest.
  'test/plugins/jest',
  // Suite tools and sandboxed pattern candidates: every run goes through the sandbox.
  'test/suite/speculate.test.ts',
  'test/suite/flaky.test.ts',
  'test/patterns/options.test.ts',
  // The Vitest plugin: sandbox and clone-fallback runs of the real Vitest.
  'test/plugins/vitest',
  // The packed tarballs installed with --ignore-scripts: most users are not root.
  'test/packaging',
];
/**
 * As nobody, these run inside `branching run` (as an agent would), where the
 * overlay backend works through the launcher's mount helper: the semantic
 * suite then covers overlay and clone.
 */
const UNPRIVILEGED_LAUNCHED_SUITES = [
  'test/core',
  'test/backends',
  // The escape batteries again, from a sandbox nested in `branching run`.
  'test/process/escape.test.ts',
  'test/plugins/vitest/escape.test.ts',
  'test/plugins/jest/escape.test.ts',
];
/**
 * Files of the directories above whose subject does not depend on the uid (version checks, option
 * parsing, report parity of suites that write nothing): as root once is enough, and CI stays
 * inside its time budget. Every sandbox, rollback and escape suite still runs as nobody.
 */
const UID_INDEPENDENT = new Set([
  'test/plugins/jest/versions.test.ts',
  'test/plugins/jest/vanilla.test.ts',
  'test/plugins/vitest/versions.test.ts',
  'test/plugins/vitest/options.test.ts',
  'test/plugins/vitest/refusal.test.ts',
  'test/plugins/vitest/vanilla.test.ts',
]);
const extraArgs = process.argv.slice(2);

/** The test files of `suites` (files or directories) as nobody runs them. */
function unprivilegedFiles(suites) {
  const files = [];
  for (const suite of suites.filter((s) => existsSync(join(root, s)))) {
    if (suite.endsWith('.ts')) files.push(suite);
    else {
      const names = readdirSync(join(root, suite), { recursive: true }).map(String);
      files.push(...names.filter((n) => n.endsWith('.test.ts')).map((n) => `${suite}/${n}`));
    }
  }
  return files.filter((f) => !UID_INDEPENDENT.has(f)).sort();
}

function runVitest(label, args, { asUser, launched = false, extraEnv } = {}) {
  const work = mkdtempSync(join(tmpdir(), 'branching-test-'));
  chmodSync(work, 0o755);
  const report = join(work, 'report.json');
  const env = { ...process.env, ...extraEnv, BRANCHING_TEST_RUN: label };
  let command = process.execPath;
  let argv = [
    vitest,
    'run',
    '--configLoader=runner',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...args,
  ];
  if (launched) {
    // The helper may mount under the repo (cwd), its state root and the run's TMPDIR (test workspaces).
    argv = [join(root, 'dist', 'cli.js'), 'run', '--allow', work, '--', command, ...argv];
  }
  if (asUser) {
    const home = join(work, 'home');
    spawnSync('mkdir', ['-p', home]);
    chownSync(work, asUser.uid, asUser.gid);
    chownSync(home, asUser.uid, asUser.gid);
    Object.assign(env, { HOME: home, TMPDIR: work, USER: asUser.name, LOGNAME: asUser.name });
    argv = [`--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, '--clear-groups', '--', command, ...argv];
    command = 'setpriv';
  }
  console.log(`\n=== ${label} ===`);
  const started = Date.now();
  const result = spawnSync(command, argv, { cwd: root, env, stdio: 'inherit' });
  const seconds = Math.round((Date.now() - started) / 1000);
  let counts = { passed: 0, failed: 0, skipped: 0 };
  if (existsSync(report)) {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    counts = {
      passed: json.numPassedTests,
      failed: json.numFailedTests,
      skipped: json.numPendingTests + json.numTodoTests,
    };
    // Where the time goes, so that keeping CI under its budget is a decision, not a guess.
    const slowest = json.testResults
      .map((f) => ({ file: f.name.slice(root.length + 1), s: Math.round((f.endTime - f.startTime) / 1000) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 6)
      .map((f) => `${f.file} ${f.s}s`);
    console.log(`=== ${label}: ${seconds}s wall; slowest files: ${slowest.join(', ')}`);
    failures.push(...failedTests(json, label));
  } else {
    counts.failed = 1;
    failures.push(`${label}: no report (vitest exited with ${result.status ?? result.signal})`);
  }
  rmSync(work, { recursive: true, force: true });
  const ok = result.status === 0;
  if (!ok && counts.failed === 0) counts.failed = 1;
  return counts;
}

// One line per failed test, printed again after every phase: CI logs are often read from the end.
function failedTests(json, label) {
  const lines = [];
  for (const file of json.testResults) {
    const name = file.name.slice(root.length + 1);
    const failed = file.assertionResults.filter((a) => a.status === 'failed');
    if (failed.length === 0 && file.status === 'failed') lines.push(`${label}: ${name}: ${firstLine(file.message)}`);
    for (const a of failed) lines.push(`${label}: ${name} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
  }
  return lines;
}

function firstLine(text) {
  return (text ?? '').split('\n').find((l) => l.trim() !== '') ?? '(no message)';
}

function unprivilegedUser() {
  if (process.getuid?.() !== 0 || process.env.BRANCHING_SKIP_UNPRIVILEGED === '1') return null;
  if (spawnSync('setpriv', ['--version']).status !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  if (!line) return null;
  const [name, , uid, gid] = line.split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

const lint = spawnSync(
  process.execPath,
  [join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'), 'check', '.'],
  {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
if (lint.status !== 0) {
  console.error('lint failed: run `npx biome check .` (or `npm run format`)');
  process.exit(1);
}

// Layers point one way and nothing forms a cycle (scripts/check-imports.mjs).
const imports = spawnSync(process.execPath, [join(root, 'scripts', 'check-imports.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
if (imports.status !== 0) process.exit(1);

// The native addon and launcher (the local build the library prefers) must match the sources:
// rebuilt when older than them, as the loader would otherwise refuse them as stale.
const native = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--if-stale'], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (native.status !== 0) {
  // Without a compiler the suite still runs: the native tests then skip, naming the reason.
  console.error('native build failed (`npm run build:native` says why)');
  if (process.env.BRANCHING_MUST_WORK === '1') process.exit(1);
}

// Child-process tests run the built bundle: build it from the current sources first.
const build = spawnSync(process.execPath, [join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js')], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (build.status !== 0) {
  console.error('build failed');
  process.exit(1);
}

const totals = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
const add = (c) => {
  for (const k of Object.keys(totals)) totals[k] += c[k];
};

add(runVitest(`as ${process.env.USER ?? `uid ${process.getuid?.()}`}`, extraArgs));
const nobody = unprivilegedUser();
if (nobody && extraArgs.length === 0) {
  add(runVitest('as the unprivileged user nobody', unprivilegedFiles(UNPRIVILEGED_SUITES), { asUser: nobody }));
  const launched = UNPRIVILEGED_LAUNCHED_SUITES.filter((s) => existsSync(join(root, s)));
  add(runVitest('as nobody inside `branching run`', launched, { asUser: nobody, launched: true }));
} else if (process.getuid?.() === 0 && extraArgs.length === 0) {
  console.log('note: cannot drop to an unprivileged user here (no setpriv or no nobody); unprivileged run skipped');
  if (process.env.BRANCHING_MUST_WORK === '1') totals.failed += 1;
}

// The Vitest plugin's other matrix cells (scripts/vitest-matrix.mjs): Vitest 5 on Node 22, Vitest
// 4.0 and 3.2, and Vitest 3.1, which the plugin must refuse at startup. BRANCHING_SKIP_VITEST5=1 skips them.
if (extraArgs.length === 0 && process.env.BRANCHING_SKIP_VITEST5 !== '1') {
  for (const id of Object.keys(CELLS)) {
    const label = cellLabel(id);
    const prepared = prepareCell(root, id);
    if ('error' in prepared) {
      console.log(`note: ${label} skipped: ${prepared.error}`);
      if (process.env.BRANCHING_MUST_WORK === '1') totals.failed += 1;
      continue;
    }
    add(runVitest(label, prepared.suites, { extraEnv: prepared.env }));
    // As nobody too where the cell changes more than the Vitest version (Node 22); the 4.1 suites
    // above run as nobody already, and the older cells differ only in Vitest's own code.
    if (nobody && id === 'vitest5') {
      const suites = prepared.suites.filter((s) => UNPRIVILEGED_CELL_SUITES.includes(s));
      add(runVitest(`${label}, as nobody`, suites, { asUser: nobody, extraEnv: prepared.env }));
    }
  }
}

if (failures.length > 0) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 ? 1 : 0);
