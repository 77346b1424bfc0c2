// A project that sets its own testEnvironment next to the preset (the real jest-environment-jsdom,
// or a custom class) gets the same isolation: the runner hands its workers a subclass of that
// environment with the branching hooks. A docblock environment, which Jest loads directly, is said.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, type FixtureProject, fixtureProject, type JestRunOptions, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';
import { MODES } from './modes.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

const DOM = '__tests__/dom.test.js';
const DOCBLOCK = '__tests__/docblock.test.js';
const sandboxSkip = MODES.find((m) => m.mode === 'preset')!.skip;

/** The preset with the sandbox, and the preset without it (Jest's default runner, clone branches). */
const RUNS: Array<{ label: string; skip: boolean; run: JestRunOptions }> = [
  { label: 'sandbox', skip: sandboxSkip, run: { mode: 'preset' } },
  { label: 'fallback', skip: false, run: { mode: 'preset', env: { BRANCHING_JEST_NO_SANDBOX: '1' } } },
];

describe.each(RUNS)('jest: the project’s own testEnvironment, $label', ({ label, skip, run: base }) => {
  it.skipIf(skip).each([
    ['jsdom', undefined, 'jsdom'],
    ['a custom class', './custom-env.js', 'set by the custom environment'],
  ])('%s: runs in it, with per-test branches', async (_name, env, marker) => {
    project = fixtureProject('jest-jsdom');
    const before = await snapshot(project.root);
    const fixtureEnv = env ? { JEST_FIXTURE_ENV: join(project.root, env) } : {};
    const run = await runJest(project, { ...base, env: { ...base.env, ...fixtureEnv }, args: [DOM] });
    expect(run.code, explain(run)).toBe(0);
    expect(run.reported).toEqual([`environment ${marker}`]);
    expect(Object.values(run.statuses)).toEqual(['passed', 'passed', 'passed']);
    expect(await snapshot(project.root)).toEqual(before);
  });

  it.skipIf(skip)('an environment picked in a docblock is named in a notice', async () => {
    project = fixtureProject('jest-jsdom');
    const run = await runJest(project, { ...base, args: [DOCBLOCK] });
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr).toContain(`jest-environment-branching: ${join(project.root, DOCBLOCK)}`);
    // (spelled in two parts: Vitest reads that pragma in this file's text too)
    expect(run.stderr).toContain(`its docblock picks \`@${'jest-environment'} node\``);
    // The sandbox still gives the file its branch (the worker mounts it); the fallback cannot.
    expect(existsSync(join(project.root, 'docblock.txt'))).toBe(label === 'fallback');
    expect(run.stderr).toContain(label === 'fallback' ? 'is NOT isolated' : 'without per-test branches');
  });
});
