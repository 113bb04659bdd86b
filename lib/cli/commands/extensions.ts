// The CLI's commands on installed extensions: list, status, add, remove, build, check. They parse, call the library and print.
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { boundSet } from '../../sets/activate.js';
import { DeploymentSet } from '../../sets/deployment-set.js';
import { type VoteReport } from '../../sets/plugin.js';
import { mergedExtensions } from '../../sets/sysext.js';
import type { InstalledExtension } from '../../extension/store.js';
import { CliError, EXIT, formatBytes, table, usage } from '../output.js';

import { checkCompatibility, type CompatibilityReason } from '../../extension/compat.js';
import type { Base } from '../../extension/base.js';
import { validateExtension } from '../../extension/validate.js';
import { directoryReader } from '../../tree/directory.js';
import type { Context } from '../context.js';
import { type Command, str, short, pluginOption, moduleOption, loadPlugins, loadBuilders, remoteWithProgress, printVotes } from './common.js';

/** An installed extension as `--json` prints it. */
function extJson(e: InstalledExtension): Record<string, unknown> {
  return { ...e, timestamp: e.timestamp.toISOString() };
}

/** Where `run/ostree/extensions` points, or null. */
function activeCheckout(root: string): string | null {
  try {
    return readlinkSync(resolve(root, 'run', 'ostree', 'extensions'));
  } catch {
    return null;
  }
}

/** One row of `check`. */
interface CheckRow {
  name: string;
  source: string;
  kind: 'sysext' | 'confext' | null;
  compatible: boolean;
  reason: CompatibilityReason | { code: string; message: string };
}

/** Checks a directory or an installed extension against `base`, as `check` reports it. */
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

export const INSTALL_COMMANDS: Command[] = [
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
      const history = await DeploymentSet.history(store.repo, osname, { maxCount: 10 });
      const current = history[0] ?? null;
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
];

export const BUILD_COMMANDS: Command[] = [
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
        const set = await DeploymentSet.fromCurrent({ repo: store.repo, osname, base, systemd: await ctx.systemd(), plugins: await loadPlugins(v) });
        for (const r of rows) if (r.source.startsWith('installed')) set.add(r.name);
        votes = await set.vote({ force: ctx.opts.force, signal: ctx.signal });
        ctx.out.result(`vote on ${set.names.join(', ') || '(empty set)'}: ${votes.verdict}${votes.accepted ? ' (accepted)' : ' (refused)'}`);
        printVotes(ctx, votes);
      }
      if (rows.some((r) => !r.compatible) || (votes && !votes.accepted)) ctx.exitCode = EXIT.REFUSED;
      return { base: { id: base.id, osRelease: base.osRelease }, results: rows, ...(votes ? { votes } : {}) };
    },
  },
];
