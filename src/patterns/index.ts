export { BeamSearch, type BeamSearchOptions } from './beam-search.ts';
export { type AttemptContext, BestOfN, type BestOfNOptions } from './best-of-n.ts';
export { InProcessRunner, inProcessRunner } from './candidate-runner.ts';
export { type CascadeContext, Cascaded, type CascadedOptions } from './cascaded.ts';
export { Pattern } from './pattern.ts';
export {
  type Critique,
  type CritiqueContext,
  Reflexion,
  type ReflexionContext,
  type ReflexionOptions,
} from './reflexion.ts';
export type { Evaluator } from './scoring.ts';
export { Speculate, type SpeculateOptions } from './speculate.ts';
export { type Judge, type JudgeContext, Tournament, type TournamentOptions } from './tournament.ts';
export {
  type DepthContext,
  type Expand,
  type Strategy,
  TreeOfThoughts,
  type TreeOfThoughtsOptions,
} from './tree-of-thoughts.ts';
export type {
  BranchTarget,
  Candidate,
  CandidateContext,
  CandidateFn,
  CandidateReturn,
  CandidateRunner,
  CommonPatternOptions,
  ModuleCandidate,
  SpeculationOutcome,
  SpeculationResult,
} from './types.ts';
