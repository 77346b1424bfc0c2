import { parseArgs } from 'node:util';
import { Workspace } from '../../core/workspace.ts';
import { type Command, EXIT } from '../command.ts';

export const gc: Command = {
  name: 'gc',
  summary: 'finish or drop interrupted commits and reclaim branches left by dead processes',
  usage: 'branching gc [--json] [workspace=.]',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { json: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    const ws = new Workspace(positionals[0] ?? process.cwd(), { onNotice: () => {} });
    const report = await ws.gc();
    await ws.close();
    if (values.json) console.log(JSON.stringify({ workspace: ws.path, stateDir: ws.stateDir, ...report }));
    else {
      console.log(
        `${ws.path}: reclaimed ${report.reclaimedBranches} dead branch(es) (killing ${report.killedProcesses} process(es) still running in them), finished ${report.replayedCommits} and dropped ${report.discardedCommits} interrupted commit(s)`,
      );
    }
    return EXIT.ok;
  },
};
