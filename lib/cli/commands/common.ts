// What the CLI's command groups share: the command shape, option specs, value readers, plugin
// and builder loading, and the vote printer.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { remoteBuilder, type Builder } from '../../extension/builders.js';
import { executablePlugin } from '../../sets/plugin-sandbox.js';
import { type Plugin, type VoteReport } from '../../sets/plugin.js';
import type { Context } from '../context.js';
import { CliError, EXIT, usage } from '../output.js';

/** Parsed option values of one command. */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** One option of a command, for parseArgs and for --help. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder of the value in --help. */
  arg?: string;
  description: string;
}

/** A command. */
export interface Command {
  /** `list`, or `remote add` for a subcommand. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The argument synopsis after the name. */
  synopsis: string;
  /** What it does, for --help. */
  description: string;
  /** Its own options. */
  options: Record<string, OptionSpec>;
  /** Examples for --help. */
  examples: string[];
  /** Allowed number of positional arguments. */
  args: [min: number, max: number];
  /** Runs it; returns the `--json` result. */
  run(ctx: Context, values: Values, args: string[]): Promise<unknown>;
}

export const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
export const list = (v: Values, k: string): string[] => (Array.isArray(v[k]) ? (v[k] as string[]) : []);
export const short = (c: string | null | undefined): string => (c ? c.slice(0, 12) : '-');

export const pluginOption: Record<string, OptionSpec> = {
  plugin: {
    type: 'string',
    multiple: true,
    arg: 'PATH',
    description: 'also run this plugin: a .js/.mjs module exporting a plugin, or an executable (repeatable)',
  },
};
export const moduleOption: Record<string, OptionSpec> = {
  module: {
    type: 'string',
    multiple: true,
    arg: 'FILE',
    description: 'load builders from this module (default export or `builders`: a builder or an array; repeatable)',
  },
};

export async function loadPlugins(v: Values): Promise<Plugin[]> {
  const out: Plugin[] = [];
  for (const p of list(v, 'plugin')) {
    const path = resolve(p);
    if (!existsSync(path)) throw new CliError(`plugin ${p} does not exist`, EXIT.NOT_FOUND, 'NOT_FOUND');
    if (/\.(m?js)$/.test(path)) {
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown; plugin?: unknown };
      const plugin = (mod.default ?? mod.plugin) as Plugin | undefined;
      if (!plugin || typeof plugin !== 'object' || typeof plugin.name !== 'string') throw usage(`${p} exports no plugin (a default export with a name)`);
      out.push(plugin);
    } else {
      out.push(executablePlugin(path, basename(path)));
    }
  }
  return out;
}

export async function loadBuilders(ctx: Context, v: Values): Promise<void> {
  const store = await ctx.store();
  for (const m of list(v, 'module')) {
    const path = resolve(m);
    if (!existsSync(path)) throw new CliError(`builder module ${m} does not exist`, EXIT.NOT_FOUND, 'NOT_FOUND');
    const mod = (await import(pathToFileURL(path).href)) as { default?: unknown; builders?: unknown; builder?: unknown };
    const got = mod.default ?? mod.builders ?? mod.builder;
    const builders = (Array.isArray(got) ? got : [got]) as Builder[];
    if (builders.length === 0 || builders.some((b) => !b || typeof b !== 'object')) throw usage(`${m} exports no builder`);
    for (const b of builders) store.registerBuilder(b);
  }
}

/** Registers a remote builder that reports pull progress on the terminal. */
export function remoteWithProgress(ctx: Context): Builder {
  return {
    ...remoteBuilder,
    async build(req) {
      const p = ctx.out.progress(`pull ${String(req.context.remote)}:${String(req.context.ref)}`);
      try {
        const out = await remoteBuilder.build({ ...req, onProgress: p.pull });
        p.end('done');
        return out;
      } catch (e) {
        p.end();
        throw e;
      }
    },
  };
}

export function printVotes(ctx: Context, report: VoteReport): void {
  for (const v of report.votes) ctx.out.info(`  ${v.verdict.padEnd(7)} ${v.plugin}: ${v.message}`);
}
