// Every code block of README.md is exercised: `<!-- run: node -->` blocks run with plain Node (the
// runtime floor) in a fresh project, `<!-- run: sh -->` blocks run line by line there, TypeScript
// and JavaScript blocks are type-checked (strict) against the built declarations, and a block that
// cannot run here says why in a `<!-- not-run: reason -->` comment right before its fence.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBuilt, repoRoot } from '../helpers/build.ts';
import { tempDir } from '../helpers/tree.ts';

interface Block {
  line: number;
  lang: string;
  body: string;
  marker: { kind: 'run'; how: string; fixture?: string } | { kind: 'not-run'; reason: string } | null;
}

function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`README.md:${i + 1}: unclosed fence`);
    const before =
      lines
        .slice(0, i)
        .reverse()
        .find((l) => l.trim() !== '') ?? '';
    const run = /^<!-- run: (\S+)(?: in (\S+))? -->$/.exec(before);
    const notRun = /^<!-- not-run: (.+) -->$/.exec(before);
    const marker = run
      ? ({ kind: 'run', how: run[1] ?? '', fixture: run[2] } as const)
      : notRun
        ? ({ kind: 'not-run', reason: notRun[1] ?? '' } as const)
        : null;
    blocks.push({ line: i + 1, lang: open[1] ?? '', body: lines.slice(i + 1, end).join('\n'), marker });
    i = end;
  }
  return blocks;
}

// The free names the API samples use for the reader's own code, typed as a reader would have them.
const AMBIENT = `
import type { Branch, Workspace } from 'branching';
declare global {
  const ws: Workspace;
  const b1: Branch;
  const b2: Branch;
  const projectRoot: string;
  const realProjectView: string;
  const diffText: string;
  const signal: AbortSignal;
  const workspace: string;
  const candidates: string[];
  const test: { framework: 'vitest' };
  const fixA: (path: string) => Promise<boolean>;
  const fixB: (path: string) => Promise<boolean>;
  const strategyA: (path: string) => boolean;
  const strategyB: (path: string) => boolean;
  const s1: (path: string) => boolean;
  const s2: (path: string) => boolean;
  const s3: (path: string) => boolean;
  const s4: (path: string) => boolean;
  const generatePatch: (path: string) => Promise<boolean>;
  function runAgent(o: { cwd: string; seed?: number; signal?: AbortSignal }): Promise<{ passed: boolean; quality: number }>;
  function runAndTest(path: string, feedback: unknown): Promise<boolean>;
  function refinementsFor(path: string): Array<(path: string) => boolean>;
  function llmCompare(a: string, b: string): Promise<0 | 1>;
  function tryFix(path: string, feedback: unknown): Promise<boolean>;
  function readFile(path: string, encoding: 'utf8'): Promise<string>;
  function join(...parts: string[]): string;
}
export {};
`;

const blocks = readmeBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
const tmp = tempDir('branching-readme-');
afterAll(() => tmp.cleanup());

/** A consumer project whose `branching` (and plugin, vitest, @types/node) are this checkout's. */
function consumerProject(name: string): string {
  const dir = join(tmp.path, name);
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  symlinkSync(repoRoot, join(dir, 'node_modules', 'branching'));
  symlinkSync(join(repoRoot, 'plugins', 'vitest'), join(dir, 'node_modules', 'vitest-environment-branching'));
  symlinkSync(join(repoRoot, 'node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'));
  mkdirSync(join(dir, 'node_modules', '@types'));
  symlinkSync(join(repoRoot, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
  symlinkSync(join(repoRoot, 'dist', 'cli.js'), join(dir, 'node_modules', '.bin', 'branching'));
  return dir;
}

const env = { ...process.env, BRANCHING_QUIET: '1' };
const where = (b: Block) => `README.md:${b.line}`;

describe('README.md', () => {
  it('marks every block it does not run, with a reason', () => {
    const unmarked = blocks.filter((b) => !b.marker && !['ts', 'js'].includes(b.lang)).map(where);
    expect(unmarked, 'blocks that are neither type-checked nor marked run:/not-run:').toEqual([]);
    for (const b of blocks) if (b.marker?.kind === 'run') expect(['node', 'sh'], where(b)).toContain(b.marker.how);
  });

  it('runs the `run: node` samples with plain Node in a fresh project', () => {
    assertBuilt();
    const samples = blocks.filter((b) => b.marker?.kind === 'run' && b.marker.how === 'node');
    expect(samples.length).toBeGreaterThan(0);
    for (const [i, b] of samples.entries()) {
      const dir = consumerProject(`node-${i}`);
      writeFileSync(join(dir, 'sample.mjs'), b.body);
      const r = spawnSync(process.execPath, ['sample.mjs'], { cwd: dir, encoding: 'utf8', env });
      expect(r.status, `${where(b)}: ${r.stderr}`).toBe(0);
    }
    // The Quick start's branches landed what they wrote.
    expect(existsSync(join(tmp.path, 'node-0', 'attempt.txt'))).toBe(true);
    expect(existsSync(join(tmp.path, 'node-0', 'try-2.txt'))).toBe(true);
  });

  it('runs every line of the `run: sh` blocks in a fresh project (with the fixture the marker names)', () => {
    assertBuilt();
    const shBlocks = blocks.filter((b) => b.marker?.kind === 'run' && b.marker.how === 'sh');
    expect(shBlocks.length).toBeGreaterThan(0);
    for (const [i, b] of shBlocks.entries()) {
      const dir = consumerProject(`sh-${i}`);
      const fixture = b.marker?.kind === 'run' ? b.marker.fixture : undefined;
      if (fixture) cpSync(join(repoRoot, fixture), dir, { recursive: true });
      const path = `${join(dir, 'node_modules', '.bin')}:${process.env.PATH}`;
      const commands = b.body.split('\n').map((cmd) => cmd.replace(/\s+#.*$/, '').trim());
      for (const cmd of commands.filter((c) => c !== '')) {
        const r = spawnSync('sh', ['-c', cmd], { cwd: dir, encoding: 'utf8', env: { ...env, PATH: path } });
        expect(r.status, `${where(b)} \`${cmd}\`: ${r.stderr}`).toBe(0);
        expect(r.stdout.length, `${where(b)} \`${cmd}\` printed nothing`).toBeGreaterThan(0);
      }
    }
  });

  it('type-checks every TypeScript and JavaScript sample (strict) against the built declarations', () => {
    assertBuilt();
    const dir = consumerProject('types');
    const checked = blocks.filter((b) => ['ts', 'js'].includes(b.lang) && b.marker?.kind !== 'not-run');
    expect(checked.length).toBeGreaterThan(5);
    const files = checked.map((b) => {
      const file = `block-${b.line}.${b.lang === 'ts' ? 'ts' : 'mjs'}`;
      writeFileSync(join(dir, file), b.body);
      return file;
    });
    writeFileSync(join(dir, 'ambient.d.ts'), AMBIENT);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          allowJs: true,
          checkJs: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['esnext'],
          types: ['node'],
          skipLibCheck: true,
        },
        files: ['ambient.d.ts', ...files],
      }),
    );
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
    // tsc names each file by its README line (block-<line>.ts).
    expect(r.stdout + r.stderr, 'tsc').toBe('');
    expect(r.status).toBe(0);
  });

  it('shows the per-file docblock exactly as the Vitest fixture that runs it', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    // Spelled in two parts: Vitest would read the whole pragma in this file as this file's docblock.
    const pragma = ['@vitest-', 'environment-options'].join('');
    const shown = new RegExp(`\`(// ${pragma} [^\`]+)\``).exec(readme)?.[1];
    const fixture = join(repoRoot, 'test', 'fixtures', 'vitest-shared', 'test', 'docblock', 'docblock.test.js');
    expect(shown).toBeDefined();
    expect(readFileSync(fixture, 'utf8').split('\n')[0]).toBe(shown);
  });
});
