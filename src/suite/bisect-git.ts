import { execFile } from 'node:child_process';
import { lstat, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ArgumentError, BranchingError } from '../base/errors.ts';
import { childEnv } from './flaky-exec.ts';

const run = promisify(execFile);

/**
 * Git plumbing for `bisect`. Against the user's repository we only ever run
 * read-only commands (rev-parse, rev-list, merge-base, log); checkouts happen
 * inside branches, so the user's working tree, index and HEAD never change.
 */
export async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('git', ['-C', cwd, ...args], {
      env: childEnv({ GIT_TERMINAL_PROMPT: '0' }),
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; code?: unknown };
    throw new BranchingError(`git ${args.join(' ')} failed in ${cwd}: ${(e.stderr ?? String(err)).trim()}`, {
      path: cwd,
      code: 'ERR_BRANCHING_GIT',
      cause: err,
    });
  }
}

export async function repositoryRoot(path: string): Promise<string> {
  try {
    return await git(path, ['rev-parse', '--show-toplevel']);
  } catch (err) {
    throw new ArgumentError(`${path} is not inside a git work tree`, {
      argument: 'repository',
      path,
      code: 'ERR_BRANCHING_NOT_A_REPOSITORY',
      cause: err,
    });
  }
}

export async function resolveCommit(repo: string, rev: unknown, argument: string): Promise<string> {
  if (typeof rev !== 'string' || rev === '' || rev.startsWith('-')) {
    throw new ArgumentError(`${argument} must be a revision name; got ${JSON.stringify(rev)}`, { argument });
  }
  try {
    return await git(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  } catch (err) {
    throw new ArgumentError(`${argument} ${JSON.stringify(rev)} is not a commit of ${repo}`, {
      argument,
      path: repo,
      code: 'ERR_BRANCHING_UNKNOWN_REVISION',
      cause: err,
    });
  }
}

export interface Revision {
  sha: string;
  subject: string;
}

/**
 * The first-parent history from `good` (exclusive) to `bad` (inclusive), oldest first.
 * `good` must be an ancestor of `bad`.
 */
export async function historyBetween(repo: string, good: string, bad: string): Promise<Revision[]> {
  try {
    await git(repo, ['merge-base', '--is-ancestor', good, bad]);
  } catch (err) {
    throw new ArgumentError(`good ${good.slice(0, 12)} is not an ancestor of bad ${bad.slice(0, 12)}`, {
      argument: 'good',
      code: 'ERR_BRANCHING_NOT_ANCESTOR',
      cause: err,
    });
  }
  const out = await git(repo, ['log', '--first-parent', '--reverse', '--format=%H%x09%s', `${good}..${bad}`]);
  const revisions = out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf('\t');
      return { sha: line.slice(0, tab), subject: line.slice(tab + 1) };
    });
  if (revisions.length === 0) {
    throw new ArgumentError('good and bad are the same commit: nothing to bisect', {
      argument: 'bad',
      code: 'ERR_BRANCHING_EMPTY_RANGE',
    });
  }
  return revisions;
}

/**
 * Checks `sha` out inside a branch's copy of the repository. A plain
 * repository's `.git` was copied with the branch, so checking out there
 * moves only the copy's HEAD. A linked worktree's `.git` is a file pointing
 * into the user's repository, whose HEAD must not move: we replace it by a
 * fresh repository borrowing the user's objects (alternates).
 */
export async function checkoutInBranch(branchPath: string, userRepo: string, sha: string): Promise<void> {
  const dotGit = join(branchPath, '.git');
  const st = await lstat(dotGit).catch(() => null);
  if (!st?.isDirectory()) {
    const common = await git(userRepo, ['rev-parse', '--git-common-dir']);
    const objects = join(isAbsolute(common) ? common : resolve(userRepo, common), 'objects');
    await rm(dotGit, { recursive: true, force: true });
    await git(branchPath, ['init', '-q']);
    await writeFile(join(dotGit, 'objects', 'info', 'alternates'), `${objects}\n`);
  }
  const quiet = ['-c', 'core.hooksPath=/dev/null', '-c', 'advice.detachedHead=false'];
  await git(branchPath, [...quiet, 'checkout', '-q', '-f', '--detach', sha]);
  // Untracked files of the user's tree do not belong to that revision; ignored ones (node_modules) stay.
  await git(branchPath, [...quiet, 'clean', '-q', '-f', '-d']);
}
