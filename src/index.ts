export type { BackendChoice, BackendKind } from './backends/backend.ts';
export type { Mounter } from './backends/overlay.ts';
export { exchangeTrees } from './base/fsutil.ts';
export { type LaunchStatus, parseStatus, sandboxError } from './base/mount-wire.ts';
export { Branch, type BranchOptions, type BranchState } from './core/branch.ts';
export { commitStateRoot } from './core/state.ts';
export { type GcReport, Workspace, type WorkspaceOptions } from './core/workspace.ts';
export { commonAncestor, defaultBranchRoot, gitWorkTreeTop } from './core/worktree.ts';
// The layer engine (also an entry of its own, `branching/layers`): errors, LayerStack, the helper client.
export * from './layers.ts';
// Agent patterns: speculate, best-of, beam search, tournaments over branches.
export * from './patterns/index.ts';
// Process layer: BranchContext, branch.spawn/exec.
export * from './process/index.ts';
// Sandbox primitives, also used by the Jest and Vitest plugins' runners and environments.
export {
  type AppArmorProfile,
  apparmorProfileFor,
  detectUsernsRestriction,
  type UsernsRestriction,
} from './sandbox/apparmor.ts';
export {
  extraWritableDirs,
  LaunchSpec,
  launchEnv,
  launchOnce,
  locateLauncher,
  probeSandbox,
  readLaunchStatus,
  type SandboxProbe,
} from './sandbox/launcher.ts';
export { isOpaqueDir } from './sandbox/opaque.ts';
// Flaky-test tools: flake rates, noisy bisection, polluter search.
export { type BisectOptions, type BisectReport, type BisectStatus, bisectFlaky } from './suite/bisect.ts';
export { flakeEvidenceFromReport, loadFlakePrior } from './suite/bisect-evidence.ts';
export { type Culprit, NoisyBisector } from './suite/bisect-model.ts';

// speculate / bestOf: candidate patches judged by the project's own test suite (src/suite).
export { PatchError, SuiteError } from './suite/errors.ts';
export {
  liveProcessesInGroup,
  ProcessGroupExecutor,
  type SuiteExecutor,
  type SuiteExit,
  type SuiteRequest,
} from './suite/executor.ts';
export {
  type FlakyOptions,
  type FlakyReport,
  type FlakyVerdict,
  measureFlakiness,
  type TestFlakiness,
} from './suite/flaky.ts';
export type { CandidateKind, FileMap, PatchCandidate, PatchFunction } from './suite/patch.ts';
export {
  ddmin,
  findPolluter,
  type PolluterOptions,
  type PolluterReport,
  type PolluterStatus,
} from './suite/polluter.ts';
export {
  REPORT_SCHEMA_VERSION,
  type SpeculateErrorReport,
  type SpeculateReport,
  speculateReportSchema,
  toReport,
} from './suite/report.ts';
export {
  type BaselineResult,
  type BestOfOptions,
  bestOf,
  type CandidateResult,
  type CandidateState,
  type ProgressEvent,
  type SpeculateOutcome,
  type SuiteSpeculateOptions,
  speculate,
} from './suite/speculate.ts';
export { seededRandom, wilsonInterval } from './suite/stats.ts';
export type { TestSpec } from './suite/suite-run.ts';
export type { Framework } from './suite/test-report.ts';
