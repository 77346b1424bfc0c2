import type { CandidateResult, ErrorInfo, SpeculateOutcome } from './speculate.ts';

/**
 * The machine-readable report of `branching speculate --json` and
 * `branching best-of --json`: one JSON object on stdout. Either a run
 * report (`winner`, `candidates`, ...) or, when the run could not happen or
 * could not be judged (bad input, a baseline that crashed), `{ schemaVersion,
 * error }`. `speculateReportSchema` is its JSON Schema (draft 2020-12); the
 * schemaVersion changes on any incompatible change.
 */
export const REPORT_SCHEMA_VERSION = 1;

export interface SpeculateReport {
  schemaVersion: 1;
  command: 'speculate' | 'best-of';
  mode: 'first-wins' | 'best-of';
  workspace: string;
  framework: 'vitest' | 'jest' | 'command';
  dryRun: boolean;
  committed: boolean;
  /** Index into `candidates`, or null when none passed. */
  winner: number | null;
  mustPass: string[];
  baseline: { counts: Counts | null; failing: string[]; durationMs: number | null };
  candidates: ReportCandidate[];
  timings: { totalMs: number; firstPassMs: number | null; commitMs: number | null };
}

export interface SpeculateErrorReport {
  schemaVersion: 1;
  command: 'speculate' | 'best-of';
  error: ErrorInfo;
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

export type ReportCandidate = Omit<CandidateResult, 'pgid'>;

export function toReport(outcome: SpeculateOutcome, command: 'speculate' | 'best-of'): SpeculateReport {
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    command,
    mode: outcome.mode,
    workspace: outcome.workspace,
    framework: outcome.framework,
    dryRun: outcome.dryRun,
    committed: outcome.committed,
    winner: outcome.winner?.index ?? null,
    mustPass: outcome.mustPass,
    baseline: {
      counts: outcome.baseline.counts,
      failing: outcome.baseline.failing,
      durationMs: outcome.baseline.durationMs,
    },
    candidates: outcome.candidates.map(({ pgid: _pgid, ...rest }) => rest),
    timings: outcome.timings,
  };
}

export function toErrorReport(err: unknown, command: 'speculate' | 'best-of'): SpeculateErrorReport {
  const e = err as { name?: string; code?: string; message?: string };
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    command,
    error: {
      name: e?.name ?? 'Error',
      code: typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN',
      message: e?.message ?? String(err),
    },
  };
}

const nullableNumber = { type: ['number', 'null'] } as const;
const strings = { type: 'array', items: { type: 'string' } } as const;
const counts = {
  type: 'object',
  required: ['passed', 'failed', 'skipped'],
  additionalProperties: false,
  properties: {
    passed: { type: 'integer', minimum: 0 },
    failed: { type: 'integer', minimum: 0 },
    skipped: { type: 'integer', minimum: 0 },
  },
} as const;
const errorInfo = {
  type: 'object',
  required: ['name', 'code', 'message'],
  additionalProperties: false,
  properties: { name: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
} as const;
const command = { enum: ['speculate', 'best-of'] } as const;

const candidate = {
  type: 'object',
  required: [
    'index',
    'name',
    'kind',
    'state',
    'counts',
    'regressions',
    'stillFailing',
    'fixed',
    'failures',
    'changedFiles',
    'changedLines',
    'durationMs',
    'score',
    'error',
    'branchDir',
  ],
  additionalProperties: false,
  properties: {
    index: { type: 'integer', minimum: 0 },
    name: { type: 'string' },
    kind: { enum: ['diff', 'files', 'function'] },
    state: {
      enum: [
        'winner',
        'passed',
        'failed',
        'error',
        'timeout',
        'killed',
        'cancelled',
        'queued',
        'applying',
        'running',
        'judging',
      ],
      description:
        'winner: passed and committed (or chosen, under dryRun); passed: passed but lost; failed: judged and failed; error: did not apply, or the suite crashed or wrote no usable report; timeout: killed at the time limit; killed: stopped because another candidate won; cancelled: never started',
    },
    counts: { oneOf: [counts, { type: 'null' }] },
    regressions: { ...strings, description: 'tests that passed at baseline and do not now' },
    stillFailing: { ...strings, description: 'mustPass entries that do not pass' },
    fixed: { ...strings, description: 'tests that failed at baseline and pass now' },
    failures: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'message'],
        additionalProperties: false,
        properties: { id: { type: 'string' }, message: { type: 'string' } },
      },
    },
    changedFiles: strings,
    changedLines: { type: ['integer', 'null'], minimum: 0 },
    durationMs: nullableNumber,
    score: nullableNumber,
    error: { oneOf: [errorInfo, { type: 'null' }] },
    branchDir: { type: ['string', 'null'], description: 'the kept branch directory (--keep)' },
  },
} as const;

/** JSON Schema (draft 2020-12) of the `--json` output: a run report or an error report. */
export const speculateReportSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'branching speculate / best-of report',
  oneOf: [
    {
      type: 'object',
      required: [
        'schemaVersion',
        'command',
        'mode',
        'workspace',
        'framework',
        'dryRun',
        'committed',
        'winner',
        'mustPass',
        'baseline',
        'candidates',
        'timings',
      ],
      additionalProperties: false,
      properties: {
        schemaVersion: { const: REPORT_SCHEMA_VERSION },
        command,
        mode: { enum: ['first-wins', 'best-of'] },
        workspace: { type: 'string' },
        framework: { enum: ['vitest', 'jest', 'command'] },
        dryRun: { type: 'boolean' },
        committed: { type: 'boolean' },
        winner: { type: ['integer', 'null'], minimum: 0 },
        mustPass: strings,
        baseline: {
          type: 'object',
          required: ['counts', 'failing', 'durationMs'],
          additionalProperties: false,
          properties: { counts: { oneOf: [counts, { type: 'null' }] }, failing: strings, durationMs: nullableNumber },
        },
        candidates: { type: 'array', items: candidate },
        timings: {
          type: 'object',
          required: ['totalMs', 'firstPassMs', 'commitMs'],
          additionalProperties: false,
          properties: { totalMs: { type: 'number' }, firstPassMs: nullableNumber, commitMs: nullableNumber },
        },
      },
    },
    {
      type: 'object',
      required: ['schemaVersion', 'command', 'error'],
      additionalProperties: false,
      properties: { schemaVersion: { const: REPORT_SCHEMA_VERSION }, command, error: errorInfo },
    },
  ],
} as const;
