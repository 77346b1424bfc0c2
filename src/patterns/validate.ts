import { ArgumentError } from '../base/errors.ts';
import type { Candidate, CandidateContext, CommonPatternOptions } from './types.ts';

/** Argument checks shared by the patterns: each error names the argument it rejects. */

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function positiveInteger(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ArgumentError(`${argument} must be a positive integer; got ${show(value)}`, { argument });
  }
  return value;
}

export function optionalPositiveInteger(value: unknown, argument: string): number | undefined {
  return value === undefined ? undefined : positiveInteger(value, argument);
}

export function optionalDuration(value: unknown, argument: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ArgumentError(`${argument} must be a positive number of milliseconds; got ${show(value)}`, {
      argument,
    });
  }
  return value;
}

export function optionalFunction<F extends Function>(value: unknown, argument: string): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') {
    throw new ArgumentError(`${argument} must be a function; got ${show(value)}`, { argument });
  }
  return value as F;
}

export function requiredFunction<F extends Function>(value: unknown, argument: string): F {
  if (value === undefined) throw new ArgumentError(`${argument} is required`, { argument });
  return optionalFunction<F>(value, argument)!;
}

export function optionsObject<T extends object>(value: unknown, argument = 'options'): T {
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ArgumentError(`${argument} must be an object; got ${show(value)}`, { argument });
  }
  return value as T;
}

export function isCandidate(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object') return false;
  const spec = value as { module?: unknown; export?: unknown };
  return typeof spec.module === 'string' && (spec.export === undefined || typeof spec.export === 'string');
}

export function candidate<C extends CandidateContext>(value: unknown, argument: string): Candidate<C> {
  if (!isCandidate(value)) {
    throw new ArgumentError(`${argument} must be a function or { module, export }; got ${show(value)}`, {
      argument,
    });
  }
  return value as Candidate<C>;
}

export function candidateList<C extends CandidateContext>(
  value: unknown,
  argument: string,
  { allowEmpty = false } = {},
): Candidate<C>[] {
  if (!Array.isArray(value)) {
    throw new ArgumentError(`${argument} must be an array of candidates; got ${show(value)}`, { argument });
  }
  if (value.length === 0 && !allowEmpty) throw new ArgumentError(`${argument} is empty`, { argument });
  return value.map((c, i) => candidate<C>(c, `${argument}[${i}]`));
}

export interface CommonSettings {
  timeout: number | undefined;
  maxParallel: number | undefined;
  signal: AbortSignal | undefined;
  cancelGrace: number;
}

export function commonSettings(options: CommonPatternOptions): CommonSettings {
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ArgumentError(`signal must be an AbortSignal; got ${show(signal)}`, { argument: 'signal' });
  }
  const grace = options.cancelGrace;
  if (grace !== undefined && (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0)) {
    throw new ArgumentError(`cancelGrace must be a non-negative number of milliseconds; got ${show(grace)}`, {
      argument: 'cancelGrace',
    });
  }
  return {
    timeout: optionalDuration(options.timeout, 'timeout'),
    maxParallel: optionalPositiveInteger(options.maxParallel, 'maxParallel'),
    signal,
    cancelGrace: grace ?? 5000,
  };
}
