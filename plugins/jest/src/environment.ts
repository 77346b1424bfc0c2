// testEnvironment: 'branching'. Jest constructs this class; it builds the real environment: the
// project's own environment class (node, jsdom, a custom one; the runner says which, since its
// workers are handed this one instead) extended with the branching hooks, or jest-environment-node
// when this is the configured environment itself.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { BranchingHooks, type CircusEvent } from './hooks.ts';
import { requireFrom, requireJestModule } from './jest-modules.ts';
import { unsupportedJest } from './versions.ts';

interface JestEnvironmentLike {
  global: any;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  handleTestEvent?(event: unknown, state: unknown): unknown;
}

type EnvironmentClass = new (config: any, context: any) => JestEnvironmentLike;

/** Env var the runner sets: project config id -> the environment module the project configured. */
export const BASES_ENV = 'BRANCHING_JEST_BASES';

/** This bundle's own path (dist/index.cjs), which the runner substitutes for projects' environments. */
export function ownEntry(): string {
  return realpathSync(join(__dirname, 'index.cjs'));
}

function exportedClass(mod: any, path: string): EnvironmentClass {
  const cls = mod?.TestEnvironment ?? mod?.default ?? mod;
  if (typeof cls !== 'function') {
    throw new TypeError(`jest-environment-branching: ${path} does not export a test environment class`);
  }
  return cls as EnvironmentClass;
}

/** The class the project configured, or jest-environment-node. */
function baseClass(projectConfig: { id?: string }): EnvironmentClass {
  const bases = JSON.parse(process.env[BASES_ENV] ?? '{}') as Record<string, string>;
  const path = projectConfig.id === undefined ? undefined : bases[projectConfig.id];
  if (path && realpathSync(path) !== ownEntry()) return exportedClass(requireFrom(path), path);
  return requireJestModule('jest-environment-node', 'jest-config').TestEnvironment as EnvironmentClass;
}

const wrapped = new WeakMap<EnvironmentClass, EnvironmentClass>();

/** `Base` plus the branching hooks around its setup, handleTestEvent and teardown. */
export function withBranching(Base: EnvironmentClass): EnvironmentClass {
  const existing = wrapped.get(Base);
  if (existing) return existing;
  class Branching extends Base {
    branching: BranchingHooks;
    constructor(config: any, context: any) {
      super(config, context);
      this.branching = new BranchingHooks(this, config.projectConfig, context.testPath);
    }
    override async setup(): Promise<void> {
      await super.setup();
      await this.branching.setup();
    }
    override async handleTestEvent(event: CircusEvent, state: any): Promise<void> {
      await this.branching.handleTestEvent(event, state);
      if (typeof super.handleTestEvent === 'function') await super.handleTestEvent(event, state);
    }
    override async teardown(): Promise<void> {
      try {
        await this.branching.teardown();
      } finally {
        await super.teardown();
      }
    }
  }
  wrapped.set(Base, Branching);
  return Branching;
}

/**
 * What Jest constructs. A constructor that returns an object makes `new` yield it: the instance is
 * of the project's environment class, extended.
 */
export class BranchingEnvironment {
  constructor(config: any, context: any) {
    const refusal =
      unsupportedJest() ??
      (config?.projectConfig === undefined ? unsupportedJest('27 or older (no projectConfig)') : null);
    if (refusal) throw new Error(refusal);
    const Env = withBranching(baseClass(config.projectConfig));
    // biome-ignore lint/correctness/noConstructorReturn: the instance is the wrapped project environment
    return new Env(config, context);
  }
}
