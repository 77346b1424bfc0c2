/**
 * Bad input, one row each: a typed error naming the argument (or path), and
 * the workspace (tree and state) byte-identical afterwards.
 */
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBranchingError, LayerStack, Workspace } from '../../src/index.ts';
import { BranchContext } from '../../src/process/context.ts';
import { type Snapshot, snapshot, tempDir, writeTree } from '../helpers/tree.ts';

type Row = {
  label: string;
  run: (env: Env) => unknown;
  error: 'ArgumentError' | 'BranchError' | 'CommitError' | 'LayerError';
  argument?: string;
  code?: string;
};
interface Env {
  root: string;
  stateDir: string;
  ws: Workspace;
  tmp: string;
}

const long = 'x'.repeat(256);
const rows: Row[] = [
  // new Workspace(path, options)
  { label: 'path: a number', run: () => new Workspace(5 as never), error: 'ArgumentError', argument: 'path' },
  { label: 'path: empty', run: () => new Workspace(''), error: 'ArgumentError', argument: 'path' },
  { label: 'path: NUL', run: () => new Workspace('/tmp/a\0b'), error: 'ArgumentError', argument: 'path' },
  { label: 'path: missing', run: (e) => new Workspace(join(e.tmp, 'nope')), error: 'ArgumentError', argument: 'path' },
  {
    label: 'path: a file',
    run: (e) => new Workspace(join(e.root, 'a.txt')),
    error: 'ArgumentError',
    argument: 'path',
  },
  { label: 'options: null', run: (e) => new Workspace(e.root, null as never), error: 'ArgumentError' },
  { label: 'options: a string', run: (e) => new Workspace(e.root, 'x' as never), error: 'ArgumentError' },
  {
    label: 'backend: unknown',
    run: (e) => new Workspace(e.root, { backend: 'zfs' as never }),
    error: 'ArgumentError',
    argument: 'backend',
  },
  {
    label: 'backend: a number',
    run: (e) => new Workspace(e.root, { backend: 3 as never }),
    error: 'ArgumentError',
    argument: 'backend',
  },
  {
    label: 'fallback: "yes"',
    run: (e) => new Workspace(e.root, { fallback: 'yes' as never }),
    error: 'ArgumentError',
    argument: 'fallback',
  },
  {
    label: 'onNotice: a string',
    run: (e) => new Workspace(e.root, { onNotice: 'log' as never }),
    error: 'ArgumentError',
    argument: 'onNotice',
  },
  {
    label: 'an unknown option',
    run: (e) => new Workspace(e.root, { statedir: '/tmp' } as never),
    error: 'ArgumentError',
    argument: 'statedir',
  },
  {
    label: 'stateDir: a number',
    run: (e) => new Workspace(e.root, { stateDir: 5 as never }),
    error: 'ArgumentError',
    argument: 'stateDir',
  },
  {
    label: 'stateDir: inside the project',
    run: (e) => new Workspace(e.root, { stateDir: join(e.root, 'state') }),
    error: 'ArgumentError',
    argument: 'stateDir',
    code: 'ERR_BRANCHING_STATE_INSIDE',
  },
  {
    label: 'stateDir: under a file',
    run: (e) => new Workspace(e.root, { stateDir: join(e.tmp, 'file', 'state') }),
    error: 'ArgumentError',
    argument: 'stateDir',
  },
  // ws.branch(name, options)
  { label: 'branch name: empty', run: (e) => e.ws.branch(''), error: 'ArgumentError', argument: 'name' },
  { label: 'branch name: a slash', run: (e) => e.ws.branch('a/b'), error: 'ArgumentError', argument: 'name' },
  { label: 'branch name: ..', run: (e) => e.ws.branch('..'), error: 'ArgumentError', argument: 'name' },
  { label: 'branch name: NUL', run: (e) => e.ws.branch('a\0'), error: 'ArgumentError', argument: 'name' },
  { label: 'branch name: 256 bytes', run: (e) => e.ws.branch(long), error: 'ArgumentError', argument: 'name' },
  { label: 'branch name: a number', run: (e) => e.ws.branch(7 as never), error: 'ArgumentError', argument: 'name' },
  {
    label: 'branch options: a string',
    run: (e) => e.ws.branch('ok', 'x' as never),
    error: 'ArgumentError',
    argument: 'options',
  },
  {
    label: 'onSuccess: "merge"',
    run: (e) => e.ws.branch('ok', { onSuccess: 'merge' as never }),
    error: 'ArgumentError',
    argument: 'onSuccess',
  },
  {
    label: 'onError: "commit"',
    run: (e) => e.ws.branch('ok', { onError: 'commit' as never }),
    error: 'ArgumentError',
    argument: 'onError',
  },
  // ws.gc(options)
  { label: 'gc options: a number', run: (e) => e.ws.gc(1 as never), error: 'ArgumentError', argument: 'options' },
  {
    label: 'gc repair: "yes"',
    run: (e) => e.ws.gc({ repair: 'yes' as never }),
    error: 'ArgumentError',
    argument: 'repair',
  },
  // new LayerStack(options)
  {
    label: 'layer target: relative',
    run: (e) => new LayerStack({ target: 'proj', scratch: e.tmp }),
    error: 'ArgumentError',
    argument: 'target',
  },
  {
    label: 'layer target: missing',
    run: (e) => new LayerStack({ target: join(e.tmp, 'nope'), scratch: e.tmp }),
    error: 'ArgumentError',
    argument: 'target',
  },
  {
    label: 'layer scratch: inside the target',
    run: (e) => new LayerStack({ target: e.root, scratch: join(e.root, 'sub') }),
    error: 'ArgumentError',
    argument: 'scratch',
  },
  {
    label: 'layer pop: an empty stack',
    run: (e) => new LayerStack({ target: e.root, scratch: e.tmp }).pop(),
    error: 'LayerError',
  },
  // new BranchContext(target, options)
  {
    label: 'context target: empty array',
    run: (e) => new BranchContext([], { workspace: e.root }),
    error: 'ArgumentError',
    argument: 'target',
  },
  {
    label: 'context target: a number',
    run: (e) => new BranchContext(5 as never, { workspace: e.root }),
    error: 'ArgumentError',
    argument: 'target',
  },
  {
    label: 'context target: not on PATH',
    run: (e) => new BranchContext(['no-such-command-xyz'], { workspace: e.root, sandbox: false }),
    error: 'ArgumentError',
    argument: 'target',
  },
  {
    label: 'context timeout: negative',
    run: (e) => new BranchContext(['true'], { workspace: e.root, timeout: -1 }),
    error: 'ArgumentError',
    argument: 'timeout',
  },
  {
    label: 'context timeout: a string',
    run: (e) => new BranchContext(['true'], { workspace: e.root, timeout: '10s' as never }),
    error: 'ArgumentError',
    argument: 'timeout',
  },
  {
    label: 'context network: "off"',
    run: (e) => new BranchContext(['true'], { workspace: e.root, network: 'off' as never }),
    error: 'ArgumentError',
    argument: 'network',
  },
  {
    label: 'context stdio: "tty"',
    run: (e) => new BranchContext(['true'], { workspace: e.root, stdio: 'tty' as never }),
    error: 'ArgumentError',
    argument: 'stdio',
  },
  {
    label: 'context env: a string',
    run: (e) => new BranchContext(['true'], { workspace: e.root, env: 'A=1' as never }),
    error: 'ArgumentError',
    argument: 'env',
  },
  {
    label: 'context workspace: missing',
    run: (e) => new BranchContext(['true'], { workspace: join(e.tmp, 'nope') }),
    error: 'ArgumentError',
    argument: 'workspace',
  },
  {
    label: 'context signal: not an AbortSignal',
    run: (e) => new BranchContext(['true'], { workspace: e.root, signal: {} as never }),
    error: 'ArgumentError',
    argument: 'signal',
  },
];

describe('bad input: a typed error naming the argument, and the workspace byte-identical', () => {
  let tmp: ReturnType<typeof tempDir>;
  let env: Env;
  let before: { tree: Snapshot; state: Snapshot };
  const state = async () => ({ tree: await snapshot(env.root), state: await snapshot(env.stateDir) });

  beforeAll(async () => {
    tmp = tempDir('branching-bad-');
    const root = join(tmp.path, 'project');
    await fs.mkdir(root);
    await writeTree(root, { 'a.txt': 'a\n', 'sub/b.txt': 'b\n' });
    await fs.writeFile(join(tmp.path, 'file'), 'not a dir');
    const stateDir = join(tmp.path, 'state');
    const ws = await Workspace.open(root, { backend: 'clone', stateDir, onNotice: () => {} });
    env = { root, stateDir, ws, tmp: tmp.path };
    before = await state();
  });
  afterAll(async () => {
    await env.ws.close();
    await tmp.cleanup();
  });

  it(`has at least 40 rows (${rows.length})`, () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
  });

  it.each(rows.map((r) => [r.label, r] as const))('%s', async (_label, row) => {
    let err: unknown;
    try {
      const result = row.run(env);
      if (result instanceof Promise) await result;
    } catch (e) {
      err = e;
    }
    expect(isBranchingError(err, row.error), `${row.label}: ${String(err)}`).toBe(true);
    if (row.argument) expect((err as { argument?: string }).argument).toBe(row.argument);
    if (row.code) expect((err as { code?: string }).code).toBe(row.code);
    expect(await state()).toEqual(before);
  });
});
