import type { BranchingOptions } from './index.js';

export type { BranchingOptions };

/** Validates `environmentOptions.branching` (ArgumentError naming the option) and fills in the defaults. */
export function resolveOptions(raw: unknown): Required<Omit<BranchingOptions, 'root'>> & { root: string | undefined };
