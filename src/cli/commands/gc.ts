import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { reclaimOverlayDir } from '../../backends/overlay.ts';
import { removeTree } from '../../base/fsutil.ts';
import { Lease } from '../../core/lock.ts';
import { allStateDirs, readBranchInfo } from '../../core/state.ts';
import { killProcessesUsing } from '../../core/users.ts';
import { type GcReport, Workspace } from '../../core/workspace.ts';
import { type Command, EXIT } from '../command.ts';
import { printJson } from '../json.ts';
import { JSON_OPTION, type OptionTable } from '../options.ts';

interface WorkspaceGc {
  workspace: string;
  stateDir: string;
  report: GcReport | null;
  /** The project is gone and no live process holds its state: the state dir was removed. */
  orphanRemoved: boolean;
}

async function gcWorkspace(path: string, repair: boolean): Promise<WorkspaceGc> {
  const ws = new Workspace(path, { onNotice: () => {} });
  try {
    return { workspace: ws.path, stateDir: ws.stateDir, report: await ws.gc({ repair }), orphanRemoved: false };
  } finally {
    await ws.close();
  }
}

/** State of a project that no longer exists: removed once no live process holds a lease on it. */
async function gcOrphan(stateDir: string, workspace: string): Promise<WorkspaceGc> {
  const leases = join(stateDir, 'leases');
  const names = existsSync(leases) ? readdirSync(leases) : [];
  const live = await Promise.all(names.map((n) => Lease.isAlive(join(leases, n))));
  if (live.some(Boolean)) return { workspace, stateDir, report: null, orphanRemoved: false };
  const branches = join(stateDir, 'branches');
  const dirs = existsSync(branches) ? readdirSync(branches).map((n) => join(branches, n)) : [];
  // As for a live project: nothing may still run in them, and their mounts go first.
  await killProcessesUsing(dirs);
  for (const dir of dirs) {
    const kind = (await readBranchInfo(dir))?.backend;
    if (kind === 'overlay') await reclaimOverlayDir(dir);
  }
  await removeTree(stateDir);
  return { workspace, stateDir, report: null, orphanRemoved: true };
}

/** Without a path: every state dir this user has under the default roots. */
async function gcEverything(repair: boolean): Promise<WorkspaceGc[]> {
  const results: WorkspaceGc[] = [];
  const seen = new Set<string>();
  for (const { stateDir, workspace } of allStateDirs()) {
    if (!existsSync(workspace)) results.push(await gcOrphan(stateDir, workspace));
    else if (!seen.has(workspace)) {
      seen.add(workspace);
      results.push(await gcWorkspace(workspace, repair));
    }
  }
  return results;
}

function describe(r: WorkspaceGc): string {
  if (r.orphanRemoved) return `${r.workspace}: the project is gone; removed its state ${r.stateDir}`;
  if (!r.report) return `${r.workspace}: the project is gone, but a live process still holds ${r.stateDir}`;
  const p = r.report;
  return `${r.workspace}: reclaimed ${p.reclaimedBranches} dead branch(es) (killing ${p.killedProcesses} process(es) still running in them), finished ${p.replayedCommits} and dropped ${p.discardedCommits} interrupted commit(s)`;
}

const OPTIONS = {
  repair: {
    type: 'boolean',
    default: false,
    help: 'drop durable commits that cannot be applied (what was applied so far stays)',
  },
  json: JSON_OPTION,
} as const satisfies OptionTable;

export const gc: Command = {
  name: 'gc',
  summary: 'finish or drop interrupted commits and reclaim branches left by dead processes',
  usage: 'branching gc [options] [workspace]',
  options: OPTIONS,
  notes: 'workspace: one project (every state dir it used); none: every state dir of this user',
  schemaVersion: 1,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
    });
    const repair = values.repair ?? false;
    const results = positionals[0] ? [await gcWorkspace(positionals[0], repair)] : await gcEverything(repair);
    const stuck = results.flatMap((r) =>
      (r.report?.stuckCommits ?? []).map((e) => ({ code: e.code, path: e.path, message: e.message })),
    );
    if (values.json) {
      const workspaces = results.map((r) => ({ ...r, report: r.report && { ...r.report, stuckCommits: undefined } }));
      printJson(gc, { workspaces, stuckCommits: stuck });
    } else {
      for (const r of results) console.log(describe(r));
      if (results.length === 0) console.log('no branch state found');
      for (const e of stuck) console.error(`branching gc: ${e.message}`);
    }
    return stuck.length > 0 ? EXIT.failed : EXIT.ok;
  },
};
