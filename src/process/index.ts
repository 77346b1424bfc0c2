export {
  BranchContext,
  BranchContextGroup,
  type ProcessFailure,
  type ProcessOutcome,
} from './context.ts';
export { BranchSubprocess, type ExecOptions, type ExecResult, execIn, spawnIn } from './exec.ts';
export type { LimitsReport } from './limits.ts';
export type {
  BranchContextOptions,
  CommandTarget,
  ModuleTarget,
  ResourceLimits,
  StdioOption,
  Target,
} from './options.ts';
