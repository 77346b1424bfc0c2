import { parseArgs } from 'node:util';
import { probeSandbox, type SandboxProbe } from '../../sandbox/launcher.ts';
import { type Command, EXIT } from '../command.ts';
import { printJson } from '../json.ts';
import { JSON_OPTION, type OptionTable } from '../options.ts';
import {
  backendCheck,
  type Check,
  cgroupCheck,
  landlockCheck,
  launcherCheck,
  namespaceChecks,
  nativeAddonCheck,
  type Roots,
  restrictionCheck,
  rootCheck,
  seccompCheck,
} from './doctor-checks.ts';

type ModeName = 'vitest' | 'jest' | 'branchContext';
type Mode = [mode: string, why: string];

export interface DoctorReport {
  checks: Check[];
  modes: Record<ModeName, string>;
  /** Why each mode is the one it is. */
  reasons: Record<ModeName, string>;
  /** The plugins' sandbox works here (probeSandbox().available). */
  sandbox: boolean;
  sandboxReason: string | null;
}

export function diagnose(cwd: string, roots: Roots = { procRoot: '/proc', sysRoot: '/sys' }): DoctorReport {
  const probe = probeSandbox();
  const checks = [
    nativeAddonCheck(),
    launcherCheck(),
    ...namespaceChecks(probe),
    restrictionCheck(probe),
    cgroupCheck(roots),
    seccompCheck(roots),
    landlockCheck(roots),
    backendCheck(cwd),
    rootCheck(),
  ];
  const { modes, reasons } = modesHere(probe);
  return { checks, modes, reasons, sandbox: probe.available, sandboxReason: probe.available ? null : probe.reason };
}

/** The choices the plugins and BranchContext make from the same probe (see plugins/ and process/sandbox.ts). */
function modesHere(probe: SandboxProbe): Pick<DoctorReport, 'modes' | 'reasons'> {
  const unavailable = `the namespace sandbox is unavailable: ${probe.reason}`;
  const vitest: Mode = probe.available
    ? ['sandbox', "the plugin's pool starts every worker through the launcher, in an overlay branch"]
    : ['clone fallback', unavailable];
  let jest: Mode = probe.available
    ? [
        'sandbox',
        'with the runner jest-environment-branching/runner (or the preset); the environment alone uses clones',
      ]
    : ['clone fallback', unavailable];
  if (process.env.BRANCHING_JEST_NO_SANDBOX === '1') jest = ['clone fallback', 'BRANCHING_JEST_NO_SANDBOX=1'];
  const contextDowngrade =
    !probe.launcher || !probe.userns
      ? probe.reason
      : !probe.pidns
        ? 'PID namespaces are unavailable, so abort could not reach every process'
        : null;
  const branchContext: Mode = contextDowngrade
    ? ['plain process', `reported downgrade (a NamespaceError with downgrade: false): ${contextDowngrade}`]
    : [
        'sandbox',
        `user + mount + PID namespaces; network: false ${probe.netns ? 'works' : 'is unavailable (no network namespaces)'}`,
      ];
  return {
    modes: { vitest: vitest[0], jest: jest[0], branchContext: branchContext[0] },
    reasons: { vitest: vitest[1], jest: jest[1], branchContext: branchContext[1] },
  };
}

/** The --json report: `ok` is true for a working feature and for facts (`info`). */
export function reportJson(report: DoctorReport): object {
  return {
    checks: report.checks.map(({ id, status, detail, fixes }) => ({
      id,
      ok: status === 'ok' || status === 'info',
      detail,
      ...(fixes ? { fixes } : {}),
    })),
    modes: report.modes,
    reasons: report.reasons,
    sandbox: report.sandbox,
  };
}

const indent = (text: string, by: string) => text.replace(/^/gm, by);

export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.title.length));
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${c.status.padEnd(8)} ${c.title.padEnd(width)}  ${c.detail}`);
    for (const fix of c.fixes ?? []) lines.push(indent(`fix: ${fix}`, ' '.repeat(9)));
  }
  const labels: Record<ModeName, string> = {
    vitest: 'Vitest plugin',
    jest: 'Jest plugin',
    branchContext: 'BranchContext',
  };
  lines.push('', 'Modes here:');
  for (const name of Object.keys(labels) as ModeName[]) {
    lines.push(`  ${labels[name].padEnd(14)} ${report.modes[name]}: ${report.reasons[name]}`);
  }
  return lines.join('\n');
}

const OPTIONS = {
  json: { ...JSON_OPTION, help: 'print one JSON document instead of one line per check' },
  strict: { type: 'boolean', default: false, help: 'exit 1 when the namespace sandbox is unavailable here' },
} as const satisfies OptionTable;

export const doctor: Command = {
  name: 'doctor',
  summary: 'check which features work here (addon, launcher, namespaces, AppArmor, cgroups, ...) and why not',
  usage: 'branching doctor [options]',
  options: OPTIONS,
  schemaVersion: 1,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: OPTIONS });
    const report = diagnose(process.cwd());
    if (values.json) printJson(doctor, reportJson(report));
    else console.log(formatReport(report));
    if (values.strict && !report.sandbox) {
      console.error(`branching doctor: the namespace sandbox is unavailable here: ${report.sandboxReason}`);
      return EXIT.failed;
    }
    return EXIT.ok;
  },
};
