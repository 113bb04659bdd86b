// What the CLI's command groups share: the command shape, option specs, value readers and the
// printers of results.
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ApplyResult } from '../../sets/activate.js';
import type { HostCallOptions, SetChange } from '../../host/host.js';
import type { Base } from '../../extension/base.js';
import { remoteBuilder, type Builder } from '../../extension/builders.js';
import { checkCompatibility, type CompatibilityReason } from '../../extension/compat.js';
import { type SetRecord } from '../../sets/deployment-set.js';
import { executablePlugin } from '../../sets/plugin-sandbox.js';
import { type Plugin, type VoteReport } from '../../sets/plugin.js';
import type { InstalledExtension } from '../../extension/store.js';
import { validateExtension } from '../../extension/validate.js';
import { directoryReader } from '../../tree/directory.js';
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

export const refreshOptions: Record<string, OptionSpec> = {
  refresh: { type: 'boolean', description: 'run `systemd-sysext refresh` (and `systemd-confext refresh`, systemd 254+) afterwards (default when --root is /)' },
  'no-refresh': { type: 'boolean', description: 'do not run `systemd-sysext refresh` / `systemd-confext refresh`' },
};
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

export function wantRefresh(ctx: Context, v: Values, dflt = ctx.root === '/'): boolean {
  if (v['no-refresh']) return false;
  if (v.refresh) return true;
  return dflt;
}

/** Host options of deploy and undeploy: warnings accepted with --force before pass again. */
export function memberChange(ctx: Context, v: Values, plugins: Plugin[]): HostCallOptions {
  return { force: ctx.opts.force, keepAcceptedWarnings: true, wait: ctx.opts.wait, refresh: wantRefresh(ctx, v), plugins, signal: ctx.signal };
}

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

export function extJson(e: InstalledExtension): Record<string, unknown> {
  return { ...e, timestamp: e.timestamp.toISOString() };
}

export function printVotes(ctx: Context, report: VoteReport): void {
  for (const v of report.votes) ctx.out.info(`  ${v.verdict.padEnd(7)} ${v.plugin}: ${v.message}`);
}

export function applyJson(a: ApplyResult): Record<string, unknown> {
  return {
    set: a.set.commit,
    checkout: a.checkout,
    binding: a.binding,
    excluded: a.excluded,
    ...(a.merged ? { merged: a.merged } : {}),
    ...(a.mergedConfexts ? { mergedConfexts: a.mergedConfexts } : {}),
  };
}

/** Prints a set change of the host API (refusals with their votes) and returns its `--json` part. */
export async function changeSet(
  ctx: Context,
  run: () => Promise<SetChange>,
): Promise<{ set: SetRecord; votes: VoteReport | null; applied: Record<string, unknown> }> {
  const change = await run().catch((e: unknown) => {
    const r = (e as { report?: VoteReport }).report;
    if (r) {
      ctx.out.info('plugins refused the set:');
      printVotes(ctx, r);
    }
    throw e;
  });
  const { set: record, votes: report, applied } = change;
  for (const w of change.acceptedBefore) ctx.out.info(`accepted with --force before, still accepted: ${w.plugin}: ${w.message}`);
  ctx.out.info(
    `set ${short(record.commit)} for ${record.osname}: ${record.order.join(', ') || '(empty)'}${change.committed ? '' : change.completed ? ' (already committed; now applied)' : ' (unchanged)'}`,
  );
  if (report) printVotes(ctx, report);
  ctx.out.info(`applied: ${ctx.root}/run/extensions -> ${applied.checkout}/staged${applied.merged ? ` (merged: ${applied.merged.join(', ') || 'none'})` : ''}`);
  return { set: record, votes: report, applied: applyJson(applied) };
}

/** Where `run/ostree/extensions` points, or null. */
export function activeCheckout(root: string): string | null {
  try {
    return readlinkSync(resolve(root, 'run', 'ostree', 'extensions'));
  } catch {
    return null;
  }
}

export interface CheckRow {
  name: string;
  source: string;
  kind: 'sysext' | 'confext' | null;
  compatible: boolean;
  reason: CompatibilityReason | { code: string; message: string };
}

export async function checkOne(ctx: Context, target: string, base: Base): Promise<CheckRow> {
  if (existsSync(target) && statSync(target).isDirectory()) {
    const r = await validateExtension(directoryReader(target));
    const errors = r.problems.filter((p) => p.severity === 'error');
    if (!r.name || !r.kind || errors.length > 0) {
      const message = errors.map((p) => `${p.code}: ${p.message}`).join('; ') || 'no extension-release file';
      return {
        name: r.name ?? basename(target),
        source: resolve(target),
        kind: r.kind ?? null,
        compatible: false,
        reason: { code: 'INVALID_EXTENSION', message },
      };
    }
    const c = checkCompatibility(r.release, base.osRelease, { kind: r.kind, name: r.name, systemd: await ctx.systemd() });
    return { name: r.name, source: resolve(target), kind: r.kind, compatible: c.compatible, reason: c.reason };
  }
  const e = await (await ctx.store()).get(target, { base, compatibility: { systemd: await ctx.systemd() } });
  return {
    name: e.name,
    source: `installed ${short(e.commit)}`,
    kind: e.kind,
    compatible: e.state === 'compatible',
    reason: e.reason ?? { code: 'INVALID_EXTENSION', message: 'no extension-release file' },
  };
}

/** Every command, in --help order. */
