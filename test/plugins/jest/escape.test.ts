// The escape battery from inside a sandboxed Jest worker: the real Jest (runner preset) on a fixture
// project (test/fixtures/jest-escape) whose tests are the attempts of test/fixtures/plugin-escape.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { repoRoot } from '../../helpers/build.ts';
import { explain, fixtureProject, runJest } from '../../helpers/jest.ts';
import { snapshot } from '../../helpers/tree.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the sandbox launcher', probe.reason ?? '');
const tally = { attempts: 0, blocked: 0 };
afterAll(() => console.log(`escape battery (jest worker): ${tally.attempts} attempts, ${tally.blocked} blocked`));

describe.skipIf(skip)('escape attempts from a Jest worker', () => {
  it('every attempt is refused, and the project and the host /etc are as they were', async () => {
    const project = fixtureProject('jest-escape', { git: true });
    const id = `jest-${process.pid}-${Date.now()}`;
    const etc = `/etc/branching-escape-${id}`;
    try {
      const before = await snapshot(project.root);
      const run = await runJest(project, {
        mode: 'preset',
        env: {
          ESCAPE_ATTEMPTS: join(repoRoot, 'test', 'fixtures', 'plugin-escape', 'attempts.cjs'),
          ESCAPE_HOST_PID: String(process.pid),
          ESCAPE_ROOT: project.root,
          ESCAPE_ID: id,
        },
      });
      const results = Object.entries(run.statuses);
      // Control: the fixture really ran every attempt (in the sandbox: the helper control passed).
      expect(results.length, explain(run)).toBe(20);
      tally.attempts += results.length + 2;
      tally.blocked += results.filter(([, s]) => s === 'passed').length;
      const failed = results.filter(([, s]) => s !== 'passed').map(([name]) => name);
      expect(failed, explain(run)).toEqual([]);
      expect(run.code, explain(run)).toBe(0);
      const after = await snapshot(project.root);
      if (JSON.stringify(after) === JSON.stringify(before)) tally.blocked++;
      expect(after).toEqual(before);
      const reachedEtc = existsSync(etc);
      if (!reachedEtc) tally.blocked++;
      expect(reachedEtc, `a write from the worker (uid ${process.getuid?.()}) reached the host ${etc}`).toBe(false);
    } finally {
      rmSync(etc, { force: true });
      await project.cleanup();
    }
  });
});
