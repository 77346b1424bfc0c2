/**
 * A command's options, declared once: the same table configures node:util
 * parseArgs (which ignores the `value` and `help` fields) and prints one
 * line per option in `branching <command> -h`, so the help cannot list an
 * option the command does not take, nor miss one it does.
 */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: boolean | string | string[];
  /** The placeholder of its value in the help, e.g. `N` or `DIR`. */
  value?: string;
  help: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export const JSON_OPTION = {
  type: 'boolean',
  default: false,
  help: 'print one JSON document on stdout (progress stays on stderr)',
} as const satisfies OptionSpec;

/** `-h, --help` is every command's, handled before the command runs. */
export const HELP_OPTION: OptionTable = { help: { type: 'boolean', short: 'h', help: 'print this help' } };

/** The option part of a help text: one line per option, the table's order, then -h. */
export function optionLines(table: OptionTable): string[] {
  const entries = Object.entries({ ...table, ...HELP_OPTION });
  const heads = entries.map(([name, o]) => {
    const short = o.short ? `-${o.short}, ` : '    ';
    const value = o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : '';
    return `${short}--${name}${value}`;
  });
  const width = Math.max(...heads.map((h) => h.length));
  return entries.map(([, o], i) => {
    const repeat = o.multiple ? ' (repeatable)' : '';
    return `  ${(heads[i] ?? '').padEnd(width)}  ${o.help}${repeat}`;
  });
}
