import { SandboxExecutor, type SuiteExecutor } from './executor.ts';

/**
 * The flaky-test tools start every command through a SuiteExecutor (the
 * interface `speculate` uses too): by default the sandbox, with the branch
 * mounted at the project's own path (downgrading, with a notice, to a plain
 * process group whose cwd is the branch where namespaces are unavailable).
 */
export function defaultExecutor(): SuiteExecutor {
  return new SandboxExecutor();
}

/** The environment a test command gets: ours, minus git variables that would point it at the user's repository. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_COMMON_DIR', 'GIT_PREFIX']) delete env[key];
  return { ...env, ...extra };
}

/** Runs `argv` in `subdir` of wherever the executor puts the project (a relative path, so it holds in a sandbox too). */
export function inSubdir(argv: string[], subdir: string | undefined): string[] {
  if (!subdir) return argv;
  return ['/bin/sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', subdir, ...argv];
}
