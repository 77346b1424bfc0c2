/**
 * The error hierarchy of the Python `branching` API, in TypeScript: code that
 * catches its classes by name keeps working against this library.
 *
 * Jest runs tests inside vm contexts, where an error thrown by this module
 * (loaded in the outer realm) fails `instanceof` against the copy of the
 * class loaded in the test's realm. So every error carries a tag, registered
 * with `Symbol.for` (which is shared by all realms of an isolate), naming its
 * class and all its ancestors; `Symbol.hasInstance` checks that tag, and
 * `isBranchingError(err, 'ConflictError')` does the same without classes.
 */

const TAG = Symbol.for('branching.error.kinds');

export type BranchingErrorName =
  | 'BranchingError'
  | 'ArgumentError'
  | 'MountError'
  | 'LayerError'
  | 'BranchError'
  | 'BranchStaleError'
  | 'BranchNotFoundError'
  | 'CommitError'
  | 'ConflictError'
  | 'AbortError'
  | 'ProcessBranchError'
  | 'ForkError'
  | 'NamespaceError'
  | 'TimeoutError'
  | 'MemoryBranchError'
  | 'SuiteError'
  | 'PatchError';

export interface BranchingErrorOptions {
  /** Stable, machine-readable code, e.g. `ERR_BRANCH_CONFLICT`. */
  code?: string;
  /** The filesystem path involved, if any. */
  path?: string;
  /** The argument (parameter name) that was rejected, if any. */
  argument?: string;
  /** The branch path (`/main/a/b`) involved, if any. */
  branchPath?: string;
  cause?: unknown;
}

function kindsOf(ctor: Function): string[] {
  const kinds: string[] = [];
  for (let c: any = ctor; c && c !== Error && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    if (typeof c.errorName === 'string') kinds.push(c.errorName);
  }
  return kinds;
}

export class BranchingError extends Error {
  static readonly errorName: BranchingErrorName = 'BranchingError';
  static readonly defaultCode: string = 'ERR_BRANCHING';
  declare readonly [TAG]: readonly string[];
  readonly code: string;
  readonly path?: string;
  readonly argument?: string;
  readonly branchPath?: string;

  constructor(message: string, options: BranchingErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const ctor = new.target as unknown as typeof BranchingError;
    Object.defineProperty(this, 'name', {
      value: ctor.errorName,
      enumerable: false,
      configurable: true,
      writable: true,
    });
    Object.defineProperty(this, TAG, { value: Object.freeze(kindsOf(ctor)), enumerable: false });
    this.code = options.code ?? ctor.defaultCode;
    if (options.path !== undefined) this.path = options.path;
    if (options.argument !== undefined) this.argument = options.argument;
    if (options.branchPath !== undefined) this.branchPath = options.branchPath;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    return isBranchingError(value, (this as unknown as typeof BranchingError).errorName);
  }
}

/** Realm-independent check: is `value` a branching error of `kind` (or a subclass of it)? */
export function isBranchingError(value: unknown, kind: BranchingErrorName = 'BranchingError'): value is BranchingError {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  const kinds = (value as Record<symbol, unknown>)[TAG];
  return Array.isArray(kinds) && kinds.includes(kind);
}

/** A bad argument: the message and `.argument` name it; nothing was changed. */
export class ArgumentError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'ArgumentError';
  static override readonly defaultCode: string = 'ERR_BRANCHING_ARGUMENT';
}
export class MountError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'MountError';
  static override readonly defaultCode: string = 'ERR_BRANCHING_MOUNT';
}
/** A layer stack used out of order (e.g. pop() on an empty stack), or its mounts changed under it. */
export class LayerError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'LayerError';
  static override readonly defaultCode: string = 'ERR_BRANCHING_LAYER';
}
export class BranchError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'BranchError';
  static override readonly defaultCode: string = 'ERR_BRANCH';
}
/** The branch's parent has moved on (a sibling committed): it may only abort. */
export class BranchStaleError extends BranchError {
  static override readonly errorName: BranchingErrorName = 'BranchStaleError';
  static override readonly defaultCode: string = 'ERR_BRANCH_STALE';
}
/**
 * Never thrown here: every Branch is an object its caller holds, and no call
 * looks a branch up by name or path. The class keeps the Python `branching`
 * API's hierarchy whole, so a `catch` that names it still compiles.
 */
export class BranchNotFoundError extends BranchError {
  static override readonly errorName: BranchingErrorName = 'BranchNotFoundError';
  static override readonly defaultCode: string = 'ERR_BRANCH_NOT_FOUND';
}
export class CommitError extends BranchError {
  static override readonly errorName: BranchingErrorName = 'CommitError';
  static override readonly defaultCode: string = 'ERR_BRANCH_COMMIT';
}
/** Another sibling committed first (first-winner-commit). */
export class ConflictError extends CommitError {
  static override readonly errorName: BranchingErrorName = 'ConflictError';
  static override readonly defaultCode: string = 'ERR_BRANCH_CONFLICT';
}
export class AbortError extends BranchError {
  static override readonly errorName: BranchingErrorName = 'AbortError';
  static override readonly defaultCode: string = 'ERR_BRANCH_ABORT';
}
export class ProcessBranchError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'ProcessBranchError';
  static override readonly defaultCode: string = 'ERR_BRANCH_PROCESS';
}
/** The child process could not be spawned, or died before it could take its call (the Python API's fork() failure). */
export class ForkError extends ProcessBranchError {
  static override readonly errorName: BranchingErrorName = 'ForkError';
  static override readonly defaultCode: string = 'ERR_BRANCH_FORK';
}
export class NamespaceError extends ProcessBranchError {
  static override readonly errorName: BranchingErrorName = 'NamespaceError';
  static override readonly defaultCode: string = 'ERR_BRANCH_NAMESPACE';
}
export class TimeoutError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'TimeoutError';
  static override readonly defaultCode: string = 'ERR_BRANCHING_TIMEOUT';
}
/**
 * Never thrown here: the Python `branching` API can branch a process's memory,
 * which a Node process cannot do to its heap (BranchContext starts a fresh
 * child instead). The class keeps that API's hierarchy whole.
 */
export class MemoryBranchError extends BranchingError {
  static override readonly errorName: BranchingErrorName = 'MemoryBranchError';
  static override readonly defaultCode: string = 'ERR_BRANCHING_MEMORY';
}

/** Is this a Node system error with the given errno code? Works across realms. */
export function hasErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return typeof err === 'object' && err !== null && codes.includes((err as { code?: unknown }).code as string);
}
