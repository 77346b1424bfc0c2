import { type CancelScope, type CandidateJob, type RunContext, runCandidate, Serializer } from './engine.ts';
import type { CandidateContext, SpeculationResult } from './types.ts';

/**
 * Runs a group of candidates where successes commit as they arrive. With
 * `firstWins`, the first commit cancels the rest of the group (`lost`);
 * without it, every success tries to commit and the later ones meet the
 * core's ConflictError. Decisions are serialized, so exactly one commit
 * reaches the target, or none.
 */
export async function firstWinsGroup<C extends CandidateContext>(
  run: RunContext,
  group: CancelScope,
  jobs: CandidateJob<C>[],
  firstWins: boolean,
): Promise<{ results: SpeculationResult[]; winner: SpeculationResult | null }> {
  const decisions = new Serializer();
  let winner: SpeculationResult | null = null;
  const results = await Promise.all(
    jobs.map(async (job) => {
      const settled = await runCandidate(run, { ...job, holdSlotOnSuccess: true });
      await decisions
        .run(async () => {
          const { result, branch } = settled;
          if (!branch) return;
          if (!result.success || (firstWins && winner)) return void (await branch.abort().catch(() => {}));
          if (!run.mayCommit || group.kind === 'timeout') {
            // The run timed out or was aborted while this success waited for its turn: too late to commit.
            result.success = false;
            result.cancelled = true;
            result.exception = group.reason;
            return void (await branch.abort().catch(() => {}));
          }
          try {
            await branch.commit();
            winner ??= result;
            if (firstWins) group.cancel('lost');
          } catch (err) {
            result.success = false;
            result.exception = err;
            await branch.abort().catch(() => {});
          }
        })
        .finally(settled.release);
      return settled.result;
    }),
  );
  return { results, winner };
}
