import type { BackendKind } from '../../src/backends/backend.ts';
import { probeBackend } from '../../src/backends/factory.ts';
import { requireFeature } from './require-feature.ts';

/**
 * The backends the semantic suite runs against: every one available here.
 * A backend that CI must have (listed in `required`) fails the run under
 * BRANCHING_MUST_WORK=1 instead of being skipped.
 */
export interface BackendCase {
  kind: BackendKind;
  available: boolean;
  reason: string;
  /** Must this backend work here (a skip fails under BRANCHING_MUST_WORK=1)? */
  required: boolean;
}

/**
 * Overlay must work as root, and inside `branching run` (the launcher's mount
 * helper is there): that is how CI runs the suites as root and as nobody.
 */
export function overlayRequiredHere(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.platform === 'linux' && (process.getuid?.() === 0 || Boolean(env.BRANCHING_HELPER_FD));
}

export function backendRequired(kind: BackendKind): boolean {
  return kind === 'clone' || (kind === 'overlay' && overlayRequiredHere());
}

export function backendCases(kinds: BackendKind[] = ['clone', 'overlay', 'branchfs']): BackendCase[] {
  return kinds.map((kind) => {
    const probe = probeBackend(kind, process.cwd());
    return { kind, available: probe.available, reason: probe.reason, required: backendRequired(kind) };
  });
}

/** For `describe.skipIf`: true means skip. Under BRANCHING_MUST_WORK=1 a missing required feature throws instead. */
export function skipUnless(available: boolean, feature: string, reason: string, required = true): boolean {
  return !requireFeature(feature, available, reason, required);
}
