import { createHash } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { copyTree, pathExists, removeTree } from '../base/fsutil.ts';
import type { Branch } from '../core/branch.ts';
import type { SuiteExecutor, SuiteExit } from './executor.ts';
import { childEnv } from './flaky-exec.ts';

/** Lockfiles whose bytes decide what `node_modules` holds. */
export const LOCKFILES = [
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lock',
  'bun.lockb',
];

export interface SetupResult {
  /** `ran`: the setup command ran; `cached`: node_modules came from the cache; `none`: no setup asked for. */
  how: 'ran' | 'cached' | 'none';
  ok: boolean;
  key: string | null;
  outcome?: SuiteExit;
}

/**
 * The per-revision setup step (e.g. `npm ci`), with node_modules cached by
 * lockfile: a revision whose lockfile bytes (and setup command) match one
 * already set up gets a copy of that node_modules instead of a new install.
 * Only node_modules is reused, so the setup command should be the install
 * step alone; anything else a revision needs belongs in the test command.
 * Without a lockfile there is nothing to key on, and the setup always runs.
 */
export class SetupCache {
  hits = 0;
  misses = 0;

  constructor(private readonly dir: string) {}

  async keyFor(treePath: string, setup: string): Promise<string | null> {
    const hash = createHash('sha256').update(setup).update('\0');
    let found = false;
    for (const name of LOCKFILES) {
      const bytes = await readFile(join(treePath, name)).catch(() => null);
      if (!bytes) continue;
      found = true;
      hash.update(name).update('\0').update(bytes).update('\0');
    }
    return found ? hash.digest('hex').slice(0, 24) : null;
  }

  async prepare(
    branch: Branch,
    projectPath: string,
    setup: string | undefined,
    executor: SuiteExecutor,
    timeoutMs?: number,
  ) {
    if (!setup) return { how: 'none', ok: true, key: null } satisfies SetupResult;
    const key = await this.keyFor(branch.path, setup);
    const cached = key ? join(this.dir, key, 'node_modules') : null;
    const target = join(branch.path, 'node_modules');
    if (cached && (await pathExists(cached))) {
      await removeTree(target);
      await copyTree(cached, target);
      this.hits += 1;
      return { how: 'cached', ok: true, key } satisfies SetupResult;
    }
    this.misses += 1;
    const outcome = await executor.run({
      branchDir: branch.path,
      workspaceDir: projectPath,
      argv: ['/bin/sh', '-c', setup],
      env: childEnv({}),
      timeoutMs,
    });
    const ok = outcome.code === 0 && !outcome.timedOut;
    if (ok && cached && (await pathExists(target))) {
      // Copy to a temporary name first: a half-written cache entry must never look complete.
      const partial = join(this.dir, key as string, `partial-${process.pid}`);
      await mkdir(join(this.dir, key as string), { recursive: true });
      await copyTree(target, partial);
      await rename(partial, cached).catch(() => removeTree(partial));
    }
    return { how: 'ran', ok, key, outcome } satisfies SetupResult;
  }
}
