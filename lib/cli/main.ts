/**
 * `ostree-sysext`: the command-line front end. Parses the command line with node:util
 * parseArgs, runs one command, prints one clear line on failure, and returns the exit code.
 * Also reached as `ostree sysext …` (ostree runs `ostree-sysext sysext …` from PATH).
 * @module
 */
import { createRequire } from 'node:module';
import { isExtensionError } from '../extension/errors.js';
import { COMMANDS, type Command, type OptionSpec, type Values } from './commands/index.js';
import { Context, type GlobalOptions } from './context.js';
import { demoCommand } from './demo.js';
import { CliError, EXIT, Output, usage } from './output.js';

const GLOBAL: Record<string, OptionSpec> = {
  sysroot: { type: 'string', arg: 'DIR', description: 'the OSTree sysroot (default /)' },
  repo: { type: 'string', arg: 'DIR', description: 'the repository (default <sysroot>/ostree/repo)' },
  os: { type: 'string', arg: 'NAME', description: "the OS name (default: the booted deployment's, else the only one)" },
  root: { type: 'string', arg: 'DIR', description: 'where run/extensions lives (default: the sysroot)' },
  force: { type: 'boolean', short: 'f', description: 'let plugin warnings and update warnings pass; remove extensions in use' },
  wait: { type: 'boolean', description: 'wait for the sysroot lock instead of failing (exit 5)' },
  'systemd-version': { type: 'string', arg: 'N', description: "apply systemd N's rules (default: the installed systemd's, backports included)" },
  json: { type: 'boolean', description: 'print one JSON document: {"ok", "command", "result"} or {"ok": false, "error"}' },
  quiet: { type: 'boolean', short: 'q', description: 'print only results and errors, no progress' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', description: 'print the version' },
};

/** `--systemd-version N`: a whole number systemd could be, else a usage error. */
function systemdVersionOption(value: unknown, command = ''): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (!/^[0-9]{3,5}$/.test(value) || Number(value) < 200)
    throw usageError(`option '--systemd-version' wants a systemd version such as 257, got '${value}'`, command);
  return Number(value);
}

/** All commands, `demo` included. */
export const ALL_COMMANDS: Command[] = [...COMMANDS, demoCommand];

const EXIT_HELP = `Exit codes: 0 ok, 1 failure, 2 usage error, 3 refused (veto, incompatible, in use, already installed),
4 not found, 5 locked, 6 verification failed, 130 interrupted.`;

function optionLines(opts: Record<string, OptionSpec>): string[] {
  return Object.entries(opts).map(([k, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${k}${o.arg ? ` ${o.arg}` : ''}`;
    return `  ${flag.padEnd(30)} ${o.description}`;
  });
}

/** The general help text. */
export function mainHelp(): string {
  const width = Math.max(...ALL_COMMANDS.map((c) => c.name.length));
  return [
    'Usage: ostree-sysext [OPTIONS] COMMAND [ARGS...]     (also: ostree sysext COMMAND ...)',
    '',
    'Manage systemd system extensions on an OSTree system.',
    '',
    'Commands:',
    ...ALL_COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options (every command):',
    ...optionLines(GLOBAL),
    '',
    'Examples:',
    '  ostree-sysext demo                      # a tour in a throwaway sysroot',
    '  ostree-sysext add ./build/tools && ostree-sysext deploy tools',
    '  ostree-sysext status --json',
    '',
    EXIT_HELP,
    "Run 'ostree-sysext COMMAND --help' for a command's options and examples; see docs/cli.md.",
  ].join('\n');
}

/** Words that have subcommands (`remote` for `remote add|list|delete`). */
const GROUPS = [...new Set(ALL_COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]!))];

const GLOBAL_HELP = `Global options: ${Object.keys(GLOBAL)
  .map((k) => `--${k}`)
  .join(', ')} (see 'ostree-sysext --help').`;

/** The help text of one command. */
export function commandHelp(c: Command): string {
  return [
    `Usage: ostree-sysext [OPTIONS] ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`,
    '',
    c.description,
    '',
    ...(Object.keys(c.options).length ? ['Options:', ...optionLines(c.options), ''] : []),
    GLOBAL_HELP,
    '',
    'Examples:',
    ...c.examples.map((e) => `  ${e}`),
    '',
    EXIT_HELP,
  ].join('\n');
}

/** The help text of a command with subcommands (`remote`). */
export function groupHelp(group: string): string {
  const subs = ALL_COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...subs.map((c) => c.name.length));
  return [
    `Usage: ostree-sysext [OPTIONS] ${group} COMMAND [ARGS...]`,
    '',
    'Commands:',
    ...subs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    GLOBAL_HELP,
    '',
    'Examples:',
    ...subs.map((c) => `  ${c.examples[0]}`),
    '',
    EXIT_HELP,
    `Run 'ostree-sysext ${group} COMMAND --help' for a command's options and examples.`,
  ].join('\n');
}

/** Optimal string alignment distance (Levenshtein plus transpositions), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** ` Did you mean 'x'?` for the closest candidates (at most 2 edits, and fewer than half the word), or ''. */
export function suggest(word: string, candidates: string[]): string {
  const scored = candidates.map((c) => ({ c, d: distance(word, c) })).filter(({ c, d }) => d <= 2 && d < Math.max(word.length, c.length) / 2);
  if (scored.length === 0) return '';
  const best = Math.min(...scored.map((x) => x.d));
  const names = scored.filter((x) => x.d === best).map((x) => `'${x.c}'`);
  return ` Did you mean ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`}?`;
}

/** A usage error in parsing, with the help to point at. */
function usageError(message: string, help: string): CliError {
  return usage(message, `ostree-sysext ${help ? `${help} ` : ''}--help`);
}

/** Every command's options: an option placed before the command word is taken to the command. */
const COMMAND_OPTIONS = new Map<string, OptionSpec>(ALL_COMMANDS.flatMap((c) => Object.entries(c.options)));

/**
 * Parses options and positionals. `specs` are the options known here; before the command word
 * (`deferUnknown`), an option of some command is kept for the command's own parse instead.
 * Stops at the first positional when `stopAtPositional`. Throws a usage error naming the
 * unknown option, or the option missing its value.
 */
function parseOptions(
  args: string[],
  specs: Record<string, OptionSpec>,
  mode: { stopAtPositional: boolean; deferUnknown: boolean; help: string },
): { values: Values; positionals: string[]; deferred: string[]; rest: string[] } {
  const values: Values = {};
  const positionals: string[] = [];
  const deferred: string[] = [];
  const shorts = new Map(
    Object.entries(specs)
      .filter(([, o]) => o.short)
      .map(([k, o]) => [o.short!, k]),
  );
  const set = (name: string, spec: OptionSpec, value: string | boolean) => {
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value as string];
    else values[name] = value;
  };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      if (mode.stopAtPositional) break;
      positionals.push(...args.slice(i + 1));
      i = args.length;
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const spec = specs[name];
      if (!spec) {
        const other = COMMAND_OPTIONS.get(name);
        if (mode.deferUnknown && other) {
          deferred.push(a);
          if (other.type === 'string' && eq === -1 && i + 1 < args.length) deferred.push(args[++i]!);
          continue;
        }
        throw usageError(
          `unknown option '--${name}'.${suggest(
            `--${name}`,
            Object.keys(specs).map((k) => `--${k}`),
          )}`.replace(/\.$/, ''),
          mode.help,
        );
      }
      if (spec.type === 'boolean') {
        if (eq !== -1) throw usageError(`option '--${name}' takes no value`, mode.help);
        set(name, spec, true);
      } else if (eq !== -1) {
        if (eq === a.length - 1) throw usageError(`option '--${name}' needs a value`, mode.help);
        set(name, spec, a.slice(eq + 1));
      } else {
        const next = args[i + 1];
        if (next === undefined || next === '' || (next.startsWith('-') && next !== '-')) throw usageError(`option '--${name}' needs a value`, mode.help);
        set(name, spec, next);
        i++;
      }
      continue;
    }
    if (a.startsWith('-') && a !== '-') {
      for (let k = 1; k < a.length; k++) {
        const name = shorts.get(a[k]!);
        if (!name) throw usageError(`unknown option '-${a[k]}'`, mode.help);
        const spec = specs[name]!;
        if (spec.type === 'boolean') {
          set(name, spec, true);
          continue;
        }
        const value = k + 1 < a.length ? a.slice(k + 1) : args[++i];
        if (value === undefined) throw usageError(`option '-${a[k]}' needs a value`, mode.help);
        set(name, spec, value);
        break;
      }
      continue;
    }
    if (mode.stopAtPositional) break;
    positionals.push(a);
  }
  return { values, positionals, deferred, rest: args.slice(i) };
}

type Resolved = { text: string; exitCode: number } | { command: Command; values: Values; positionals: string[] };

/** A usage error raised while parsing a command's own arguments names that command. */
function forCommand(e: unknown, name: string): never {
  throw Object.assign(e as Error, { command: name });
}

/**
 * Finds the command in `args` and parses its options: global options may come before the
 * command word (or between `remote` and its subcommand), everything may come after it.
 */
function resolveCommand(args: string[]): Resolved {
  const first = parseOptions(args, GLOBAL, { stopAtPositional: true, deferUnknown: true, help: '' });
  const at = args.length - first.rest.length;
  const word = first.rest[0];
  if (word === undefined || word === '--') {
    if (first.values.version) return { text: (createRequire(import.meta.url)('../../../package.json') as { version: string }).version, exitCode: EXIT.OK };
    return { text: mainHelp(), exitCode: first.values.help ? EXIT.OK : EXIT.USAGE };
  }
  if (word === 'help') {
    const topic = first.rest.slice(1).filter((a) => !a.startsWith('-'));
    if (topic.length === 0 || topic[0] === 'help') return { text: mainHelp(), exitCode: EXIT.OK };
    if (topic.length === 1 && GROUPS.includes(topic[0]!)) return { text: groupHelp(topic[0]!), exitCode: EXIT.OK };
    const target = ALL_COMMANDS.find((c) => c.name === topic.join(' '));
    if (!target) throw notACommand(topic.length > 1 && GROUPS.includes(topic[0]!) ? topic.slice(0, 2) : topic.slice(0, 1));
    return { text: commandHelp(target), exitCode: EXIT.OK };
  }
  let words = [word];
  let after = args.slice(at + 1);
  let before = args.slice(0, at);
  if (GROUPS.includes(word)) {
    const second = parseOptions(after, GLOBAL, { stopAtPositional: true, deferUnknown: true, help: word });
    const sub = second.rest[0];
    if (sub === undefined || sub === '--') {
      if (first.values.help || second.values.help) return { text: groupHelp(word), exitCode: EXIT.OK };
      const subs = ALL_COMMANDS.filter((c) => c.name.startsWith(`${word} `)).map((c) => c.name.split(' ')[1]);
      throw usageError(`'${word}' needs a command: ${subs.join(', ')}`, word);
    }
    words = [word, sub];
    before = [...before, ...after.slice(0, after.length - second.rest.length)];
    after = second.rest.slice(1);
  }
  const command = ALL_COMMANDS.find((c) => c.name === words.join(' '));
  if (!command) throw notACommand(words);
  let parsed;
  try {
    parsed = parseOptions([...before, ...after], { ...GLOBAL, ...command.options }, { stopAtPositional: false, deferUnknown: false, help: command.name });
  } catch (e) {
    forCommand(e, command.name);
  }
  if (parsed.values.help) return { text: commandHelp(command), exitCode: EXIT.OK };
  if (parsed.positionals.includes('')) forCommand(usageError('an argument is empty', command.name), command.name);
  const [min, max] = command.args;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    const synopsis = `ostree-sysext ${command.name} ${command.synopsis}`.trimEnd();
    const extra = parsed.positionals
      .slice(max)
      .map((a) => `'${a}'`)
      .join(' ');
    const message = n < min ? `missing argument (${synopsis})` : max === 0 ? `takes no arguments, got ${extra}` : `too many arguments: ${extra} (${synopsis})`;
    forCommand(usageError(message, command.name), command.name);
  }
  try {
    systemdVersionOption(parsed.values['systemd-version'], command.name);
  } catch (e) {
    forCommand(e, command.name);
  }
  return { command, values: parsed.values, positionals: parsed.positionals };
}

/** "'lst' is not an ostree-sysext command. Did you mean 'list'?" */
function notACommand(words: string[]): CliError {
  if (words.length === 2) {
    const subs = ALL_COMMANDS.filter((c) => c.name.startsWith(`${words[0]} `)).map((c) => c.name.split(' ')[1]!);
    return usageError(`'${words[1]}' is not an ostree-sysext ${words[0]} command.${suggest(words[1]!, subs)}`.replace(/\.$/, ''), words[0]!);
  }
  const top = [...new Set(ALL_COMMANDS.map((c) => c.name.split(' ')[0]!)), 'help'];
  return usageError(`'${words[0]}' is not an ostree-sysext command.${suggest(words[0]!, top)}`.replace(/\.$/, ''), '');
}

/**
 * Runs the command line `argv` (without the node and script paths) and resolves to the exit
 * code. Never throws: failures are printed as one line (a stack trace only with
 * `OSTREE_SYSEXT_DEBUG=1`).
 */
export async function main(argv: string[], io: { stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream } = {}): Promise<number> {
  // `ostree sysext ARGS` runs `ostree-sysext sysext ARGS`.
  const args = argv[0] === 'sysext' ? argv.slice(1) : argv;
  const json = args.includes('--json');
  const quiet = args.includes('--quiet') || args.includes('-q');
  const out = new Output({ json, quiet, ...io });
  const stdout = io.stdout ?? process.stdout;
  let resolved: Resolved;
  try {
    resolved = resolveCommand(args);
  } catch (e) {
    return out.fail((e as { command?: string }).command ?? '', e);
  }
  if ('text' in resolved) {
    stdout.write(resolved.text + '\n');
    return resolved.exitCode;
  }
  const { command } = resolved;
  const parsed = resolved;
  const v = parsed.values;
  const opts: GlobalOptions = {
    sysroot: typeof v.sysroot === 'string' ? v.sysroot : '/',
    repo: typeof v.repo === 'string' ? v.repo : undefined,
    os: typeof v.os === 'string' ? v.os : undefined,
    root: typeof v.root === 'string' ? v.root : undefined,
    force: Boolean(v.force),
    json,
    quiet,
    wait: Boolean(v.wait),
    systemdVersion: systemdVersionOption(v['systemd-version']),
  };
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(EXIT.INTERRUPTED);
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx = new Context(opts, out, ac.signal);
  try {
    const result = await command.run(ctx, v, parsed.positionals);
    if (json) stdout.write(JSON.stringify({ ok: ctx.exitCode === 0, command: command.name, exitCode: ctx.exitCode, result }, null, 2) + '\n');
    return ctx.exitCode;
  } catch (e) {
    if (ac.signal.aborted) return out.fail(command.name, Object.assign(new Error(`interrupted: ${(e as Error).message}`), { name: 'AbortError' }));
    if (isExtensionError(e) && e.code === 'SET_REFUSED' && command.name === 'deploy') {
      // The exact command that shows the votes deploy just got.
      const see = [
        'ostree-sysext',
        ...(opts.sysroot !== '/' ? ['--sysroot', opts.sysroot] : []),
        ...(opts.repo ? ['--repo', opts.repo] : []),
        ...(opts.os ? ['--os', opts.os] : []),
        'check',
        '--vote',
        ...parsed.positionals,
      ].join(' ');
      const refused = new CliError(e.message, EXIT.REFUSED, e.code, `see every vote with \`${see}\`; warnings (not vetoes) pass with --force`);
      return out.fail(command.name, Object.assign(refused, { report: (e as { report?: unknown }).report }));
    }
    return out.fail(command.name, e);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.close();
  }
}
