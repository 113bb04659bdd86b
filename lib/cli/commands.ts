/**
 * The commands of `ostree-sysext`: each parses nothing itself, takes the parsed options, calls
 * the library, prints for people, and returns the `--json` result.
 * @module
 */
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { applySet, boundSet, type ApplyResult } from '../sets/activate.js';
import type { HostCallOptions, HostUpgradeResult, SetChange } from '../host/host.js';
import type { Base } from '../extension/base.js';
import { remoteBuilder, type Builder } from '../extension/builders.js';
import { checkCompatibility, type CompatibilityReason } from '../extension/compat.js';
import { DeploymentSet, type SetRecord } from '../sets/deployment-set.js';
import { isOstreeError } from '../binding/errors.js';
import { mergeOffline } from '../sets/merge.js';
import { executablePlugin } from '../sets/plugin-sandbox.js';
import { type Plugin, type VoteReport } from '../sets/plugin.js';
import { mergedExtensions, SERVICE_ENVIRONMENT_FILE, writeServiceEnvironment } from '../sets/sysext.js';
import type { InstalledExtension } from '../extension/store.js';
import { validateExtension } from '../extension/validate.js';
import { directoryReader } from '../tree/directory.js';
import type { Context } from './context.js';
import { CliError, EXIT, formatBytes, table, usage } from './output.js';
import { setByPrefix } from './set-lookup.js';

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

const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
const list = (v: Values, k: string): string[] => (Array.isArray(v[k]) ? (v[k] as string[]) : []);
const short = (c: string | null | undefined): string => (c ? c.slice(0, 12) : '-');

const refreshOptions: Record<string, OptionSpec> = {
  refresh: { type: 'boolean', description: 'run `systemd-sysext refresh` (and `systemd-confext refresh`, systemd 254+) afterwards (default when --root is /)' },
  'no-refresh': { type: 'boolean', description: 'do not run `systemd-sysext refresh` / `systemd-confext refresh`' },
};
const pluginOption: Record<string, OptionSpec> = {
  plugin: {
    type: 'string',
    multiple: true,
    arg: 'PATH',
    description: 'also run this plugin: a .js/.mjs module exporting a plugin, or an executable (repeatable)',
  },
};
const moduleOption: Record<string, OptionSpec> = {
  module: {
    type: 'string',
    multiple: true,
    arg: 'FILE',
    description: 'load builders from this module (default export or `builders`: a builder or an array; repeatable)',
  },
};

function wantRefresh(ctx: Context, v: Values, dflt = ctx.root === '/'): boolean {
  if (v['no-refresh']) return false;
  if (v.refresh) return true;
  return dflt;
}

/** Host options of deploy and undeploy: warnings accepted with --force before pass again. */
function memberChange(ctx: Context, v: Values, plugins: Plugin[]): HostCallOptions {
  return { force: ctx.opts.force, keepAcceptedWarnings: true, wait: ctx.opts.wait, refresh: wantRefresh(ctx, v), plugins, signal: ctx.signal };
}

async function loadPlugins(v: Values): Promise<Plugin[]> {
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

async function loadBuilders(ctx: Context, v: Values): Promise<void> {
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
function remoteWithProgress(ctx: Context): Builder {
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

function extJson(e: InstalledExtension): Record<string, unknown> {
  return { ...e, timestamp: e.timestamp.toISOString() };
}

function printVotes(ctx: Context, report: VoteReport): void {
  for (const v of report.votes) ctx.out.info(`  ${v.verdict.padEnd(7)} ${v.plugin}: ${v.message}`);
}

function applyJson(a: ApplyResult): Record<string, unknown> {
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
async function changeSet(ctx: Context, run: () => Promise<SetChange>): Promise<{ set: SetRecord; votes: VoteReport | null; applied: Record<string, unknown> }> {
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
function activeCheckout(root: string): string | null {
  try {
    return readlinkSync(resolve(root, 'run', 'ostree', 'extensions'));
  } catch {
    return null;
  }
}

interface CheckRow {
  name: string;
  source: string;
  kind: 'sysext' | 'confext' | null;
  compatible: boolean;
  reason: CompatibilityReason | { code: string; message: string };
}

async function checkOne(ctx: Context, target: string, base: Base): Promise<CheckRow> {
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
export const COMMANDS: Command[] = [
  {
    name: 'list',
    summary: 'list installed extensions, with their state against the OS',
    synopsis: '[--base DIR|REV]',
    description:
      'Lists the installed extensions: kind, version, compatibility with the base (default: the OS deployment), the sets that use them, and where they came from.',
    options: { base: { type: 'string', arg: 'DIR|REV', description: 'judge compatibility against this OS tree or commit' } },
    examples: ['ostree-sysext list', 'ostree-sysext list --json', 'ostree-sysext --repo /srv/repo list --base os/x86_64/stable'],
    args: [0, 0],
    async run(ctx, v) {
      const store = await ctx.store();
      const base = await ctx.base(str(v, 'base'));
      const exts = await store.list({ ...(base ? { base, compatibility: { systemd: await ctx.systemd() } } : {}), signal: ctx.signal });
      if (exts.length === 0) ctx.out.info('no extensions installed');
      else {
        ctx.out.result(
          table(
            ['NAME', 'KIND', 'VERSION', 'STATE', 'COMMIT', 'SIZE', 'ACTIVE IN', 'ORIGIN'],
            exts.map((e) => [
              e.name,
              e.kind,
              e.version ?? '-',
              e.state ?? '-',
              short(e.commit),
              e.size === null ? '-' : formatBytes(e.size),
              e.activeIn.join(',') || '-',
              e.origin ? `${e.origin.builder}${e.outdated ? ' (update pulled)' : ''}` : '-',
            ]),
          ),
        );
      }
      return { base: base?.id ?? null, extensions: exts.map(extJson) };
    },
  },
  {
    name: 'status',
    summary: 'show the deployments, their sets and what is active',
    synopsis: '',
    description:
      'Shows the OS deployments, the set bound to each, the current set with its votes, what run/extensions points to, and what systemd-sysext has merged under --root.',
    options: {},
    examples: ['ostree-sysext status', 'ostree-sysext --sysroot /mnt/image status --json'],
    args: [0, 0],
    async run(ctx) {
      const sysroot = await ctx.sysroot();
      const store = await ctx.store();
      const osname = await ctx.osname();
      const deployments = [];
      for (const d of sysroot.deployments().filter((x) => x.osname === osname)) {
        deployments.push({ index: d.index, checksum: d.checksum, serial: d.serial, booted: d.booted, path: d.path, set: await boundSet(sysroot, d) });
      }
      const current = await DeploymentSet.current(store, osname);
      const history = await DeploymentSet.history(store, osname, { maxCount: 10 });
      const active = activeCheckout(ctx.root);
      const activeSet = active ? (/([0-9a-f]{64})\.0$/.exec(active)?.[1] ?? null) : null;
      const merged = await mergedExtensions(ctx.root, ['usr', 'opt', 'etc']);
      ctx.out.result(`OS ${osname} on ${sysroot.path}`);
      for (const d of deployments)
        ctx.out.result(`  deployment ${d.index}: ${short(d.checksum)}.${d.serial}${d.booted ? ' (booted)' : ''}  set ${short(d.set)}`);
      if (current) {
        ctx.out.result(`current set ${short(current.commit)} (${current.timestamp.toISOString()}): ${current.order.join(', ') || '(empty)'}`);
        if (current.votes) printVotes(ctx, current.votes);
      } else ctx.out.result('no set committed yet (`ostree-sysext deploy NAME` makes one)');
      ctx.out.result(`active under ${ctx.root}: ${activeSet ? `set ${short(activeSet)}` : 'none'}`);
      const m = Object.entries(merged).filter(([, n]) => n.length > 0);
      ctx.out.result(`merged by systemd-sysext: ${m.length ? m.map(([h, n]) => `/${h}: ${n.join(', ')}`).join('; ') : 'nothing'}`);
      return {
        sysroot: sysroot.path,
        osname,
        root: ctx.root,
        deployments,
        set: current,
        history: history.map((r) => ({ commit: r.commit, subject: r.subject, timestamp: r.timestamp, extensions: r.extensions })),
        active: { checkout: active, set: activeSet },
        merged,
      };
    },
  },
  {
    name: 'add',
    summary: 'install an extension from a remote ref, a directory or an archive',
    synopsis: 'REMOTE:REF | DIR | ARCHIVE',
    description:
      'Validates and installs one extension. The source is a directory when it is one, an archive (tar, any compression libarchive reads) when it is a file, and REMOTE:REF otherwise; --directory, --archive or --remote say it explicitly. Remote pulls check signatures as the remote is configured and show progress.',
    options: {
      name: { type: 'string', arg: 'NAME', description: "the extension's name (default: from its extension-release file)" },
      replace: { type: 'boolean', description: 'replace an installed extension of the same name (its history is kept)' },
      strict: { type: 'boolean', description: 'refuse warnings too (setuid files, content systemd ignores)' },
      directory: { type: 'boolean', description: 'the source is a directory' },
      archive: { type: 'boolean', description: 'the source is an archive' },
      remote: { type: 'boolean', description: 'the source is REMOTE:REF' },
    },
    examples: ['ostree-sysext add ./build/tools', 'ostree-sysext add tools.tar.gz --replace', 'ostree-sysext add vendor:extensions/x86_64/tools'],
    args: [1, 1],
    async run(ctx, v, [source]) {
      const store = await ctx.store();
      store.registerBuilder(remoteWithProgress(ctx));
      const src = source!;
      const isPath = existsSync(src);
      const kind = v.directory
        ? 'directory'
        : v.archive
          ? 'archive'
          : v.remote
            ? 'remote'
            : isPath
              ? statSync(src).isDirectory()
                ? 'directory'
                : 'archive'
              : /^[^/:]+:[^:]+$/.test(src)
                ? 'remote'
                : null;
      if (kind === null)
        throw new CliError(
          `${src} is not a directory, an archive or REMOTE:REF`,
          EXIT.NOT_FOUND,
          'NOT_FOUND',
          'check the path, or give REMOTE:REF of a configured remote',
        );
      const opts = { replace: Boolean(v.replace), strict: Boolean(v.strict), signal: ctx.signal, ...(str(v, 'name') ? { name: str(v, 'name')! } : {}) };
      let ext: InstalledExtension;
      if (kind === 'remote') {
        const i = src.indexOf(':');
        if (i <= 0) throw usage(`${src} is not REMOTE:REF`);
        ext = await store.installFromRemote(src.slice(0, i), src.slice(i + 1), opts);
      } else if (kind === 'directory') ext = await store.installFromDirectory(resolve(src), opts);
      else ext = await store.installFromArchive(resolve(src), opts);
      ctx.out.info(`installed ${ext.name} ${ext.version ?? ''} (${ext.kind}, commit ${short(ext.commit)}) from ${kind} ${src}`.replace('  ', ' '));
      return { extension: extJson(ext) };
    },
  },
  {
    name: 'remove',
    summary: 'remove an installed extension',
    synopsis: 'NAME...',
    description: 'Removes installed extensions and prunes objects nothing else uses. Refused (exit 3) while a set includes one, unless --force.',
    options: { 'no-prune': { type: 'boolean', description: 'keep the objects (no prune)' } },
    examples: ['ostree-sysext remove tools', 'ostree-sysext remove --force tools'],
    args: [1, Infinity],
    async run(ctx, v, names) {
      const store = await ctx.store();
      // On a sysroot, under its lock: no set change runs between the check and the prune.
      const host = (await ctx.maybeSysroot()) ? await ctx.host() : null;
      for (const name of names) {
        const opts = { force: ctx.opts.force, prune: !v['no-prune'], wait: ctx.opts.wait, signal: ctx.signal };
        await (host ? host.remove(name, opts) : store.remove(name, opts));
        ctx.out.info(`removed ${name}`);
      }
      return { removed: names };
    },
  },
  {
    name: 'deploy',
    summary: 'add extensions to the active set (plugins vote), then apply it',
    synopsis: 'NAME...',
    description:
      "Adds installed extensions to the OS deployment's current set (at their installed commits), lets the plugins vote (built-in release compatibility and file conflicts, the base's plugins, and --plugin), commits the set, and applies it: run/extensions points to it atomically. A veto is final; warnings pass with --force.",
    options: { ...refreshOptions, ...pluginOption },
    examples: ['ostree-sysext deploy tools', 'ostree-sysext deploy --force tools debug-tools', 'ostree-sysext --sysroot /mnt/sysroot deploy tools --json'],
    args: [1, Infinity],
    async run(ctx, v, names) {
      const host = await ctx.host();
      const plugins = await loadPlugins(v);
      return changeSet(ctx, () => host.deploy(names, memberChange(ctx, v, plugins)));
    },
  },
  {
    name: 'undeploy',
    summary: 'remove extensions from the active set, then apply it',
    synopsis: 'NAME...',
    description: 'Removes extensions from the current set (they stay installed), lets the plugins vote on what is left, commits and applies it.',
    options: { ...refreshOptions, ...pluginOption },
    examples: ['ostree-sysext undeploy tools'],
    args: [1, Infinity],
    async run(ctx, v, names) {
      const host = await ctx.host();
      const plugins = await loadPlugins(v);
      return changeSet(ctx, () => host.undeploy(names, memberChange(ctx, v, plugins)));
    },
  },
  {
    name: 'rollback',
    summary: 'make the previous set (or SET) current again and apply it',
    synopsis: '[SET]',
    description:
      'Re-commits an earlier set of the OS (default: the previous one) on top of the history, so a rollback can itself be rolled back, and applies it.',
    options: { ...refreshOptions },
    examples: ['ostree-sysext rollback', 'ostree-sysext rollback fbe953dab273     # a set id as `status` prints it (any unique prefix)'],
    args: [0, 1],
    async run(ctx, v, [to]) {
      const host = await ctx.host();
      const id = to === undefined ? undefined : await setByPrefix(await ctx.store(), await ctx.osname(), to);
      const { set, applied, committed } = await host.rollback(id, { wait: ctx.opts.wait, refresh: wantRefresh(ctx, v), signal: ctx.signal });
      ctx.out.info(
        `${committed ? 'rolled back' : 'already rolled back'} the set of ${set.osname}: ${set.order.join(', ') || '(empty)'} (set commit ${short(set.commit)})`,
      );
      ctx.out.info(`applied: ${ctx.root}/run/extensions -> ${applied.checkout}/staged`);
      return { set, applied: applyJson(applied) };
    },
  },
  {
    name: 'upgrade',
    summary: 'update extensions from their origin, then refresh the set',
    synopsis: '[NAME...]',
    description:
      "Asks each extension's builder (directory, archive, remote, or one loaded with --module) for an update and installs it: `available` always, `warn` only with --force, `veto` never. When updated extensions are in the OS's current set, a new set with them is voted on, committed and applied (unless --no-apply). Exit 3 when an update was vetoed, 1 when one failed.",
    options: {
      ...moduleOption,
      ...refreshOptions,
      ...pluginOption,
      'no-apply': { type: 'boolean', description: 'only update the extensions; leave the set as it is' },
      'allow-downgrade': {
        type: 'boolean',
        description: 'accept an origin that now offers older content than what is installed (refused by default: a mirror replaying an old commit)',
      },
    },
    examples: [
      'ostree-sysext upgrade',
      'ostree-sysext upgrade tools --no-apply',
      'ostree-sysext upgrade --module ./my-builder.mjs',
      'ostree-sysext upgrade tools --allow-downgrade',
    ],
    args: [0, Infinity],
    async run(ctx, v, names) {
      const store = await ctx.store();
      store.registerBuilder(remoteWithProgress(ctx));
      await loadBuilders(ctx, v);
      // On a sysroot the host upgrades and moves the set in one convergent step; else only the store.
      const host = !v['no-apply'] && (await ctx.maybeSysroot()) ? await ctx.host() : null;
      const upgrading = host
        ? host.upgrade({
            force: ctx.opts.force,
            wait: ctx.opts.wait,
            refresh: wantRefresh(ctx, v),
            plugins: await loadPlugins(v),
            signal: ctx.signal,
            ...(v['allow-downgrade'] ? { allowDowngrade: true } : {}),
            ...(names.length ? { names } : {}),
          })
        : store
            .upgrade({
              force: ctx.opts.force,
              signal: ctx.signal,
              ...(v['allow-downgrade'] ? { allowDowngrade: true } : {}),
              ...(names.length ? { names } : {}),
            })
            .then((outcomes) => ({ outcomes, change: null }));
      const { outcomes, change, setError } = (await upgrading) as HostUpgradeResult;
      for (const o of outcomes) {
        ctx.out.info(
          `${o.name}: ${o.result}${o.result === 'updated' ? ` ${short(o.from)} -> ${short(o.to)}` : ''} (${o.check.status}: ${o.error ? o.error.message.split('\n')[0] : o.check.message})`,
        );
      }
      if (outcomes.some((o) => o.result === 'failed')) ctx.exitCode = EXIT.FAILURE;
      else if (outcomes.some((o) => o.result === 'vetoed')) ctx.exitCode = EXIT.REFUSED;
      const result: Record<string, unknown> = {
        outcomes: outcomes.map((o) => ({
          name: o.name,
          result: o.result,
          check: o.check,
          from: o.from,
          to: o.to,
          ...(o.error ? { error: o.error.message } : {}),
        })),
      };
      // Outcomes first, then the set change (or its refusal, which is the exit code).
      if (setError || change) Object.assign(result, await changeSet(ctx, () => (change ? Promise.resolve(change) : Promise.reject(setError))));
      return result;
    },
  },
  {
    name: 'build',
    summary: 'build an extension through a builder and install it',
    synopsis: 'BUILDER',
    description:
      'Runs a builder (directory, archive, remote, or one loaded with --module) with a JSON context and installs what it produced; the builder and context are recorded so `upgrade` can rebuild it.',
    options: {
      ...moduleOption,
      context: { type: 'string', arg: 'JSON', description: "the builder's context, a JSON object (default {})" },
      name: { type: 'string', arg: 'NAME', description: "the extension's name" },
      replace: { type: 'boolean', description: 'replace an installed extension of the same name' },
    },
    examples: [`ostree-sysext build directory --context '{"path":"./tools"}'`, `ostree-sysext build hello --module ./hello-builder.mjs --name hello`],
    args: [1, 1],
    async run(ctx, v, [builder]) {
      const store = await ctx.store();
      store.registerBuilder(remoteWithProgress(ctx));
      await loadBuilders(ctx, v);
      let context: unknown = {};
      if (str(v, 'context') !== undefined) {
        try {
          context = JSON.parse(str(v, 'context')!);
        } catch (e) {
          throw usage(`--context is not JSON: ${(e as Error).message}`);
        }
        if (!context || typeof context !== 'object' || Array.isArray(context)) throw usage('--context must be a JSON object');
      }
      const ext = await store.build(builder!, context as Record<string, unknown>, {
        replace: Boolean(v.replace),
        signal: ctx.signal,
        ...(str(v, 'name') ? { name: str(v, 'name')! } : {}),
      });
      ctx.out.info(`built ${ext.name} ${ext.version ?? ''} (${ext.kind}, commit ${short(ext.commit)}) with builder ${builder}`.replace('  ', ' '));
      return { extension: extJson(ext) };
    },
  },
  {
    name: 'check',
    summary: 'check extensions against a base (with the reason), optionally with a vote',
    synopsis: '[NAME|DIR...]',
    description:
      "Says whether systemd-sysext would merge each extension (installed NAME, or an extension tree DIR; default: every installed one) on the base (--base, default the OS deployment), and why. With --vote, also runs the plugins' vote on the current set plus the given installed extensions, without committing. Exit 3 when something is incompatible or the vote refuses.",
    options: {
      base: { type: 'string', arg: 'DIR|REV', description: 'the base: an OS tree directory or a commit/ref of the repository' },
      vote: { type: 'boolean', description: "run the plugins' vote on the current set plus these extensions" },
      ...pluginOption,
    },
    examples: ['ostree-sysext check', 'ostree-sysext check tools --vote', 'ostree-sysext check ./build/tools --base /'],
    args: [0, Infinity],
    async run(ctx, v, targets) {
      const base = (await ctx.base(str(v, 'base'), { required: true }))!;
      const names = targets.length ? targets : await (await ctx.store()).names();
      const rows: CheckRow[] = [];
      for (const t of names) rows.push(await checkOne(ctx, t, base));
      ctx.out.result(
        `base ${base.id.slice(0, 64)}: ID=${base.osRelease.ID ?? '-'} VERSION_ID=${base.osRelease.VERSION_ID ?? '-'}${base.osRelease.SYSEXT_LEVEL ? ` SYSEXT_LEVEL=${base.osRelease.SYSEXT_LEVEL}` : ''}`,
      );
      if (rows.length)
        ctx.out.result(
          table(
            ['NAME', 'KIND', 'COMPATIBLE', 'REASON'],
            rows.map((r) => [r.name, r.kind ?? '-', r.compatible ? 'yes' : 'no', `${r.reason.code}: ${r.reason.message}`]),
          ),
        );
      let votes: VoteReport | undefined;
      if (v.vote) {
        const store = await ctx.store();
        const osname = await ctx.osname();
        const set = await DeploymentSet.fromCurrent({ store, osname, base, systemd: await ctx.systemd(), plugins: await loadPlugins(v) });
        for (const r of rows) if (r.source.startsWith('installed')) set.add(r.name);
        votes = await set.vote({ force: ctx.opts.force, signal: ctx.signal });
        ctx.out.result(`vote on ${set.names.join(', ') || '(empty set)'}: ${votes.verdict}${votes.accepted ? ' (accepted)' : ' (refused)'}`);
        printVotes(ctx, votes);
      }
      if (rows.some((r) => !r.compatible) || (votes && !votes.accepted)) ctx.exitCode = EXIT.REFUSED;
      return { base: { id: base.id, osRelease: base.osRelease }, results: rows, ...(votes ? { votes } : {}) };
    },
  },
  {
    name: 'merge',
    summary: 'merge extensions onto a base offline, into a directory or a commit',
    synopsis: '[NAME...] (--directory DIR | --ref REF)',
    description:
      "Builds the tree systemd-sysext's overlay would show, without mounts or root: the base (--base, default the OS deployment's commit) with the extensions (default: the current set's) in systemd's order, into a new directory or committed on REF.",
    options: {
      base: { type: 'string', arg: 'DIR|REV', description: 'the base: an OS tree directory or a commit/ref' },
      directory: { type: 'string', arg: 'DIR', description: 'write the merged tree here (must not exist)' },
      ref: { type: 'string', arg: 'REF', description: 'commit the merged tree on this ref' },
      subject: { type: 'string', arg: 'TEXT', description: 'commit subject (with --ref)' },
      'confext-target': { type: 'string', arg: 'etc|usr/etc', description: 'where confext content goes (default etc)' },
    },
    examples: [
      'ostree-sysext merge --directory /tmp/merged',
      'ostree-sysext --repo /srv/repo merge tools --base os/x86_64/stable --ref os/x86_64/stable-with-tools',
    ],
    args: [0, Infinity],
    async run(ctx, v, names) {
      const directory = str(v, 'directory');
      const ref = str(v, 'ref');
      if ((directory === undefined) === (ref === undefined)) throw usage('give exactly one of --directory DIR and --ref REF');
      const target = str(v, 'confext-target');
      if (target !== undefined && target !== 'etc' && target !== 'usr/etc') throw usage('--confext-target is etc or usr/etc');
      const store = await ctx.store();
      const base = (await ctx.base(str(v, 'base'), { required: true, commitForDeployment: true }))!;
      let exts: Array<{ name: string; commit: string; kind: 'sysext' | 'confext' }> = [];
      if (names.length > 0) {
        for (const n of names) {
          const e = await store.get(n);
          exts.push({ name: e.name, commit: e.commit, kind: e.kind });
        }
      } else {
        const current = await DeploymentSet.current(
          store,
          await ctx.osname().catch(() => {
            throw usage('no extensions given and no OS to take the current set from', 'name the extensions, or pass --os');
          }),
        );
        if (!current) throw usage('no extensions given and no set committed', 'name the extensions to merge');
        const set = await DeploymentSet.fromCurrent({ store, osname: current.osname, base, systemd: await ctx.systemd() });
        exts = (await set.members()).map((m) => ({ name: m.name, commit: m.commit, kind: m.kind }));
      }
      const r = await mergeOffline({
        repo: store.repo,
        base,
        extensions: exts,
        systemd: await ctx.systemd(),
        signal: ctx.signal,
        ...(directory ? { directory: resolve(directory) } : { commit: { ref: ref!, ...(str(v, 'subject') ? { subject: str(v, 'subject')! } : {}) } }),
        ...(target ? { confextTarget: target as 'etc' | 'usr/etc' } : {}),
      });
      ctx.out.info(`merged ${r.order.join(', ') || 'no extensions'} onto ${base.id.slice(0, 12)}: ${r.directory ?? `${ref} -> ${r.commit}`}`);
      return r;
    },
  },
  {
    name: 'verify',
    summary: 'verify extension signatures and the repository (fsck)',
    synopsis: '[NAME...]',
    description:
      "Verifies the GPG signatures of installed extensions (default: all): those pulled from a remote against that remote's keys, others against --keyring or --remote when given, else reported as unsigned local builds. Then checks every object of the repository (fsck). Exit 6 when a required signature is missing or bad, or fsck finds a problem.",
    options: {
      keyring: { type: 'string', arg: 'FILE', description: 'trusted keys (exported keyring) for extensions not pulled from a remote' },
      remote: { type: 'string', arg: 'NAME', description: "check every extension against this remote's keys" },
      'no-fsck': { type: 'boolean', description: 'skip the repository check' },
    },
    examples: ['ostree-sysext verify', 'ostree-sysext verify tools --keyring vendor.gpg', 'ostree-sysext verify --no-fsck --json'],
    args: [0, Infinity],
    async run(ctx, v, given) {
      const store = await ctx.store();
      const names = given.length ? given : await store.names();
      const results = [];
      let bad = false;
      for (const name of names) {
        const e = await store.get(name);
        const originRemote = e.origin?.builder === 'remote' && typeof e.origin.context.remote === 'string' ? (e.origin.context.remote as string) : undefined;
        const remote = str(v, 'remote') ?? (str(v, 'keyring') ? undefined : originRemote);
        const keyring = str(v, 'keyring');
        // Signatures are required when asked for, or when the remote it came from requires them.
        let required = str(v, 'remote') !== undefined || keyring !== undefined;
        if (!required && remote !== undefined) required = store.repo.remotes().find((r) => r.name === remote)?.gpgVerify ?? true;
        const opts = { signal: ctx.signal, ...(remote ? { remote } : keyring ? { keyring: resolve(keyring) } : {}) };
        let signed = true;
        let valid = false;
        let signatures: unknown[] = [];
        let message: string;
        try {
          const r = await store.repo.verifyCommit(e.commit, opts);
          valid = r.valid;
          signatures = r.signatures;
          message = r.valid
            ? `valid signature by ${r.signatures
                .filter((s) => s.valid)
                .map((s) => s.user ?? s.keyId)
                .join(', ')}`
            : `no valid signature (${r.signatures.map((s) => `${s.keyId}${s.keyMissing ? ' unknown key' : s.keyExpired ? ' expired key' : s.keyRevoked ? ' revoked key' : ' bad'}`).join(', ')})`;
        } catch (err) {
          if (!isOstreeError(err) || !err.code.startsWith('GPG_')) throw err;
          signed = err.code !== 'GPG_NO_SIGNATURE';
          message = signed ? err.message.split('\n')[0]! : 'unsigned';
        }
        const status = valid ? 'valid' : !signed && !required ? 'unsigned' : 'invalid';
        if (status === 'invalid') bad = true;
        results.push({ name, commit: e.commit, status, signed, valid, against: remote ? `remote ${remote}` : keyring ? keyring : null, message, signatures });
        const unsigned = originRemote
          ? `unsigned (pulled from remote ${originRemote}, which does not require signatures)`
          : 'unsigned (local build; nothing to verify against)';
        ctx.out.result(`${name}: ${status === 'unsigned' ? unsigned : message}`);
      }
      let fsck = null;
      if (!v['no-fsck']) {
        // libostree's fsck reports no progress: say what runs and for how long, not a fake bar.
        const p = ctx.out.activity('fsck', `checking every object of ${store.repo.path}`);
        try {
          fsck = await store.repo.fsck({ signal: ctx.signal });
        } finally {
          p.end();
        }
        if (!fsck.ok) bad = true;
        ctx.out.result(
          `fsck: ${fsck.ok ? 'ok' : 'PROBLEMS'}: ${fsck.commitsChecked} commits, ${fsck.objectsChecked} objects, ${fsck.missing.length} missing, ${fsck.corrupt.length} corrupt`,
        );
        for (const p2 of [...fsck.missing, ...fsck.corrupt]) ctx.out.result(`  ${p2.objectType} ${p2.checksum}: ${p2.message}`);
      }
      if (bad) ctx.exitCode = EXIT.VERIFY_FAILED;
      return { extensions: results, fsck };
    },
  },
  {
    name: 'remote add',
    summary: 'add an OSTree remote (and import its GPG keys)',
    synopsis: 'NAME URL',
    description: "Adds a remote to the repository. GPG verification is on unless --no-gpg-verify; import the vendor's public keys with --gpg-import.",
    options: {
      'gpg-import': { type: 'string', arg: 'FILE', description: "import the remote's public keys from this file" },
      'no-gpg-verify': { type: 'boolean', description: 'accept unsigned commits from this remote' },
      'if-not-exists': { type: 'boolean', description: 'succeed without change when the remote exists' },
      replace: { type: 'boolean', description: "replace an existing remote's configuration" },
    },
    examples: [
      'ostree-sysext remote add vendor https://example.com/repo --gpg-import vendor.gpg',
      'ostree-sysext remote add local file:///srv/repo --no-gpg-verify',
    ],
    args: [2, 2],
    async run(ctx, v, [name, url]) {
      const repo = await ctx.repo();
      await repo.addRemote(name!, {
        url: url!,
        gpgVerify: !v['no-gpg-verify'],
        ifNotExists: Boolean(v['if-not-exists']),
        replace: Boolean(v.replace),
        signal: ctx.signal,
      });
      let imported = 0;
      if (str(v, 'gpg-import')) imported = await repo.importRemoteKeys(name!, await readFile(resolve(str(v, 'gpg-import')!)), { signal: ctx.signal });
      if (!v['no-gpg-verify'] && imported === 0 && !existsSync(resolve(repo.path, `${name}.trustedkeys.gpg`))) {
        ctx.out.warn(
          `remote ${name} verifies GPG signatures but has no key: pulls fail until you import the vendor's key (ostree-sysext remote add ${name} ${url} --gpg-import KEYFILE --replace), unless it is in /usr/share/ostree/trusted.gpg.d`,
        );
      }
      ctx.out.info(`added remote ${name} (${url})${v['no-gpg-verify'] ? ', GPG verification off' : ''}${imported ? `, ${imported} key(s) imported` : ''}`);
      return { remote: repo.getRemote(name!), keysImported: imported };
    },
  },
  {
    name: 'remote list',
    summary: 'list the OSTree remotes',
    synopsis: '',
    description: 'Lists the remotes of the repository with their URL and GPG settings.',
    options: {},
    examples: ['ostree-sysext remote list', 'ostree-sysext remote list --json'],
    args: [0, 0],
    async run(ctx) {
      const remotes = (await ctx.repo()).remotes();
      if (remotes.length === 0) ctx.out.info('no remotes');
      else
        ctx.out.result(
          table(
            ['NAME', 'URL', 'GPG'],
            remotes.map((r) => [r.name, r.url ?? '-', r.gpgVerify ? 'verify' : 'off']),
          ),
        );
      return { remotes };
    },
  },
  {
    name: 'remote delete',
    summary: 'delete an OSTree remote',
    synopsis: 'NAME',
    description: 'Deletes a remote from the repository (its pulled refs go with it).',
    options: { 'if-exists': { type: 'boolean', description: 'succeed when the remote does not exist' } },
    examples: ['ostree-sysext remote delete vendor'],
    args: [1, 1],
    async run(ctx, v, [name]) {
      await (await ctx.repo()).deleteRemote(name!, { ifExists: Boolean(v['if-exists']), signal: ctx.signal });
      ctx.out.info(`deleted remote ${name}`);
      return { deleted: name };
    },
  },
  {
    name: 'boot',
    summary: 're-apply the set bound to the booted deployment (run by ostree-sysext.service)',
    synopsis: '',
    description:
      'Points run/extensions at the set bound to the booted deployment; after an OS upgrade (no set bound yet) the current set is re-checked against the new OS and incompatible extensions are left out. Run early at boot by systemd/ostree-sysext.service, before systemd-sysext.service merges; writes run/ostree-sysext/systemd-sysext.env for that service (SYSTEMD_SYSEXT_HIERARCHIES=/usr when the deployment has no /opt, which systemd 257 and later could not mount). Waits for the sysroot lock. With nothing ever deployed it does nothing and exits 0.',
    options: { ...refreshOptions },
    examples: ['ostree-sysext boot', 'systemctl enable ostree-sysext.service'],
    args: [0, 0],
    async run(ctx, v) {
      const store = await ctx.store();
      const sysroot = await ctx.sysroot();
      const osname = await ctx.osname();
      const deployment = await ctx.deployment();
      const bound = await boundSet(sysroot, deployment);
      if (bound === null && (await DeploymentSet.current(store, osname)) === null) {
        ctx.out.info(`no set for ${osname}: nothing to apply`);
        return { applied: null };
      }
      const applied = await applySet({
        sysroot,
        store,
        osname,
        deployment,
        root: ctx.root,
        wait: true,
        refresh: wantRefresh(ctx, v, false),
        signal: ctx.signal,
      });
      ctx.out.info(
        `applied set ${short(applied.set.commit)} (${applied.set.order.join(', ') || 'empty'}) for ${short(deployment.checksum)}.${deployment.serial}`,
      );
      for (const x of applied.excluded) ctx.out.warn(`left out ${x.name}: ${x.reason}`);
      // What systemd-sysext.service needs to merge this deployment (its drop-in reads the file).
      const environment = await writeServiceEnvironment(ctx.root, sysroot.deploymentPath(deployment));
      for (const [k, v] of Object.entries(environment)) ctx.out.info(`systemd-sysext.service: ${k}=${v} (${SERVICE_ENVIRONMENT_FILE})`);
      return { applied: applyJson(applied), environment };
    },
  },
];
