import type { BackendKind } from '../../src/backends/backend.ts';
import { probeBackend } from '../../src/backends/factory.ts';

/**
 * The backends the semantic suite runs against: every one available here.
 * A backend that CI must have (listed in `required`) fails the run under
 * BRANCHING_MUST_WORK=1 instead of being skipped.
 */
export interface BackendCase {
  kind: BackendKind;
  available: boolean;
  reason: string;
}

const MUST_WORK = process.env.BRANCHING_MUST_WORK === '1';

export function backendCases(kinds: BackendKind[] = ['clone', 'overlay', 'branchfs']): BackendCase[] {
  return kinds.map((kind) => {
    const probe = probeBackend(kind, process.cwd());
    return { kind, available: probe.available, reason: probe.reason };
  });
}

/** For `describe.skipIf`: true means skip. Under BRANCHING_MUST_WORK=1 a missing required feature throws instead. */
export function skipUnless(available: boolean, feature: string, reason: string, required = true): boolean {
  if (available) return false;
  if (MUST_WORK && required) {
    throw new Error(`BRANCHING_MUST_WORK=1 but ${feature} is unavailable here: ${reason}`);
  }
  console.warn(`skipping ${feature}: ${reason}`);
  return true;
}
