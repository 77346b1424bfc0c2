import type { Environment } from 'vitest/runtime';

export interface BranchingOptions {
  /** The directory to branch. Default: Vitest's root (the cwd when the environment is used alone). */
  root?: string;
  /** A nested branch per test, rolled back after it (sandbox only). Default true. */
  perTest?: boolean;
  /** 'on-failure': keep a failing test's branch and print its path. Default 'never'. */
  keep?: 'never' | 'on-failure';
  /** Land the writes of passing tests in the real tree. Default false. */
  commit?: boolean;
  /** false: the sandbox gets its own network namespace with only loopback. Default true. */
  network?: boolean;
}

export interface BranchInfo {
  /** 'sandbox': the project root itself is the branch; 'clone': a copy elsewhere (no namespaces). */
  readonly mode: 'sandbox' | 'clone';
  /** Where the branch is: the project root (sandbox) or the clone's directory. */
  readonly path: string;
  /** The real project root. */
  readonly root: string;
  /** The current test's name when it has its own nested branch, else null. */
  readonly test: string | null;
  /** Land the current test's writes (without per-test branches: the file's) in the real tree if it passes. */
  commit(): void;
}

/** The branch the running test sees. */
export function currentBranch(): BranchInfo;

declare const environment: Environment;
export default environment;
