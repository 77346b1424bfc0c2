import { parseArgs } from 'node:util';
import { Workspace } from '../../core/workspace.ts';
import { type Command, EXIT } from '../command.ts';

export const gc: Command = {
  name: 'gc',
  summary: 'finish or drop interrupted commits and reclaim branches left by dead processes',
  usage:
    'branching gc [--json] [--repair] [workspace=.]\n  --repair  drop durable commits that cannot be applied (what was applied so far stays)',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { json: { type: 'boolean', default: false }, repair: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    const ws = new Workspace(positionals[0] ?? process.cwd(), { onNotice: () => {} });
    const report = await ws.gc({ repair: values.repair });
    await ws.close();
    const stuck = report.stuckCommits.map((e) => ({ code: e.code, path: e.path, message: e.message }));
    if (values.json) {
      console.log(JSON.stringify({ workspace: ws.path, stateDir: ws.stateDir, ...report, stuckCommits: stuck }));
    } else {
      console.log(
        `${ws.path}: reclaimed ${report.reclaimedBranches} dead branch(es) (killing ${report.killedProcesses} process(es) still running in them), finished ${report.replayedCommits} and dropped ${report.discardedCommits} interrupted commit(s)`,
      );
      for (const e of stuck) console.error(`branching gc: ${e.message}`);
    }
    return stuck.length > 0 ? EXIT.failed : EXIT.ok;
  },
};
