import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ArgumentError } from '../base/errors.ts';
import { gitWorkTreeTop } from '../core/worktree.ts';
import { PatchError } from './errors.ts';

/** A file map: path (relative, '/'-separated) to new content, or null to delete it. */
export type FileMap = Record<string, string | Uint8Array | null>;
export type PatchFunction = (dir: string) => unknown;

/**
 * One candidate change:
 * - a unified diff as text (git format, with `git apply` semantics: new, deleted, renamed,
 *   binary and mode changes), or `{ diff }`, or `{ patchFile }` naming a file holding one;
 * - a file map `{ 'src/a.ts': 'content', 'old.ts': null }` (or `{ files: {...} }`, which also
 *   allows a file named `diff`);
 * - a function `(dir) => …` that edits the branch directory (or `{ apply }`).
 * The object forms take an optional `name` shown in progress and reports.
 */
export type PatchCandidate =
  | string
  | PatchFunction
  | { diff: string; name?: string }
  | { patchFile: string; name?: string }
  | { files: FileMap; name?: string }
  | { apply: PatchFunction; name?: string }
  | FileMap;

export type CandidateKind = 'diff' | 'files' | 'function';

/** A validated candidate, ready to apply to any number of branches. */
export interface PreparedCandidate {
  index: number;
  name: string;
  kind: CandidateKind;
  diff?: string;
  /** Extra `git apply` options, e.g. `-p3` for a diff made at the git top level of a subdirectory workspace. */
  applyArgs?: string[];
  files?: Map<string, Buffer | null>;
  fn?: PatchFunction;
}

const WRAPPER_KEYS = new Set(['diff', 'patchFile', 'files', 'apply', 'name']);

/** Checks every candidate up front (reading patch files), so bad input fails before any branch exists. */
export function prepareCandidates(candidates: unknown): PreparedCandidate[] {
  if (!Array.isArray(candidates) || candidates.length === 0) {
    throw new ArgumentError('candidates must be a non-empty array', { argument: 'candidates' });
  }
  return candidates.map((c, index) => prepareCandidate(c, index));
}

function prepareCandidate(c: unknown, index: number): PreparedCandidate {
  const argument = `candidates[${index}]`;
  const fallbackName = `#${index + 1}`;
  if (typeof c === 'string') return { index, name: fallbackName, kind: 'diff', diff: checkDiffText(c, argument) };
  if (typeof c === 'function') return { index, name: c.name || fallbackName, kind: 'function', fn: c as PatchFunction };
  if (c === null || typeof c !== 'object' || Array.isArray(c)) {
    throw new ArgumentError(`${argument} must be a diff, a file map or a function; got ${describe(c)}`, { argument });
  }
  const obj = c as Record<string, unknown>;
  const keys = Object.keys(obj);
  const isWrapper = keys.length > 0 && keys.every((k) => WRAPPER_KEYS.has(k)) && keys.some((k) => k !== 'name');
  if (!isWrapper) return { index, name: fallbackName, kind: 'files', files: checkFileMap(obj, argument) };
  const name = obj.name === undefined ? undefined : String(obj.name);
  if (typeof obj.diff === 'string')
    return { index, name: name ?? fallbackName, kind: 'diff', diff: checkDiffText(obj.diff, argument) };
  if (typeof obj.patchFile === 'string') {
    const file = resolve(obj.patchFile);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ArgumentError(`${argument}: cannot read the patch file ${file}: ${(err as Error).message}`, {
        argument,
        path: file,
        code: 'ERR_SPECULATE_PATCH_FILE',
        cause: err,
      });
    }
    return { index, name: name ?? basename(file), kind: 'diff', diff: checkDiffText(text, `${argument} (${file})`) };
  }
  if (obj.files !== null && typeof obj.files === 'object') {
    return { index, name: name ?? fallbackName, kind: 'files', files: checkFileMap(obj.files as object, argument) };
  }
  if (typeof obj.apply === 'function') {
    return { index, name: name ?? fallbackName, kind: 'function', fn: obj.apply as PatchFunction };
  }
  throw new ArgumentError(
    `${argument}: { diff }, { patchFile }, { files } or { apply } has a value of the wrong type`,
    {
      argument,
    },
  );
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** Only an obviously empty diff is rejected here; whether it applies is git's call, per branch. */
function checkDiffText(text: string, argument: string): string {
  if (text.trim() === '')
    throw new ArgumentError(`${argument}: the diff is empty`, { argument, code: 'ERR_SPECULATE_EMPTY_DIFF' });
  return text.endsWith('\n') ? text : `${text}\n`;
}

function checkFileMap(map: object, argument: string): Map<string, Buffer | null> {
  const out = new Map<string, Buffer | null>();
  for (const [path, content] of Object.entries(map)) {
    const parts = path.split('/');
    if (
      path === '' ||
      path.includes('\0') ||
      isAbsolute(path) ||
      parts.some((p) => p === '..' || p === '.' || p === '')
    ) {
      throw new ArgumentError(
        `${argument}: file map path ${JSON.stringify(path)} must be relative, without '.', '..' or empty parts`,
        {
          argument,
          path,
          code: 'ERR_SPECULATE_FILE_PATH',
        },
      );
    }
    if (content === null) out.set(path, null);
    else if (typeof content === 'string') out.set(path, Buffer.from(content));
    else if (content instanceof Uint8Array) out.set(path, Buffer.from(content));
    else {
      throw new ArgumentError(`${argument}: the content of ${JSON.stringify(path)} must be a string, bytes or null`, {
        argument,
        path,
      });
    }
  }
  if (out.size === 0) throw new ArgumentError(`${argument}: the file map is empty`, { argument });
  return out;
}

/** Applies a candidate to a branch directory. Throws PatchError with the reason (git's message for diffs). */
export async function applyCandidate(candidate: PreparedCandidate, dir: string): Promise<void> {
  if (candidate.kind === 'diff')
    return gitApply(candidate.diff!, dir, `candidate ${candidate.name}`, candidate.applyArgs);
  if (candidate.kind === 'files') return writeFileMap(candidate.files!, dir);
  try {
    await candidate.fn!(dir);
  } catch (err) {
    throw new PatchError(`candidate ${candidate.name}: its function threw: ${(err as Error)?.message ?? err}`, {
      code: 'ERR_PATCH_FUNCTION',
      cause: err,
    });
  }
}

async function writeFileMap(files: Map<string, Buffer | null>, dir: string): Promise<void> {
  for (const [path, content] of files) {
    const abs = join(dir, path);
    if (content === null) await fs.rm(abs, { recursive: true, force: true });
    else {
      await fs.mkdir(dirname(abs), { recursive: true });
      // Replace rather than write through: the target could be a symlink or hard link out of the branch.
      await fs.rm(abs, { recursive: true, force: true });
      await fs.writeFile(abs, content);
    }
  }
}

/**
 * `git apply` in the branch directory. Outside a repository git applies
 * relative to the cwd; GIT_CEILING_DIRECTORIES stops it from discovering a
 * repository *around* the branch (which would make paths relative to that
 * repository's root and silently skip files outside the cwd), while a
 * project that is itself a repository (its .git copied into the branch) is
 * still found. Git checks the whole patch before writing: a patch that does
 * not apply leaves the branch untouched.
 */
export function gitApply(diff: string, dir: string, label: string, extraArgs: string[] = []): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_CEILING_DIRECTORIES: dirname(dir) };
  for (const v of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_PREFIX']) delete env[v];
  return new Promise<void>((resolvePromise, reject) => {
    const child = spawn('git', ['apply', '--whitespace=nowarn', ...extraArgs, '-'], {
      cwd: dir,
      env,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (err) =>
      reject(new PatchError(`${label}: cannot run git apply: ${err.message}`, { code: 'ERR_PATCH_GIT', cause: err })),
    );
    child.once('close', (code) => {
      if (code === 0) resolvePromise();
      else
        reject(
          new PatchError(`${label}: git apply failed: ${stderr.trim() || `exit code ${code}`}`, {
            code: 'ERR_PATCH_APPLY',
          }),
        );
    });
    child.stdin.on('error', () => {}); // git may exit before reading all of a bad patch
    child.stdin.end(diff);
  });
}

/** The paths a unified diff touches, as written after its `a/` and `b/` prefixes (/dev/null left out). */
export function diffPaths(diff: string): string[] {
  const paths = new Set<string>();
  for (const line of diff.split('\n')) {
    const header = /^diff --git a\/(\S+) b\/(\S+)/.exec(line);
    if (header) {
      paths.add(header[1]!);
      paths.add(header[2]!);
      continue;
    }
    const side = /^(?:---|\+\+\+) [ab]\/(\S+)/.exec(line);
    if (side) paths.add(side[1]!);
  }
  return [...paths];
}

/**
 * The `git apply` options that make a diff apply in `workspace`. A diff made at the git top level
 * names files like `packages/x/src/a.ts`; when the workspace is `packages/x` and every path of the
 * diff lies under it, the extra leading components are stripped (`-p3`). Otherwise the diff is
 * taken as relative to the workspace.
 */
export function patchRootArgs(diff: string, workspace: string): string[] {
  const top = gitWorkTreeTop(workspace);
  if (top === null) return [];
  const prefix = relative(top, workspace).split('\\').join('/');
  if (prefix === '' || prefix.startsWith('..')) return [];
  const paths = diffPaths(diff);
  if (paths.length === 0 || !paths.every((p) => p.startsWith(`${prefix}/`))) return [];
  return [`-p${1 + prefix.split('/').length}`];
}

/**
 * Checks that each diff applies to the workspace as it is, before any branch exists, and settles its
 * patch root (`applyArgs`). Returns the reason per candidate that does not apply (file maps and
 * functions are taken as applicable: only running them tells).
 */
export async function checkCandidates(
  candidates: PreparedCandidate[],
  workspace: string,
): Promise<Map<number, PatchError>> {
  const failures = new Map<number, PatchError>();
  await Promise.all(
    candidates.map(async (c) => {
      if (c.kind !== 'diff') return;
      c.applyArgs = patchRootArgs(c.diff!, workspace);
      try {
        await gitApply(c.diff!, workspace, `candidate ${c.name}`, ['--check', ...c.applyArgs]);
      } catch (err) {
        if (err instanceof PatchError) failures.set(c.index, err);
        else throw err;
      }
    }),
  );
  return failures;
}
