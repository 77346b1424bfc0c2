import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ArgumentError,
  BranchError,
  BranchingError,
  BranchStaleError,
  CommitError,
  ConflictError,
  isBranchingError,
  Workspace,
} from '../../src/index.ts';
import { backendCases, backendRequired, skipUnless } from '../helpers/backends.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const BASE = {
  'README.md': '# project\n',
  'src/index.js': 'export const x = 1;\n',
  'src/util/strings.js': 'export const s = "s";\n',
  'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
  'docs/guide.md': 'guide\n',
  'empty-dir': null,
  'link-to-readme': { symlink: 'README.md' },
  'typechange/file-becomes-dir': 'f\n',
  'typechange/dir-becomes-file/inner.txt': 'inner\n',
};

for (const backend of backendCases()) {
  describe.skipIf(
    skipUnless(backend.available, `the ${backend.kind} backend`, backend.reason, backendRequired(backend.kind)),
  )(`Workspace and Branch semantics on ${backend.kind}`, () => {
    let tmp: ReturnType<typeof tempDir>;
    let root: string;
    let ws: Workspace;
    let before: Snapshot;

    beforeEach(async () => {
      tmp = tempDir();
      root = join(tmp.path, 'project');
      await fs.mkdir(root);
      await writeTree(root, BASE);
      ws = new Workspace(root, { backend: backend.kind, stateDir: join(tmp.path, 'state'), onNotice: () => {} });
      before = await snapshot(root);
    });

    afterEach(async () => {
      await ws.close();
      await tmp.cleanup();
    });

    it('creates a branch that is a full, separate copy of the workspace', async () => {
      const b = await ws.branch('attempt');
      expect(ws.fstype).toBe(backend.kind);
      expect(b.name).toBe('attempt');
      expect(b.branchPath).toBe('/main/attempt');
      expect(b.state).toBe('open');
      expect(await snapshot(b.path)).toEqual(before);
      await fs.writeFile(join(b.path, 'README.md'), 'changed');
      expect(await fs.readFile(join(root, 'README.md'), 'utf8')).toBe('# project\n');
      await b.abort();
    });

    it('commits every kind of change, byte for byte', async () => {
      const b = await ws.branch('all-kinds');
      const p = (rel: string) => join(b.path, rel);
      await fs.writeFile(p('README.md'), '# changed\n');
      await fs.rm(p('docs'), { recursive: true });
      await fs.writeFile(p('src/new.js'), 'new\n');
      await fs.mkdir(p('new-empty/nested'), { recursive: true });
      await fs.chmod(p('src/index.js'), 0o600);
      await fs.rm(p('link-to-readme'));
      await fs.symlink('src/index.js', p('link-to-readme'));
      await fs.symlink('../README.md', p('src/up-link'));
      await fs.rm(p('typechange/file-becomes-dir'));
      await fs.mkdir(p('typechange/file-becomes-dir'));
      await fs.writeFile(p('typechange/file-becomes-dir/child.txt'), 'child\n');
      await fs.rm(p('typechange/dir-becomes-file'), { recursive: true });
      await fs.writeFile(p('typechange/dir-becomes-file'), 'now a file\n');
      const big = Buffer.alloc(8 * 1024 * 1024 + 13);
      for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
      await fs.writeFile(p('big.bin'), big);
      await fs.chmod(p('bin'), 0o700);
      const expected = await snapshot(b.path);
      await b.commit();
      expect(b.state).toBe('committed');
      expect(await snapshot(root)).toEqual(expected);
      await expect(fs.access(b.path)).rejects.toThrow();
    });

    it('abort leaves the workspace byte-identical and removes the branch', async () => {
      const b = await ws.branch('scratch');
      await fs.writeFile(join(b.path, 'junk.txt'), 'junk');
      await fs.rm(join(b.path, 'src'), { recursive: true });
      await b.abort();
      expect(b.state).toBe('aborted');
      expect(await snapshot(root)).toEqual(before);
      await expect(fs.access(b.path)).rejects.toThrow();
      expect(await fs.readdir(join(ws.stateDir, 'branches'))).toEqual([]);
    });

    it('withBranch commits on return and aborts on throw, rethrowing', async () => {
      const value = await ws.withBranch('ok', async (b) => {
        await fs.writeFile(join(b.path, 'ok.txt'), 'ok');
        return 42;
      });
      expect(value).toBe(42);
      expect(await fs.readFile(join(root, 'ok.txt'), 'utf8')).toBe('ok');
      const boom = new Error('boom');
      let seen: string | undefined;
      await expect(
        ws.withBranch('fails', async (b) => {
          seen = b.path;
          await fs.writeFile(join(b.path, 'bad.txt'), 'bad');
          throw boom;
        }),
      ).rejects.toBe(boom);
      await expect(fs.access(join(root, 'bad.txt'))).rejects.toThrow();
      await expect(fs.access(seen!)).rejects.toThrow();
    });

    it('withBranch with onSuccess/onError null leaves the branch open for a manual decision', async () => {
      const b = await ws.withBranch('manual', async (br) => br, { onSuccess: null, onError: null });
      expect(b.state).toBe('open');
      await b.commit();
      expect(b.state).toBe('committed');
    });

    it('await using aborts unless the branch finished', async () => {
      let path = '';
      {
        await using b = await ws.branch('disposable');
        path = b.path;
        await fs.writeFile(join(b.path, 'tmp.txt'), 'x');
      }
      await expect(fs.access(path)).rejects.toThrow();
      expect(await snapshot(root)).toEqual(before);
      {
        await using b = await ws.branch('disposable');
        await fs.writeFile(join(b.path, 'kept.txt'), 'x');
        await b.commit();
      }
      expect(await fs.readFile(join(root, 'kept.txt'), 'utf8')).toBe('x');
    });

    it('nests: a child commits into its parent only', async () => {
      const a = await ws.branch('a');
      const child = await a.branch('b');
      expect(child.branchPath).toBe('/main/a/b');
      await fs.writeFile(join(child.path, 'from-child.txt'), 'child');
      await child.commit();
      expect(await fs.readFile(join(a.path, 'from-child.txt'), 'utf8')).toBe('child');
      expect(await snapshot(root)).toEqual(before);
      await a.commit();
      expect(await fs.readFile(join(root, 'from-child.txt'), 'utf8')).toBe('child');
    });

    it('finishing is idempotent', async () => {
      const b = await ws.branch('twice');
      await fs.writeFile(join(b.path, 'x.txt'), 'x');
      await b.commit();
      await b.commit();
      await b.abort();
      expect(b.state).toBe('committed');
      const c = await ws.branch('aborted');
      await fs.writeFile(join(c.path, 'y.txt'), 'y');
      await c.abort();
      await c.commit();
      expect(c.state).toBe('aborted');
      await expect(fs.access(join(root, 'y.txt'))).rejects.toThrow();
    });

    it('first-winner-commit: an earlier sibling conflicts, is stale, and can still abort', async () => {
      const first = await ws.branch('first');
      const second = await ws.branch('second');
      await fs.writeFile(join(first.path, 'winner.txt'), 'first');
      await fs.writeFile(join(second.path, 'winner.txt'), 'second');
      await first.commit();
      expect(await second.isStale()).toBe(true);
      const err = await second.commit().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConflictError);
      expect(err).toBeInstanceOf(CommitError);
      expect((err as ConflictError).code).toBe('ERR_BRANCH_CONFLICT');
      expect((err as ConflictError).branchPath).toBe('/main/second');
      expect(second.state).toBe('open');
      await expect(second.branch('deeper')).rejects.toBeInstanceOf(BranchStaleError);
      await second.abort();
      expect(second.state).toBe('aborted');
      expect(await fs.readFile(join(root, 'winner.txt'), 'utf8')).toBe('first');
      // A sibling made after the commit forks from the new version and may commit.
      const third = await ws.branch('third');
      await fs.writeFile(join(third.path, 'winner.txt'), 'third');
      await third.commit();
      expect(await fs.readFile(join(root, 'winner.txt'), 'utf8')).toBe('third');
    });

    it('first-winner-commit holds between nested siblings too', async () => {
      const parent = await ws.branch('parent');
      const x = await parent.branch('x');
      const y = await parent.branch('y');
      await x.commit();
      await expect(y.commit()).rejects.toBeInstanceOf(ConflictError);
      await y.abort();
      await parent.commit();
    });

    it('a parent aborts its open children first, and cannot commit while they are open', async () => {
      const parent = await ws.branch('parent');
      const child = await parent.branch('child');
      await fs.writeFile(join(parent.path, 'p.txt'), 'p');
      const err = await parent.commit().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CommitError);
      expect((err as CommitError).code).toBe('ERR_BRANCH_OPEN_CHILDREN');
      expect(parent.state).toBe('open');
      expect(await snapshot(root)).toEqual(before);
      const grandchild = await child.branch('grandchild');
      await parent.abort();
      expect([parent.state, child.state, grandchild.state]).toEqual(['aborted', 'aborted', 'aborted']);
      await expect(fs.access(grandchild.path)).rejects.toThrow();
      expect(await snapshot(root)).toEqual(before);
    });

    it('rejects bad branch names with a typed error and changes nothing', async () => {
      for (const bad of ['', 'a/b', '..', 'x..y', '.', 'nul\0byte', 'n'.repeat(256), 42 as unknown as string]) {
        const err = await ws.branch(bad).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, JSON.stringify(bad)).toBeInstanceOf(ArgumentError);
        expect((err as ArgumentError).argument).toBe('name');
        expect((err as ArgumentError).message).toContain(JSON.stringify(bad));
      }
      expect(await snapshot(root)).toEqual(before);
      expect(await fs.readdir(join(ws.stateDir, 'branches'))).toEqual([]);
      await expect(ws.branch('ok', { onSuccess: 'merge' as 'commit' })).rejects.toMatchObject({
        argument: 'onSuccess',
      });
    });

    it('refuses the name of an open sibling, and frees it once the sibling finishes', async () => {
      const a = await ws.branch('same');
      await expect(ws.branch('same')).rejects.toMatchObject({
        name: 'ArgumentError',
        code: 'ERR_BRANCHING_NAME_IN_USE',
      });
      await a.abort();
      const again = await ws.branch('same');
      await again.abort();
    });

    it('refuses to use a finished branch', async () => {
      const b = await ws.branch('done');
      await b.commit();
      const err = await b.branch('child').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BranchError);
      expect((err as BranchError).code).toBe('ERR_BRANCH_FINISHED');
    });

    it('reports a workspace that vanished mid-branch, and still aborts cleanly', async () => {
      const b = await ws.branch('orphan');
      await fs.writeFile(join(b.path, 'x.txt'), 'x');
      await fs.rename(root, `${root}-moved`);
      await expect(b.commit()).rejects.toMatchObject({
        name: 'CommitError',
        code: 'ERR_BRANCHING_WORKSPACE_GONE',
        path: root,
      });
      expect(b.state).toBe('open');
      await b.abort();
      await fs.rename(`${root}-moved`, root);
      expect(await snapshot(root)).toEqual(before);
    });

    it('never writes through symlinks: links out of the workspace are committed as links', async () => {
      const outside = join(tmp.path, 'outside');
      await fs.mkdir(outside);
      await fs.writeFile(join(outside, 'secret.txt'), 'secret');
      const outsideBefore = await snapshot(outside);
      const b = await ws.branch('links');
      await fs.symlink(outside, join(b.path, 'escape'));
      await fs.symlink('..', join(b.path, 'src/parent'));
      await fs.symlink('/etc', join(b.path, 'etc'));
      await b.commit();
      expect(await fs.readlink(join(root, 'escape'))).toBe(outside);
      expect(await fs.readlink(join(root, 'etc'))).toBe('/etc');
      expect(await snapshot(outside)).toEqual(outsideBefore);
    });

    it('replaces a workspace symlink with a real directory instead of writing through it', async () => {
      const outside = join(tmp.path, 'outside');
      await fs.mkdir(outside);
      await fs.symlink(outside, join(root, 'door'));
      const fresh = new Workspace(root, {
        backend: backend.kind,
        stateDir: join(tmp.path, 'state'),
        onNotice: () => {},
      });
      const b = await fresh.branch('door');
      await fs.rm(join(b.path, 'door'));
      await fs.mkdir(join(b.path, 'door'));
      await fs.writeFile(join(b.path, 'door', 'planted.txt'), 'x');
      await b.commit();
      expect((await fs.lstat(join(root, 'door'))).isDirectory()).toBe(true);
      expect(await fs.readdir(outside)).toEqual([]);
      await fresh.close();
    });

    it('keeps branch state out of the tree, so git status stays clean', async () => {
      execFileSync('git', ['init', '-q'], { cwd: root });
      execFileSync('git', ['add', '-A'], { cwd: root });
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'init'], { cwd: root });
      const b = await ws.branch('git');
      expect(execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' })).toBe('');
      expect(ws.stateDir.startsWith(`${root}/`)).toBe(false);
      await fs.writeFile(join(b.path, 'src/index.js'), 'export const x = 2;\n');
      await b.commit();
      expect(execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' })).toBe(' M src/index.js\n');
    });
  });
}

describe('workspace arguments', () => {
  it('names a missing path', () => {
    const missing = '/nonexistent/branching/project';
    expect(() => new Workspace(missing)).toThrow(ArgumentError);
    try {
      new Workspace(missing);
    } catch (err) {
      expect(err).toMatchObject({ argument: 'path', path: missing, code: 'ERR_BRANCHING_WORKSPACE_MISSING' });
      expect((err as Error).message).toContain(missing);
    }
  });

  it('names a file given where a directory is expected', async () => {
    const tmp = tempDir();
    const file = join(tmp.path, 'file.txt');
    await fs.writeFile(file, 'x');
    expect(() => new Workspace(file)).toThrow(
      expect.objectContaining({ code: 'ERR_BRANCHING_NOT_A_DIRECTORY', path: file }),
    );
    await tmp.cleanup();
  });

  it('rejects an unknown backend by name', async () => {
    const tmp = tempDir();
    expect(() => new Workspace(tmp.path, { backend: 'zfs' as 'clone' })).toThrow(
      expect.objectContaining({ name: 'ArgumentError', argument: 'backend' }),
    );
    await tmp.cleanup();
  });
});

describe('errors', () => {
  it('have their class name, a stable code, and the upstream hierarchy', () => {
    const err = new ConflictError('x', { branchPath: '/main/a' });
    expect(err.name).toBe('ConflictError');
    expect(err.code).toBe('ERR_BRANCH_CONFLICT');
    expect(err).toBeInstanceOf(CommitError);
    expect(err).toBeInstanceOf(BranchError);
    expect(err).toBeInstanceOf(BranchingError);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ArgumentError);
  });

  it('are recognised by a second copy of the classes, as in a Jest vm realm', async () => {
    const second = '../../src/base/errors.ts?realm=2';
    const copy = (await import(/* @vite-ignore */ second)) as typeof import('../../src/base/errors.ts');
    expect(copy.ConflictError).not.toBe(ConflictError);
    const err = new ConflictError('x');
    expect(err).toBeInstanceOf(copy.ConflictError);
    expect(err).toBeInstanceOf(copy.CommitError);
    expect(err).not.toBeInstanceOf(copy.AbortError);
    expect(copy.isBranchingError(err, 'ConflictError')).toBe(true);
    // Symbol.for is shared by every realm of the isolate, which is what makes the tag work in vm contexts.
    expect(vm.runInNewContext('Symbol.for("branching.error.kinds")')).toBe(Symbol.for('branching.error.kinds'));
    expect(isBranchingError(vm.runInNewContext('new Error("plain")'))).toBe(false);
  });
});
