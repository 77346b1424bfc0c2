export type { BackendChoice, BackendKind } from './backends/backend.ts';
export { Branch, type BranchOptions, type BranchState } from './core/branch.ts';
export * from './core/errors.ts';
export { type GcReport, Workspace, type WorkspaceOptions } from './core/workspace.ts';

// Agent patterns (issue 5)
export * from './patterns/index.ts';

// Process layer (issue 4): BranchContext, branch.spawn/exec.
export * from './process/index.ts';
