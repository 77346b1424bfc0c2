// The escape battery from inside a sandboxed Vitest worker: the real Vitest on a fixture project
// (test/fixtures/vitest-escape) whose tests are the attempts of test/fixtures/plugin-escape.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { probeSandbox } from '../../../src/sandbox/launcher.ts';
import { skipUnless } from '../../helpers/backends.ts';
import { repoRoot } from '../../helpers/build.ts';
import { snapshot } from '../../helpers/tree.ts';
import { fixtureProject, runVitest } from '../../helpers/vitest-project.ts';

const probe = probeSandbox();
const skip = skipUnless(probe.available, 'the namespace sandbox', probe.reason ?? '');
const tally = { attempts: 0, blocked: 0 };
afterAll(() => console.log(`escape battery (vitest worker): ${tally.attempts} attempts, ${tally.blocked} blocked`));

describe.skipIf(skip)('escape attempts from a Vitest worker', () => {
  test('every attempt is refused, and the project and the host /etc are as they were', async () => {
    const p = await fixtureProject('escape');
    const id = `vitest-${process.pid}-${Date.now()}`;
    const etc = `/etc/branching-escape-${id}`;
    try {
      const before = await snapshot(p.root);
      const run = await runVitest(p, [], {
        ESCAPE_ATTEMPTS: join(repoRoot, 'test', 'fixtures', 'plugin-escape', 'attempts.cjs'),
        ESCAPE_HOST_PID: String(process.pid),
        ESCAPE_ROOT: p.root,
        ESCAPE_ID: id,
      });
      const results = Object.entries(run.results);
      // Control: the fixture really ran every attempt (in the sandbox: the helper control passed).
      expect(results.length, run.stdout + run.stderr).toBe(20);
      tally.attempts += results.length + 2;
      tally.blocked += results.filter(([, s]) => s === 'passed').length;
      const failed = results.filter(([, s]) => s !== 'passed').map(([name]) => name);
      expect(failed, run.stdout + run.stderr).toEqual([]);
      expect(run.code).toBe(0);
      const after = await snapshot(p.root);
      if (JSON.stringify(after) === JSON.stringify(before)) tally.blocked++;
      expect(after).toEqual(before);
      const reachedEtc = existsSync(etc);
      if (!reachedEtc) tally.blocked++;
      expect(reachedEtc, `a write from the worker (uid ${process.getuid?.()}) reached the host ${etc}`).toBe(false);
    } finally {
      rmSync(etc, { force: true });
      await p.cleanup();
    }
  });
});
