import type { CandidateResult, ErrorInfo, SpeculateOutcome } from './speculate.ts';

/**
 * The machine-readable report of `branching speculate --json` and
 * `branching best-of --json`: one JSON object on stdout. Either a run
 * report (`winner`, `candidates`, ...) or, when the run could not happen or
 * could not be judged (bad input, a baseline that crashed), `{ schemaVersion,
 * error }`. `speculateReportSchema` is its JSON Schema (draft 2020-12); the
 * schemaVersion changes on any incompatible change.
 */
export const REPORT_SCHEMA_VERSION = 2;

export interface SpeculateReport {
  schemaVersion: 2;
  command: 'speculate' | 'best-of';
  mode: 'first-wins' | 'best-of';
  workspace: string;
  cwd: string;
  framework: 'vitest' | 'jest' | 'command';
  dryRun: boolean;
  committed: boolean;
  uncommittedChanges: number | null;
  /** Index into `candidates`, or null when none passed. */
  winner: number | null;
  mustPass: string[];
  baseline: {
    source: 'run' | 'cache' | 'report';
    counts: Counts | null;
    failing: string[];
    durationMs: number | null;
  };
  candidates: ReportCandidate[];
  timings: { totalMs: number; firstPassMs: number | null; commitMs: number | null; losersGoneMs: number | null };
}

export interface SpeculateErrorReport {
  schemaVersion: 2;
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
    cwd: outcome.cwd,
    framework: outcome.framework,
    dryRun: outcome.dryRun,
    committed: outcome.committed,
    uncommittedChanges: outcome.uncommittedChanges,
    winner: outcome.winner?.index ?? null,
    mustPass: outcome.mustPass,
    baseline: {
      source: outcome.baseline.source,
      counts: outcome.baseline.counts,
      failing: outcome.baseline.failing,
      durationMs: outcome.baseline.durationMs,
    },
    candidates: outcome.candidates.map(({ pgid: _pgid, ...rest }) => rest),
    timings: outcome.timings,
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
    'stage',
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
    'isolation',
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
    stage: {
      enum: ['related', 'full', null],
      description:
        'the last suite stage whose results are in counts: related (the test files related to the change only), full, or null',
    },
    counts: {
      oneOf: [counts, { type: 'null' }],
      description: 'the tests of that stage; for a killed or timed-out candidate, the ones it had finished',
    },
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
    isolation: {
      type: 'object',
      required: ['sandboxed', 'reason'],
      additionalProperties: false,
      properties: { sandboxed: { type: 'boolean' }, reason: { type: 'string' } },
    },
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
        'cwd',
        'framework',
        'dryRun',
        'committed',
        'uncommittedChanges',
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
        cwd: { type: 'string' },
        uncommittedChanges: { type: ['integer', 'null'], minimum: 0 },
        framework: { enum: ['vitest', 'jest', 'command'] },
        dryRun: { type: 'boolean' },
        committed: { type: 'boolean' },
        winner: { type: ['integer', 'null'], minimum: 0 },
        mustPass: strings,
        baseline: {
          type: 'object',
          required: ['source', 'counts', 'failing', 'durationMs'],
          additionalProperties: false,
          properties: {
            source: { enum: ['run', 'cache', 'report'] },
            counts: { oneOf: [counts, { type: 'null' }] },
            failing: strings,
            durationMs: nullableNumber,
          },
        },
        candidates: { type: 'array', items: candidate },
        timings: {
          type: 'object',
          required: ['totalMs', 'firstPassMs', 'commitMs', 'losersGoneMs'],
          additionalProperties: false,
          properties: {
            totalMs: { type: 'number' },
            firstPassMs: nullableNumber,
            commitMs: nullableNumber,
            losersGoneMs: nullableNumber,
          },
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
