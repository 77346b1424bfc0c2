import { readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Workspace } from '../../src/index.ts';
import { snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const CYCLES = 200;

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe.skipIf(process.platform !== 'linux')('leaks (clone backend)', () => {
  it(`${CYCLES} create/commit/abort cycles leave no fd, branch dir, journal or temp dir behind`, async () => {
    const tmp = tempDir();
    // A private TMPDIR: other test files run in parallel and use the shared one.
    const privateTmp = join(tmp.path, 'tmp');
    await fs.mkdir(privateTmp);
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = privateTmp;
    const root = join(tmp.path, 'project');
    await fs.mkdir(root);
    await writeTree(root, { 'a.txt': 'a', 'src/b.txt': 'b', 'src/deep/c.txt': 'c' });
    const ws = new Workspace(root, { backend: 'clone', stateDir: join(tmp.path, 'state'), onNotice: () => {} });
    // Warm up once so that lazily opened, long-lived descriptors (the lease) exist before counting.
    await (await ws.branch('warmup')).abort();
    const fdsBefore = openFds();
    expect(tmpdir()).toBe(privateTmp);
    for (let i = 0; i < CYCLES; i++) {
      const b = await ws.branch(`cycle-${i % 7}`);
      await fs.writeFile(join(b.path, 'a.txt'), `v${i}`);
      if (i % 2 === 0) await b.commit();
      else await b.abort();
    }
    expect(openFds()).toBe(fdsBefore);
    expect(readdirSync(privateTmp)).toEqual([]);
    expect(readdirSync(join(ws.stateDir, 'branches'))).toEqual([]);
    expect(readdirSync(join(ws.stateDir, 'txn'))).toEqual([]);
    expect(readdirSync(join(ws.stateDir, 'names', 'main'))).toEqual([]);
    expect(await fs.readFile(join(root, 'a.txt'), 'utf8')).toBe(`v${CYCLES - 2}`);
    const tree = await snapshot(root);
    expect(Object.keys(tree).sort()).toEqual(['a.txt', 'src', 'src/b.txt', 'src/deep', 'src/deep/c.txt']);
    await ws.close();
    expect(readdirSync(join(ws.stateDir, 'leases'))).toEqual([]);
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await tmp.cleanup();
  });
});
