import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ArgumentError } from '../base/errors.ts';
import type { Branch } from '../core/branch.ts';
import { BranchContext } from '../process/context.ts';
import type { Candidate, CandidateContext, CandidateFn, CandidateRunner, ModuleCandidate } from './types.ts';

async function loadModuleCandidate(spec: ModuleCandidate): Promise<CandidateFn<any>> {
  const url = isAbsolute(spec.module) ? pathToFileURL(spec.module).href : spec.module;
  const mod = (await import(url)) as Record<string, unknown>;
  const name = spec.export ?? 'default';
  const fn = mod[name];
  if (typeof fn !== 'function') {
    throw new ArgumentError(`module ${spec.module} has no function export ${JSON.stringify(name)}`, {
      argument: 'candidates',
      path: spec.module,
    });
  }
  return fn as CandidateFn<any>;
}

/** The default runner: calls the candidate in this process with the branch's directory. */
export class InProcessRunner implements CandidateRunner {
  async run<C extends CandidateContext>(candidate: Candidate<C>, branch: Branch, ctx: C): Promise<unknown> {
    const fn = typeof candidate === 'function' ? candidate : await loadModuleCandidate(candidate);
    return fn(branch.path, ctx);
  }
}

export const inProcessRunner: CandidateRunner = new InProcessRunner();

/**
 * Runs each candidate in its own sandboxed process (BranchContext) with the
 * branch at the project's own path. A function cannot cross into another
 * process, so candidates must be module exports `{ module, export }`; they
 * are called as `(path, context)` where `context` is the pattern's context
 * without its AbortSignal: cancelling kills the whole process tree instead.
 */
export class SandboxedRunner implements CandidateRunner {
  constructor(private readonly options: { timeout?: number; network?: boolean } = {}) {}

  async run<C extends CandidateContext>(candidate: Candidate<C>, branch: Branch, ctx: C): Promise<unknown> {
    if (typeof candidate === 'function') {
      throw new ArgumentError(
        'isolateProcesses runs candidates in other processes, so each must be a module export { module, export }, not a function',
        { argument: 'candidates', code: 'ERR_BRANCHING_CANDIDATE_NOT_MODULE' },
      );
    }
    const { signal, ...portable } = ctx;
    const context = new BranchContext(
      { module: candidate.module, export: candidate.export ?? 'default', args: [portable], withPath: true },
      { workspace: branch, signal, timeout: this.options.timeout, network: this.options.network },
    );
    try {
      return await context.wait();
    } finally {
      await context.abort();
    }
  }
}

/** Picks the runner for a pattern: a custom one, the sandboxed one (`isolateProcesses`), or in-process. */
export function resolveRunner(options: { runner?: CandidateRunner; isolateProcesses?: boolean }): CandidateRunner {
  const { runner, isolateProcesses } = options;
  if (isolateProcesses !== undefined && typeof isolateProcesses !== 'boolean') {
    throw new ArgumentError(`isolateProcesses must be a boolean; got ${JSON.stringify(isolateProcesses)}`, {
      argument: 'isolateProcesses',
    });
  }
  if (runner !== undefined && (runner === null || typeof (runner as CandidateRunner).run !== 'function')) {
    throw new ArgumentError('runner must be an object with a run(candidate, branch, ctx) method', {
      argument: 'runner',
    });
  }
  if (isolateProcesses) {
    if (runner) {
      throw new ArgumentError('pass either isolateProcesses or runner, not both', { argument: 'isolateProcesses' });
    }
    return new SandboxedRunner();
  }
  return runner ?? inProcessRunner;
}
