// Each command's help lists exactly the options it parses: one table per command feeds both.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Command, helpText } from '../../src/cli/command.ts';
import { bisect } from '../../src/cli/commands/bisect.ts';
import { doctor } from '../../src/cli/commands/doctor.ts';
import { flaky } from '../../src/cli/commands/flaky.ts';
import { gc } from '../../src/cli/commands/gc.ts';
import { polluter } from '../../src/cli/commands/polluter.ts';
import { run } from '../../src/cli/commands/run.ts';
import { bestOfCommand, speculateCommand } from '../../src/cli/commands/speculate.ts';
import { assertBuilt, repoRoot } from '../helpers/build.ts';

const CLI = join(repoRoot, 'dist', 'cli.js');
const cli = (args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    cwd: '/',
    encoding: 'utf8',
    env: { ...process.env, BRANCHING_QUIET: '1' },
  });

const commands: Command[] = [gc, run, speculateCommand, bestOfCommand, flaky, bisect, polluter, doctor];

/** Operands that make a command stop at a bad value, after parsing, and before it starts anything. */
const OPERANDS: Record<string, string[]> = {
  gc: ['/nonexistent'],
  run: ['--', 'true'],
  speculate: ['--', 'true'],
  'best-of': ['--', 'true'],
  flaky: ['--', 'true'],
  bisect: ['--', 'true'],
  polluter: ['--', 'true'],
  doctor: [],
};

beforeAll(() => assertBuilt());

describe.each(commands.map((c) => [c.name, c] as const))('branching %s', (name, command) => {
  it('its help lists one line per option of its table, with its short form, and nothing else', () => {
    // main.test.ts checks that `-h` prints this help; here, what the help says.
    const listed = [...helpText(command).matchAll(/^ {2}(?:-(\w), | {4})--([\w-]+)/gm)].map((m) => [
      m[2],
      m[1] ?? null,
    ]);
    const table = Object.entries(command.options).map(([option, spec]) => [option, spec.short ?? null]);
    expect(listed).toEqual([...table, ['help', 'h']]);
  });

  it('its synopsis names only options of its table', () => {
    const named = [...command.usage.matchAll(/(?:^|[\s[])--([\w-]+)/g)].map((m) => m[1]);
    for (const option of named) expect(Object.keys(command.options), `${name}: --${option}`).toContain(option);
  });

  it('parses every option of its table', () => {
    const args = Object.entries(command.options).flatMap(([option, spec]) =>
      spec.type === 'string' ? [`--${option}`, 'x'] : [`--${option}`],
    );
    const r = cli([name, ...args, ...(OPERANDS[name] ?? [])]);
    const doc = JSON.parse(r.stdout) as { error?: { code: string } };
    expect(doc.error?.code ?? 'ok', r.stderr).not.toMatch(/^ERR_PARSE_ARGS/);
  });
});
