import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Branch } from '../core/branch.ts';
import { ArgumentError } from '../core/errors.ts';
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
 * Picks the runner for a pattern. `isolateProcesses` needs the process
 * layer (BranchContext), which this build does not include yet; rather than
 * pretend, it is refused until a sandboxed runner exists.
 */
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
    throw new ArgumentError(
      'isolateProcesses: true needs BranchContext (the process layer), which this build does not include yet; ' +
        'pass a `runner` that sandboxes candidates instead',
      { argument: 'isolateProcesses', code: 'ERR_BRANCHING_UNSUPPORTED' },
    );
  }
  return runner ?? inProcessRunner;
}
