/**
 * `ostree-sysext`: the command-line front end. Parses the command line with node:util
 * parseArgs, runs one command, prints one clear line on failure, and returns the exit code.
 * Also reached as `ostree sysext …` (ostree runs `ostree-sysext sysext …` from PATH).
 * @module
 */
import { parseArgs } from 'node:util';
import { COMMANDS, type Command, type OptionSpec, type Values } from './commands.js';
import { Context, type GlobalOptions } from './context.js';
import { demoCommand } from './demo.js';
import { EXIT, Output, usage } from './output.js';

const GLOBAL: Record<string, OptionSpec> = {
  sysroot: { type: 'string', arg: 'DIR', description: 'the OSTree sysroot (default /)' },
  repo: { type: 'string', arg: 'DIR', description: 'the repository (default <sysroot>/ostree/repo)' },
  os: { type: 'string', arg: 'NAME', description: "the OS name (default: the booted deployment's, else the only one)" },
  root: { type: 'string', arg: 'DIR', description: 'where run/extensions lives (default: the sysroot)' },
  force: { type: 'boolean', short: 'f', description: 'let plugin warnings and update warnings pass; remove extensions in use' },
  wait: { type: 'boolean', description: 'wait for the sysroot lock instead of failing (exit 5)' },
  json: { type: 'boolean', description: 'print one JSON document: {"ok", "command", "result"} or {"ok": false, "error"}' },
  quiet: { type: 'boolean', short: 'q', description: 'print only results and errors, no progress' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', description: 'print the version' },
};
const GLOBAL_WITH_VALUE = new Set(Object.entries(GLOBAL).filter(([, o]) => o.type === 'string').map(([k]) => `--${k}`));

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

/** The help text of one command. */
export function commandHelp(c: Command): string {
  return [
    `Usage: ostree-sysext [OPTIONS] ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`,
    '',
    c.description,
    '',
    ...(Object.keys(c.options).length ? ['Options:', ...optionLines(c.options), ''] : []),
    'Global options:',
    ...optionLines(GLOBAL),
    '',
    'Examples:',
    ...c.examples.map((e) => `  ${e}`),
    '',
    EXIT_HELP,
  ].join('\n');
}

/** Finds the command words: the first one or two arguments that are not options (or option values). */
function findCommand(argv: string[]): { command: Command | null; words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      rest.push(a);
      if (GLOBAL_WITH_VALUE.has(a) && i + 1 < argv.length) rest.push(argv[++i]!);
      continue;
    }
    words.push(a);
    if (words.length === 1 && a === 'remote') continue;
    i++;
    break;
  }
  rest.push(...argv.slice(i));
  const name = words.join(' ');
  return { command: ALL_COMMANDS.find((c) => c.name === name) ?? null, words, rest };
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
  const { command, words, rest } = findCommand(args);
  if (words.length === 0 || words[0] === 'help') {
    const topic = words[0] === 'help' ? rest.filter((a) => !a.startsWith('-')).join(' ') : '';
    const target = topic ? ALL_COMMANDS.find((c) => c.name === topic) : undefined;
    if (topic && !target) return out.fail('help', usage(`unknown command '${topic}'`, "see 'ostree-sysext --help'"));
    if (args.includes('--version')) {
      const { createRequire } = await import('node:module');
      stdout.write(`${(createRequire(import.meta.url)('../../../package.json') as { version: string }).version}\n`);
      return EXIT.OK;
    }
    stdout.write((target ? commandHelp(target) : mainHelp()) + '\n');
    return words.length === 0 && !args.includes('--help') && !args.includes('-h') ? EXIT.USAGE : EXIT.OK;
  }
  if (!command) {
    const name = words.join(' ');
    return out.fail('', usage(`unknown command '${name}'`, words[0] === 'remote' ? 'remote add|list|delete' : "see 'ostree-sysext --help'"));
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    const options = Object.fromEntries(
      Object.entries({ ...GLOBAL, ...command.options }).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
    );
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] };
  } catch (e) {
    return out.fail(command.name, usage((e as Error).message.split('\n')[0]!.replace(/\. To specify.*$/, ''), `see 'ostree-sysext ${command.name} --help'`));
  }
  const v = parsed.values;
  if (v.help) {
    stdout.write(commandHelp(command) + '\n');
    return EXIT.OK;
  }
  const [min, max] = command.args;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    return out.fail(command.name, usage(`expects ${want} argument(s), got ${parsed.positionals.length}: ostree-sysext ${command.name} ${command.synopsis}`.trimEnd(), `see 'ostree-sysext ${command.name} --help'`));
  }
  const opts: GlobalOptions = {
    sysroot: typeof v.sysroot === 'string' ? v.sysroot : '/',
    repo: typeof v.repo === 'string' ? v.repo : undefined,
    os: typeof v.os === 'string' ? v.os : undefined,
    root: typeof v.root === 'string' ? v.root : undefined,
    force: Boolean(v.force),
    json,
    quiet,
    wait: Boolean(v.wait),
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
    return out.fail(command.name, ac.signal.aborted ? Object.assign(new Error(`interrupted: ${(e as Error).message}`), { name: 'AbortError' }) : e);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.close();
  }
}
