/**
 * Commits under ordinary faults: read-only directories, a failure after the
 * commit point, a durable commit that cannot be applied yet. The workspace is
 * never torn for good and always opens again.
 */
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseMounter } from '../../src/backends/overlay.ts';
import { isBranchingError, Workspace } from '../../src/index.ts';
import { backendCases, overlayRequiredHere, skipUnless } from '../helpers/backends.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

const cases = backendCases(['clone', 'overlay']);

describe.each(cases)('commits under faults ($kind)', ({ kind, available, reason, required }) => {
  const skip = skipUnless(available, `the ${kind} backend`, reason, required);
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  let stateDir: string;
  const open = (notices: string[] = []) =>
    Workspace.open(root, { backend: kind, stateDir, onNotice: (m) => notices.push(m) });

  beforeEach(async () => {
    tmp = tempDir('branching-faults-');
    root = join(tmp.path, 'project');
    stateDir = join(tmp.path, 'state');
    await fs.mkdir(root);
    await writeTree(root, { 'a.txt': 'a\n', 'locked/old.txt': 'old\n' });
    await fs.chmod(join(root, 'locked'), 0o555);
  });
  afterEach(async () => {
    delete process.env.BRANCHING_TEST_FAIL_AT_STEP;
    await fs.chmod(join(root, 'locked'), 0o755).catch(() => {});
    await tmp.cleanup();
  });

  it.skipIf(skip)('a 0555 directory made writable in the branch commits whole, whatever the user', async () => {
    const ws = await open();
    const b = await ws.branch('unlock');
    await fs.chmod(join(b.path, 'locked'), 0o755);
    await fs.writeFile(join(b.path, 'locked', 'new.txt'), 'new\n');
    await fs.writeFile(join(b.path, 'top.txt'), 'top\n');
    const expected = await snapshot(b.path);
    await b.commit();
    expect(await snapshot(root)).toEqual(expected);
    expect((await fs.stat(join(root, 'locked'))).mode & 0o777).toBe(0o755);
    await ws.close();
    // and it opens again, with nothing left to replay
    const notices: string[] = [];
    const again = await open(notices);
    expect(notices).toEqual([]);
    await again.close();
  });

  it.skipIf(skip)('writes into a directory the branch leaves read-only land, and the mode stays 0555', async () => {
    const ws = await open();
    const b = await ws.branch('inside-locked');
    await fs.chmod(join(b.path, 'locked'), 0o755);
    await fs.writeFile(join(b.path, 'locked', 'new.txt'), 'new\n');
    await fs.chmod(join(b.path, 'locked'), 0o555);
    const expected = await snapshot(b.path);
    await b.commit();
    expect(await snapshot(root)).toEqual(expected);
    await ws.close();
  });

  it.skipIf(skip)(
    'a failure while staging changes nothing; one after the commit point says so by its code',
    async () => {
      const ws = await open();
      const before = await snapshot(root);
      const early = await ws.branch('early');
      await fs.writeFile(join(early.path, 'new.txt'), 'new\n');
      process.env.BRANCHING_TEST_FAIL_AT_STEP = '0'; // the first staging step
      const staged = await early.commit().catch((e) => e);
      expect(isBranchingError(staged, 'CommitError')).toBe(true);
      expect(staged.code).toBe('ERR_BRANCH_COMMIT');
      expect(await snapshot(root)).toEqual(before);
      await early.abort();

      const late = await ws.branch('late');
      await fs.writeFile(join(late.path, 'new.txt'), 'new\n');
      const expected = await snapshot(late.path);
      process.env.BRANCHING_TEST_FAIL_AT_STEP = '3'; // one file staged, then the first replay step
      const pending = await late.commit().catch((e) => e);
      expect(isBranchingError(pending, 'CommitError')).toBe(true);
      expect(pending.code).toBe('ERR_BRANCH_COMMIT_PENDING');
      expect(pending.message).toMatch(/durable and finishes at the next Workspace\.open\(\)/);
      delete process.env.BRANCHING_TEST_FAIL_AT_STEP;
      await late.abort().catch(() => {});
      await ws.close();
      const again = await open();
      expect(await snapshot(root)).toEqual(expected);
      await again.close();
    },
  );

  it.skipIf(skip)(
    'a commit that cannot be applied is reported, the workspace still opens, and gc --repair drops it',
    async () => {
      const ws = await open();
      const b = await ws.branch('stuck');
      await fs.writeFile(join(b.path, 'stuck.txt'), 'stuck\n');
      process.env.BRANCHING_TEST_FAIL_AT_STEP = '3';
      expect((await b.commit().catch((e) => e)).code).toBe('ERR_BRANCH_COMMIT_PENDING');
      await b.abort().catch(() => {});
      await ws.close();
      // The cause persists (every replay fails at its first step): opening still works, and says what to do.
      process.env.BRANCHING_TEST_FAIL_AT_STEP = '0';
      const notices: string[] = [];
      const stuck = await open(notices);
      expect(notices.join('\n')).toMatch(/durable but could not be applied .*branching gc --repair/);
      const next = await stuck.branch('next');
      await fs.writeFile(join(next.path, 'next.txt'), 'next\n');
      const refused = await next.commit().catch((e) => e);
      expect(refused.code).toBe('ERR_BRANCH_JOURNAL_STUCK'); // a later commit never overtakes an earlier one
      const report = await stuck.gc();
      expect(report.stuckCommits.map((e) => e.code)).toEqual(['ERR_BRANCH_JOURNAL_STUCK']);
      const repaired = await stuck.gc({ repair: true });
      expect(repaired.stuckCommits).toEqual([]);
      delete process.env.BRANCHING_TEST_FAIL_AT_STEP;
      await next.abort().catch(() => {});
      const after = await stuck.branch('after');
      await fs.writeFile(join(after.path, 'after.txt'), 'after\n');
      const expected: Snapshot = await snapshot(after.path);
      await after.commit();
      expect(await snapshot(root)).toEqual(expected);
      await stuck.close();
    },
  );

  it.skipIf(skip)('bad gc options are an ArgumentError naming them', async () => {
    const ws = await open();
    const err = await ws.gc({ repair: 'yes' as unknown as boolean }).catch((e) => e);
    expect(isBranchingError(err, 'ArgumentError')).toBe(true);
    expect(err.argument).toBe('repair');
    await ws.close();
  });
});

describe('a commit into a read-only mount', () => {
  const choice = chooseMounter();
  const skip = skipUnless(
    choice.mounter !== null,
    'mounts (root, or `branching run`)',
    choice.reason ?? '',
    overlayRequiredHere(),
  );

  it.skipIf(skip)('fails up front, saying read-only file system with the path, and changes nothing', async () => {
    const tmp = tempDir('branching-erofs-');
    const real = join(tmp.path, 'real');
    const view = join(tmp.path, 'view');
    await fs.mkdir(real);
    await fs.mkdir(view);
    await writeTree(real, { 'a.txt': 'a\n' });
    choice.mounter!.bind(real, view); // read-only
    try {
      const ws = await Workspace.open(view, {
        backend: 'clone',
        stateDir: join(tmp.path, 'state'),
        onNotice: () => {},
      });
      const before = await snapshot(view);
      const b = await ws.branch('ro');
      await fs.writeFile(join(b.path, 'b.txt'), 'b\n');
      const err = await b.commit().catch((e) => e);
      expect(isBranchingError(err, 'CommitError')).toBe(true);
      expect(err).toMatchObject({ code: 'ERR_BRANCH_COMMIT_READ_ONLY', path: view });
      expect(err.message).toMatch(/read-only file system/);
      expect(await snapshot(view)).toEqual(before);
      await b.abort();
      await ws.close();
    } finally {
      choice.mounter!.unmount(view);
      await tmp.cleanup();
    }
  });
});
