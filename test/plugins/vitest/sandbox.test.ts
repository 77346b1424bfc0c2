import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { snapshot } from '../../helpers/tree.ts';
import { type FixtureProject, fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');

const projects: FixtureProject[] = [];
async function project(name: string) {
  const p = await fixtureProject(name);
  projects.push(p);
  return p;
}
afterEach(async () => {
  for (const p of projects.splice(0)) await p.cleanup();
});

const WRITES_PASSING = {
  'writes.test.js > writes relative, absolute and __dirname paths, and changes tracked and ignored files': 'passed',
  'writes.test.js > modifies .git': 'passed',
  'writes.test.js > leaves files in TMPDIR': 'passed',
  'rollback.test.js > first writes': 'passed',
  'rollback.test.js > second does not see the first': 'passed',
  'rollback.test.js > third does not see the second, but sees the file-level write': 'passed',
  'rollback.test.js > currentBranch names the branch of this test': 'passed',
};

describe.skipIf(skip)('the full sandbox (plugins: [branching()])', () => {
  test('writes to relative, absolute and __dirname paths, .git and TMPDIR leave no trace', async () => {
    const p = await project('writes');
    const before = await snapshot(p.root);
    const run = await runVitest(p);
    expect(run.results, run.stdout + run.stderr).toEqual(WRITES_PASSING);
    expect(run.code).toBe(0);
    expect(await snapshot(p.root)).toEqual(before);
    expect(readdirSync(p.tmp)).toEqual([]);
  });

  test('two concurrent runs of one checkout both pass and leave the tree as it was', async () => {
    const p = await project('writes');
    const before = await snapshot(p.root);
    const [a, b] = await Promise.all([runVitest(p), runVitest(p)]);
    expect(a.results, a.stdout + a.stderr).toEqual(WRITES_PASSING);
    expect(b.results, b.stdout + b.stderr).toEqual(WRITES_PASSING);
    expect(await snapshot(p.root)).toEqual(before);
  });

  test('perTest: false shares one branch between the tests of a file (and still rolls the file back)', async () => {
    const p = await project('writes');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/rollback.test.js'], { FIXTURE_BRANCHING: '{"perTest":false}' });
    expect(run.results['rollback.test.js > first writes']).toBe('passed');
    expect(run.results['rollback.test.js > second does not see the first']).toBe('failed');
    expect(await snapshot(p.root)).toEqual(before);
  });
});

// Which copies of the core a test worker has loaded: the package's bundles in the CommonJS cache.
const ENGINE_PROBE = `import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { expect, test } from 'vitest';
const isCore = (path) => {
  try {
    return JSON.parse(readFileSync(join(path, '..', '..', 'package.json'), 'utf8')).name === 'branching';
  } catch {
    return false;
  }
};
test('core bundles loaded', () => {
  const loaded = Object.keys(createRequire(import.meta.url).cache).filter(isCore).map((p) => basename(p));
  expect(loaded).toEqual(['layers.cjs']);
});
`;

describe.skipIf(skip)('a test worker', () => {
  // Vitest starts a process per test file: compiling the whole library there cost more than the file's layers.
  test('loads the layer engine alone, not the whole library', async () => {
    const p = await project('writes');
    writeFileSync(join(p.root, 'test', 'engine.test.js'), ENGINE_PROBE);
    const run = await runVitest(p, ['test/engine.test.js']);
    expect(run.results, run.stdout + run.stderr).toEqual({ 'engine.test.js > core bundles loaded': 'passed' });
    expect(readFileSync(join(p.root, 'test', 'engine.test.js'), 'utf8')).toBe(ENGINE_PROBE);
  });
});

describe('the fixture is a real probe', () => {
  test('without branching the same suite leaks into the tree, .git and TMPDIR', async () => {
    const p = await project('writes');
    const before = await snapshot(p.root);
    const run = await runVitest(p, ['test/writes.test.js'], { FIXTURE_MODE: 'vanilla' });
    expect(run.code).toBe(0);
    const after = await snapshot(p.root);
    expect(after['absolute.txt']).toBeDefined();
    expect(after['test/dirname.txt']).toBeDefined();
    expect(after['out/relative.txt']).toBeDefined();
    expect(after['.git/config']).not.toBe(before['.git/config']);
    expect(after['src/data.txt']).toBeUndefined();
    expect(readdirSync(p.tmp).sort()).toEqual(['left-behind.txt', 'left-dir']);

    const q = await project('writes');
    const rollback = await runVitest(q, ['test/rollback.test.js'], { FIXTURE_MODE: 'vanilla' });
    expect(rollback.results['rollback.test.js > second does not see the first']).toBe('failed');
  });
});
