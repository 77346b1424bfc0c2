// The former name of branch-run.ts, for modules that still import it by that name.
export * from './branch-run.ts';
