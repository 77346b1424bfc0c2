import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { removeLayerDir } from '../../src/base/layer-dir.ts';

/**
 * A byte-exact description of a tree: every entry's type, mode and content
 * hash (or symlink target). Two trees are identical iff their snapshots are.
 */
export type Snapshot = Record<string, string>;

export async function snapshot(root: string): Promise<Snapshot> {
  const out: Snapshot = {};
  const walk = async (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    const names = (await fs.readdir(abs)).sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const childAbs = join(abs, name);
      const st = await fs.lstat(childAbs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[childRel] = `link -> ${await fs.readlink(childAbs)}`;
      else if (st.isDirectory()) {
        out[childRel] = `dir ${mode}`;
        await walk(childRel);
      } else if (st.isFile()) {
        const hash = createHash('sha256')
          .update(await fs.readFile(childAbs))
          .digest('hex')
          .slice(0, 16);
        out[childRel] = `file ${mode} ${st.size} ${hash}`;
      } else out[childRel] = 'other';
    }
  };
  await walk('');
  return out;
}

export type TreeSpec = Record<string, string | { content: string; mode: number } | { symlink: string } | null>;

/** Writes a tree from a spec: a string is a file's content, null an empty directory. */
export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  for (const [rel, value] of Object.entries(spec)) {
    const abs = join(root, rel);
    await fs.mkdir(dirname(abs), { recursive: true });
    if (value === null) await fs.mkdir(abs, { recursive: true });
    else if (typeof value === 'string') await fs.writeFile(abs, value);
    else if ('symlink' in value) await fs.symlink(value.symlink, abs);
    else {
      await fs.writeFile(abs, value.content);
      await fs.chmod(abs, value.mode);
    }
  }
}

/** A fresh temporary directory (realpath'd), removed by the returned cleanup. */
export function tempDir(prefix = 'branching-t-'): { path: string; cleanup: () => Promise<void> } {
  const path = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  return {
    path,
    // Overlay scratch inside (mode-000 work dirs) goes too; a mount still inside is refused, not deleted through.
    cleanup: () => removeLayerDir(path),
  };
}

export async function readText(path: string): Promise<string | null> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** `git init` and one commit of everything in `dir`, by a fixed test author. */
export function commitAll(dir: string, message: string): void {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@t',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@t',
  };
  for (const args of [
    ['init', '-q'],
    ['add', '-A'],
    ['commit', '-qm', message],
  ])
    execFileSync('git', args, { cwd: dir, env });
}
