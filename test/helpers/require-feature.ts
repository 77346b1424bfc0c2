/**
 * Feature gates for tests: `it.skipIf(!requireFeature('overlay in a user namespace', probe.overlay, probe.reason))`.
 * A missing feature skips the test (with the reason logged once), except under
 * BRANCHING_MUST_WORK=1, where it throws so that the suite fails loudly (unless
 * the feature is not `required` here, like BranchFS, which CI has no mount of).
 */
const reported = new Set<string>();

export function requireFeature(name: string, available: boolean, reason?: string | null, required = true): boolean {
  if (available) return true;
  const why = `${name} is unavailable here${reason ? `: ${reason}` : ''}`;
  if (required && process.env.BRANCHING_MUST_WORK === '1') {
    throw new Error(`BRANCHING_MUST_WORK=1 but ${why}`);
  }
  if (!reported.has(name)) {
    reported.add(name);
    console.warn(`skipping tests that need ${why}`);
  }
  return false;
}
