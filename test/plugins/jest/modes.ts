import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import type { JestMode } from '../../helpers/jest.ts';

const probe = probeSandbox();

/** The two ways the plugin isolates: the clone fallback (environment alone) and the sandbox (preset). */
export const MODES: Array<{ mode: JestMode; label: string; skip: boolean }> = [
  { mode: 'environment', label: 'fallback (environment alone)', skip: false },
  {
    mode: 'preset',
    label: 'sandbox (preset)',
    skip: skipUnless(probe.available, 'the sandbox launcher', probe.reason ?? ''),
  },
];
