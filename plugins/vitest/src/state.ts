// State shared by the setup file, the environment and the tests of one worker. It lives on
// globalThis under a registered symbol because Vite's module runner may evaluate our modules more
// than once (the setup file runs again for every test file, and a test's own import is another graph).
import type { ResolvedOptions } from './options.ts';

export interface BranchInfo {
  /** 'sandbox': the project root itself is the branch; 'clone': a copy elsewhere (no namespaces). */
  readonly mode: 'sandbox' | 'clone';
  /** Where the branch is: the project root (sandbox) or the clone's directory. */
  readonly path: string;
  /** The real project root (the branched directory). */
  readonly root: string;
  /** The current test's name when it has its own nested branch, else null. */
  readonly test: string | null;
  /** Land the current test's writes (without per-test branches: the file's) in the real tree if it passes. */
  commit(): void;
}

/** What a session does for the hooks of the setup file; one per worker (sandbox) or per file (clone). */
export interface Session {
  readonly branch: BranchInfo;
  beforeTest(ctx: HookContext): void;
  afterTest(ctx: HookContext): Promise<void>;
  /** After the file's last afterAll hook. */
  endFile(): Promise<void>;
}

/** The parts of Vitest's test context the hooks use (the same in Vitest 4 and 5). */
export interface HookContext {
  task: {
    name: string;
    file?: { filepath: string; tasks?: readonly TaskLike[] };
    /** The suite holding the test. */
    suite?: { tasks: readonly TaskLike[] };
    result?: { state?: string; errors?: { message?: string; stack?: string; code?: unknown; path?: unknown }[] };
  };
}

export interface TaskLike {
  type: string;
  mode?: string;
}

export interface WorkerState {
  session: Session | null;
  /** Who opened the session: the environment ends its own in teardown, the setup file in afterAll. */
  owner: 'environment' | 'setup' | null;
  /** Whether a test of the current file failed. */
  failed: boolean;
  /** Whether the setup file is loaded (per-test hooks work). */
  hooks: boolean;
  /** Per worker (sandbox mode): survives the files of a non-isolated worker. */
  sandbox: unknown;
}

const KEY = Symbol.for('vitest-environment-branching');

export function workerState(): WorkerState {
  const g = globalThis as unknown as Record<symbol, WorkerState | undefined>;
  g[KEY] ??= { session: null, owner: null, failed: false, hooks: false, sandbox: null };
  return g[KEY];
}

/** What the pool tells a worker it started in a sandbox (env BRANCHING_VITEST). */
export interface SandboxInfo {
  /** The branched directory (the overlay at its own path). */
  root: string;
  /** The worker's scratch dir (state dir). */
  dir: string;
  /** In-memory scratch for the layer stacks. */
  scratch: string;
  /** The worker's TMPDIR (a tmpfs at a fixed path). */
  tmp: string;
  /** The real tree of `root`, bound inside the sandbox (snapshots, commits). */
  realRoot: string;
  /** The state dir the commit journal uses, as seen inside the sandbox; null when commits cannot work. */
  commitStateDir: string | null;
  /** Why commits cannot work, when commitStateDir is null. */
  commitProblem: string | null;
  /** Where failing tests' layers are kept. */
  keptDir: string;
  options: ResolvedOptions;
}

export function sandboxInfo(): SandboxInfo | null {
  const text = process.env.BRANCHING_VITEST;
  if (!text || process.env.BRANCHING_SANDBOX !== '1') return null;
  return JSON.parse(text) as SandboxInfo;
}
