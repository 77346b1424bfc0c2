#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../sandbox/launcher.ts';
import { type Command, EXIT, helpText, UsageError } from './command.ts';
import { bisect } from './commands/bisect.ts';
import { doctor } from './commands/doctor.ts';
import { flaky } from './commands/flaky.ts';
import { gc } from './commands/gc.ts';
import { polluter } from './commands/polluter.ts';
import { run } from './commands/run.ts';
import { bestOfCommand, speculateCommand } from './commands/speculate.ts';
import { jsonRequested, printErrorDocument, reportFailure } from './json.ts';

const commands: Command[] = [gc, run, speculateCommand, bestOfCommand, flaky, bisect, polluter, doctor];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: branching <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    '`branching --version` (-V) prints the version; `branching <command> -h` its options.',
    'Exit codes: 0 success, 1 the operation failed (e.g. no candidate passed), 2 usage or bad input.',
  ].join('\n');
}

function version(): string {
  const root = packageRoot();
  try {
    return (JSON.parse(readFileSync(join(root ?? '.', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** `-h`/`--help` anywhere before `--` (after it, they belong to the command being run). */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    console.log(version());
    return EXIT.ok;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const err = new UsageError(`unknown command ${JSON.stringify(name)}`);
    if (jsonRequested(rest)) printErrorDocument({ name, schemaVersion: 1 }, err);
    else console.error(`branching: ${err.message}\n\n${help()}`);
    return EXIT.usage;
  }
  if (wantsHelp(rest)) {
    console.log(helpText(command));
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    return reportFailure(command, err, jsonRequested(rest));
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = EXIT.failed;
  },
);
