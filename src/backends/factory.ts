import { ArgumentError, MountError } from '../base/errors.ts';
import { BACKEND_KINDS, type Backend, type BackendChoice, type BackendKind, type BackendProbe } from './backend.ts';
import { CloneBackend } from './clone.ts';
import { probeOverlay, reclaimOverlayDir } from './overlay.ts';

type Prober = (workspace: string) => BackendProbe;

/** One probe per backend file; `clone` always works. The factory is the single point of choice. */
const probers = new Map<BackendKind, Prober>([
  [
    'clone',
    () => ({
      kind: 'clone',
      available: true,
      reason: 'portable copy-on-write copies',
      create: () => new CloneBackend(),
    }),
  ],
  ['overlay', probeOverlay],
  ['branchfs', () => ({ kind: 'branchfs', available: false, reason: 'the workspace is not on a BranchFS mount' })],
]);

export function probeBackend(kind: BackendKind, workspace: string): BackendProbe {
  return probers.get(kind)!(workspace);
}

export interface BackendSelection {
  backend: Backend;
  /** Present when `auto` settled for less than the fastest backend: the notice to show. */
  fallbackNotice: string | null;
}

export function parseBackendChoice(value: unknown, argument: string): BackendChoice {
  if (value === undefined || value === null || value === '') return 'auto';
  if (value === 'auto' || (typeof value === 'string' && (BACKEND_KINDS as readonly string[]).includes(value))) {
    return value as BackendChoice;
  }
  throw new ArgumentError(
    `${argument} must be one of auto, ${BACKEND_KINDS.join(', ')}; got ${JSON.stringify(value)}`,
    {
      argument,
    },
  );
}

/**
 * `auto` prefers branchfs (when the workspace is a BranchFS mount), then
 * overlay, then clone, and reports the fallback. An explicit choice (option
 * or BRANCHING_BACKEND) never falls back: it works or throws a MountError
 * that says why. BRANCHING_NO_FALLBACK=1 (or `fallback: false`) turns the
 * fallback into that error too.
 */
export function selectBackend(
  workspace: string,
  choice: BackendChoice,
  options: { allowFallback: boolean },
): BackendSelection {
  if (choice !== 'auto') {
    const probe = probeBackend(choice, workspace);
    if (!probe.available || !probe.create) {
      throw new MountError(`backend '${choice}' is unavailable for ${workspace}: ${probe.reason}`, {
        path: workspace,
        code: 'ERR_BRANCHING_BACKEND_UNAVAILABLE',
      });
    }
    return { backend: probe.create(), fallbackNotice: null };
  }
  const preferred: BackendKind[] = ['branchfs', 'overlay'];
  const declined: string[] = [];
  for (const kind of preferred) {
    const probe = probeBackend(kind, workspace);
    if (probe.available && probe.create) return { backend: probe.create(), fallbackNotice: null };
    if (kind === 'overlay') declined.push(`overlay: ${probe.reason}`);
  }
  const notice = `branching: using the portable clone backend for ${workspace} (${declined.join('; ')})`;
  if (!options.allowFallback) {
    throw new MountError(`${notice}, and falling back is forbidden (BRANCHING_NO_FALLBACK=1 or fallback: false)`, {
      path: workspace,
      code: 'ERR_BRANCHING_FALLBACK_FORBIDDEN',
    });
  }
  return { backend: probeBackend('clone', workspace).create!(), fallbackNotice: notice };
}

/**
 * How to reclaim the dir of a dead branch made by backend `kind` (from its
 * info.json): an overlay branch may still be mounted, whatever backend this
 * process uses now.
 */
export function reclaimerFor(kind: string | undefined, current: Backend): (dir: string) => Promise<void> {
  if (kind === 'overlay' && current.kind !== 'overlay') return (dir) => reclaimOverlayDir(dir);
  return (dir) => current.reclaim(dir);
}
