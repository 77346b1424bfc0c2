import { BranchingError, type BranchingErrorName } from '../base/errors.ts';

/**
 * The test suite could not be judged: the runner crashed, wrote no report,
 * or wrote one that is not the JSON we asked for. Codes:
 * ERR_SUITE_CRASHED, ERR_SUITE_NO_REPORT, ERR_SUITE_REPORT_INVALID,
 * ERR_SUITE_SPAWN.
 */
export class SuiteError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'SuiteError';
  static override readonly defaultCode: string = 'ERR_SUITE';
}

/** A candidate could not be applied (git's message is in `.message`). Codes: ERR_PATCH_APPLY, ERR_PATCH_FUNCTION. */
export class PatchError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'PatchError';
  static override readonly defaultCode: string = 'ERR_PATCH_APPLY';
}
