import type { Plugin } from 'vite';
import type { BranchingOptions } from './index.js';

export interface BranchingPool {
  name: 'branching';
  createPoolWorker(options: unknown): unknown;
}

/** The Vite plugin: sets the environment, the sandbox pool, the per-test setup file and the snapshot environment. */
export default function branching(options?: BranchingOptions): Plugin;
/** The sandbox pool alone, for `test.pool`. */
export function branchingPool(options?: BranchingOptions): BranchingPool;
