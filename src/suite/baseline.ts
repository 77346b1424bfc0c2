import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ArgumentError } from '../base/errors.ts';
import { childEnv } from './flaky-exec.ts';
import { outcomesOf, type ResolvedTest, type SuiteRun, type TestOutcome } from './suite-run.ts';
import { readJestReport } from './test-report.ts';

const run = promisify(execFile);

/** A baseline's results without its process: what a cache entry or a user's report holds. */
export interface BaselineRecord {
  tests: Map<string, TestOutcome>;
  counts: SuiteRun['counts'];
  durationMs: number | null;
}

/**
 * The exact content of a git workspace, as one tree hash: the committed tree with every uncommitted
 * change (staged, unstaged, untracked and not ignored) written into a throwaway index. Any byte
 * changed gives another hash. Ignored files (node_modules, build output) are not part of it. Null
 * outside a git work tree, or when git cannot tell.
 */
export async function workspaceContentHash(workspace: string): Promise<string | null> {
  const env = childEnv({});
  const git = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run('git', args, { cwd: workspace, env: { ...env, ...extra }, maxBuffer: 1 << 26 }).then((r) => r.stdout.trim());
  const scratch = await fs.mkdtemp(join(tmpdir(), 'branching-index-'));
  try {
    const index = resolve(workspace, await git(['rev-parse', '--git-path', 'index']));
    const tmpIndex = join(scratch, 'index');
    // A copy of the real index keeps git's stat cache, so unchanged files are not hashed again.
    await fs.copyFile(index, tmpIndex).catch(() => {});
    await git(['add', '-A', '--', '.'], { GIT_INDEX_FILE: tmpIndex });
    return await git(['write-tree'], { GIT_INDEX_FILE: tmpIndex });
  } catch {
    return null;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** How many entries `git status` lists under the workspace: the changes candidates are applied on top of. */
export async function uncommittedChanges(workspace: string): Promise<number | null> {
  try {
    const { stdout } = await run('git', ['status', '--porcelain', '--', '.'], { cwd: workspace, env: childEnv({}) });
    return stdout.split('\n').filter((line) => line !== '').length;
  } catch {
    return null;
  }
}

/** Where cached baselines of one workspace live, keyed by its content and by how the suite runs. */
export class BaselineCache {
  private constructor(
    private readonly file: string,
    readonly key: string,
  ) {}

  /** Null when the workspace's content cannot be hashed (not a git work tree). */
  static async open(stateDir: string, workspace: string, test: ResolvedTest): Promise<BaselineCache | null> {
    const content = await workspaceContentHash(workspace);
    if (content === null) return null;
    const key = createHash('sha256')
      .update(JSON.stringify({ content, kind: test.kind, argv: test.argv, args: test.args, cwd: test.cwd }))
      .digest('hex')
      .slice(0, 32);
    return new BaselineCache(join(stateDir, 'baselines', `${key}.json`), key);
  }

  async read(): Promise<BaselineRecord | null> {
    let json: { tests: TestOutcome[]; counts: SuiteRun['counts']; durationMs: number | null };
    try {
      json = JSON.parse(await fs.readFile(this.file, 'utf8'));
    } catch {
      return null; // no entry yet, or a torn one: run the baseline
    }
    return { tests: new Map(json.tests.map((t) => [t.id, t])), counts: json.counts, durationMs: json.durationMs };
  }

  /** Written to a temporary name and renamed, so a concurrent reader sees a whole entry or none. */
  async write(record: BaselineRecord): Promise<void> {
    await fs.mkdir(join(this.file, '..'), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const json = { tests: [...record.tests.values()], counts: record.counts, durationMs: record.durationMs };
    await fs.writeFile(tmp, JSON.stringify(json));
    await fs.rename(tmp, this.file);
  }
}

/** A baseline from a Jest-shaped report the user already has (`--baseline-from`); its paths are taken from where the tests run. */
export async function baselineFromReport(file: string, runDir: string): Promise<BaselineRecord> {
  const path = resolve(file);
  const entries = await readJestReport(path, runDir, `the baseline report ${path}`).catch((err) => {
    throw new ArgumentError((err as Error).message, { argument: 'baselineFrom', path, cause: err });
  });
  if (entries === null) {
    throw new ArgumentError(`cannot read the baseline report ${path}`, { argument: 'baselineFrom', path });
  }
  return { ...outcomesOf(entries), durationMs: null };
}
