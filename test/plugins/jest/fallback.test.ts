// `testEnvironment: 'branching'` alone: the honest clone fallback. It isolates what it can (cwd and
// TMPDIR writes, per file and per test), and says, once, what it cannot (absolute paths).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, type FixtureProject, fixtureProject, type JestMajor, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';

let project: FixtureProject | undefined;
afterEach(async () => {
  await project?.cleanup();
  project = undefined;
});

const WRITES = '__tests__/writes.test.js';
const NOTICE = /jest-environment-branching: fallback mode for .* NOT isolated: writes to absolute paths/g;

describe('jest: the fallback (environment alone)', () => {
  it.each([30, 29, 28] as JestMajor[])(
    'Jest %i: isolates relative, TMPDIR and .git writes; absolute and __dirname writes reach the tree, as the notice says',
    async (jest) => {
      project = fixtureProject('jest-writes', { git: true });
      const gitBefore = await snapshot(join(project.root, '.git'));
      const run = await runJest(project, { jest, args: [WRITES] });
      expect(run.code, explain(run)).toBe(0);
      expect(Object.values(run.statuses).every((s) => s === 'passed')).toBe(true);
      expect(run.stderr.match(NOTICE)).toHaveLength(1);
      expect(readFileSync(join(project.root, 'data.txt'), 'utf8')).toBe('original\n');
      expect(existsSync(join(project.root, 'relative.txt'))).toBe(false);
      expect(await snapshot(join(project.root, '.git'))).toEqual(gitBefore);
      // Not isolated in this mode, and said so:
      expect(existsSync(join(project.root, 'absolute.txt'))).toBe(true);
      expect(existsSync(join(project.root, '__tests__', 'dirname.txt'))).toBe(true);
      expect(run.reported).toContain('sandbox no');
    },
  );

  it('vanilla Jest fails the writing suite: the isolation the plugin adds is what makes it pass', async () => {
    project = fixtureProject('jest-writes');
    const run = await runJest(project, { mode: 'vanilla', args: [WRITES] });
    expect(run.code).toBe(1);
    expect(run.statuses[`${WRITES} > sees the original data`]).toBe('failed');
    expect(readFileSync(join(project.root, 'data.txt'), 'utf8')).toBe('changed by a test');
  });

  it('the runner without a sandbox says why and hands the run to Jest’s default runner', async () => {
    project = fixtureProject('jest-writes');
    const run = await runJest(project, { mode: 'preset', args: [WRITES], env: { BRANCHING_JEST_NO_SANDBOX: '1' } });
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr).toContain(
      "jest-environment-branching/runner: no sandbox (BRANCHING_JEST_NO_SANDBOX=1); running with Jest's default runner",
    );
    expect(run.stderr).toContain('fallback mode for');
    expect(run.stderr).toContain('(no sandbox: BRANCHING_JEST_NO_SANDBOX=1)');
  });

  it('network: false is refused rather than faked without the sandbox', async () => {
    project = fixtureProject('jest-writes');
    const run = await runJest(project, { options: { network: false }, args: [WRITES] });
    expect(run.code).toBe(1);
    expect(explain(run)).toContain('network: false needs the sandbox runner');
  });
});
