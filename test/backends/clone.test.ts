// The clone backend's shared directories: node_modules (at any depth) is a symlink to the
// workspace's own instead of a copy, never shows up as a change, and never reaches a commit.
import { lstatSync, readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArgumentError, Workspace } from '../../src/index.ts';
import { snapshot, tempDir, writeTree } from '../helpers/tree.ts';

let dir: ReturnType<typeof tempDir> | undefined;
afterEach(async () => {
  await dir?.cleanup();
  dir = undefined;
});

async function project(): Promise<{ root: string; state: string }> {
  dir = tempDir('branching-clone-');
  const root = join(dir.path, 'proj');
  await writeTree(root, {
    'src/a.js': 'a\n',
    'node_modules/dep/index.js': 'dep\n',
    'packages/x/node_modules/inner/index.js': 'inner\n',
    'packages/x/src/b.js': 'b\n',
  });
  return { root, state: join(dir.path, 'state') };
}

describe('clone backend: shared directories', () => {
  it('links node_modules at any depth to the workspace, and commits only the rest', async () => {
    const { root, state } = await project();
    const ws = new Workspace(root, { backend: 'clone', stateDir: state, shared: ['node_modules'], onNotice: () => {} });
    const before = await snapshot(root);
    const branch = await ws.branch('b', { onSuccess: null, onError: null });
    for (const rel of ['node_modules', 'packages/x/node_modules']) {
      expect(lstatSync(join(branch.path, rel)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(branch.path, rel))).toBe(join(root, rel));
    }
    expect(await fs.readFile(join(branch.path, 'packages/x/node_modules/inner/index.js'), 'utf8')).toBe('inner\n');
    await fs.writeFile(join(branch.path, 'src/a.js'), 'changed\n');
    // The backend's own change list is what a commit applies.
    const changes = await ws.backend.changes(branch.parentView().handle!, ws.parentView());
    expect(changes.map((c) => c.path)).toEqual(['src/a.js']);
    await branch.commit();
    expect(await snapshot(root)).toEqual({ ...before, 'src/a.js': (await snapshot(root))['src/a.js'] });
    expect(lstatSync(join(root, 'node_modules')).isDirectory()).toBe(true);
    expect(await fs.readFile(join(root, 'src/a.js'), 'utf8')).toBe('changed\n');
  });

  it('copies node_modules without the option', async () => {
    const { root, state } = await project();
    const ws = new Workspace(root, { backend: 'clone', stateDir: state, onNotice: () => {} });
    const branch = await ws.branch('b', { onSuccess: null, onError: null });
    expect(lstatSync(join(branch.path, 'node_modules')).isDirectory()).toBe(true);
    await branch.abort();
  });

  it.each([[['a/b']], [['..']], [['']], ['node_modules'], [[1]]])(
    'refuses shared: %j, naming the option',
    async (bad) => {
      const { root, state } = await project();
      const before = await snapshot(root);
      expect(() => new Workspace(root, { backend: 'clone', stateDir: state, shared: bad as never })).toThrow(
        expect.objectContaining({ name: ArgumentError.name, argument: 'shared' }),
      );
      expect(await snapshot(root)).toEqual(before);
    },
  );
});
