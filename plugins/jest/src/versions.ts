// The Jest majors this plugin is tested with. Anything else is refused at startup with its version
// named: an older runner API, for one, would otherwise run no test at all and exit 0.
import { runningJestVersion } from './jest-modules.ts';

export const SUPPORTED_MAJORS = [28, 29, 30] as const;
export const PEER_RANGE = '>=28.0.0 <31.0.0';

/** The refusal message for an unsupported Jest, or null when this one is supported (or unknown). */
export function unsupportedJest(version: string | null = runningJestVersion()): string | null {
  if (version === null) return null;
  const major = Number(version.split('.')[0]);
  if ((SUPPORTED_MAJORS as readonly number[]).includes(major)) return null;
  return `jest-environment-branching supports Jest ${SUPPORTED_MAJORS.join(', ')} (${PEER_RANGE}); this is Jest ${version}, which it refuses to run rather than run it wrongly`;
}
