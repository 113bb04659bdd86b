/**
 * `ExtensionStore`: installed extensions kept in an OSTree repository, one ref each
 * (`ostree-sysext/ext/<NAME>`), validated before they are installed, with their origin
 * recorded durably so they can be upgraded after a reboot.
 * @module
 */
import { archiveBuilder, directoryBuilder, remoteBuilder, type Builder, type BuilderContext, type BuildOutput, type UpdateCheck } from './builders.js';
import * as is from '../binding/args.js';
import type { Base } from './base.js';
import { commitReader } from '../tree/commit.js';
import { unrepresentable } from '../tree/view.js';
import { checkCompatibility, type CompatibilityOptions, type CompatibilityReason } from './compat.js';
import { ExtensionError, MAX_RELEASE_BYTES } from './errors.js';
import { isOstreeError } from '../binding/errors.js';
import { setExtensions } from './set-format.js';
import { EXTENSION_REF_PREFIX, extensionRef, KEEP_REF_PREFIX, keepRef, nameFromExtensionRef, originSection, SET_REF_PREFIX, setRef } from './refs.js';
import { parseRelease, releaseFilePath } from './release.js';
import type { PullProgress } from '../binding/pull.js';
import type { CallOptions, Repo } from '../binding/repo.js';
import type { Commit, QueryOp, QueryResult } from '../binding/read.js';
import { SerialQueue } from '../binding/signal.js';
import { validateExtension, type ValidationResult } from './validate.js';
import { directoryReader } from '../tree/directory.js';
import { type TreeReader } from '../tree/reader.js';

/** Where an installed extension came from: the builder that made it and its context. */
export interface ExtensionOrigin {
  /** Builder name (`directory`, `archive`, `remote`, or a registered one). */
  builder: string;
  /** What the builder needs to build it again (path, remote and ref, …). */
  context: BuilderContext;
}

/** An extension's state against a base. */
export type ExtensionState = 'compatible' | 'incompatible' | 'invalid';

/** One installed extension, as {@link ExtensionStore.list} reports it. */
export interface InstalledExtension {
  name: string;
  /** `sysext` or `confext`. */
  kind: 'sysext' | 'confext';
  /** The installed commit. */
  commit: string;
  /** `SYSEXT_VERSION_ID` / `CONFEXT_VERSION_ID`, else `VERSION_ID`, else the commit's version. */
  version: string | null;
  /** The extension-release fields. */
  release: Record<string, string>;
  /** Where it came from, or null if never recorded (installed by another tool). */
  origin: ExtensionOrigin | null;
  /** Commit time. */
  timestamp: Date;
  /** Total size of regular files, in bytes (recorded at install). */
  size: number | null;
  /** Against the base given to {@link ExtensionStore.list}: compatible or not, and why. */
  state?: ExtensionState;
  /** systemd's reason, when a base was given. */
  reason?: CompatibilityReason;
  /** True when the origin's tracking ref (remote installs) points at a newer commit. */
  outdated: boolean;
  /** Names of the OS deployment sets (osnames) that include this extension's commit. */
  activeIn: string[];
  /**
   * From an install only: what the repository mode could not store of the source tree (in a
   * bare-user-only repository owners, modes other than 0644/0755, and xattrs), path by path.
   */
  unrepresentable?: Array<{ path: string; lost: string }>;
}

/** Options for installs. */
export interface InstallOptions extends CallOptions {
  /** The extension's name; default: the name in its single release file. */
  name?: string;
  /** Replace an installed extension of the same name (its history is kept). Default false. */
  replace?: boolean;
  /** Commit subject. */
  subject?: string;
  /** Refuse warnings too (setuid files, content systemd ignores). Default false. */
  strict?: boolean;
  /** Accept content older than what is installed (see `BuildRequest.allowDowngrade`). Default false. */
  allowDowngrade?: boolean;
}

/** Result of {@link ExtensionStore.upgrade} for one extension. */
export interface UpgradeOutcome {
  name: string;
  /** What the builder said. */
  check: UpdateCheck;
  /** `updated`, `skipped` (none / unknown / warn without force), `vetoed`, or `failed`. */
  result: 'updated' | 'skipped' | 'vetoed' | 'failed';
  /** Commit before and after (same when not updated). */
  from: string;
  to: string;
  /** The error, when `failed`. */
  error?: Error;
}

const META_NAME = 'ostree-sysext.name';
const META_KIND = 'ostree-sysext.kind';
const META_ORIGIN = 'ostree-sysext.origin';
const META_SIZE = 'ostree-sysext.size';
/**
 * True for a ref whose last component is a libglnx temporary name (`tmp.` and six letters or
 * digits): killed between the link and the rename of an atomic ref replace, libostree leaves
 * one beside the real ref, and lists it as a ref.
 */
export function isStrayRef(ref: string): boolean {
  return /(^|\/)tmp\.[A-Za-z0-9]{6}$/.test(ref);
}

/** Key in an origin section marking a removal under way (its value: the removed commit). */
const REMOVING_KEY = 'removing';
/** How far back set histories are read for {@link ExtensionStore.keepSetExtensions}. */
const MAX_SET_HISTORY = 100_000;

function releasePaths(name: string): string[] {
  return [`/${releaseFilePath('sysext', name)}`, `/${releaseFilePath('confext', name)}`];
}

function versionOf(kind: 'sysext' | 'confext', release: Record<string, string>, commitVersion: string | null): string | null {
  const k = kind === 'sysext' ? 'SYSEXT_VERSION_ID' : 'CONFEXT_VERSION_ID';
  return release[k] ?? release.VERSION_ID ?? commitVersion;
}

function invalid(name: string, result: ValidationResult, strict: boolean): ExtensionError | null {
  const bad = result.problems.filter((p) => p.severity === 'error' || (strict && p.severity === 'warning'));
  if (bad.length === 0) return null;
  const list = bad.map((p) => `  - ${p.code}${p.path ? ` (${p.path})` : ''}: ${p.message}`).join('\n');
  return new ExtensionError('INVALID_EXTENSION', `${name} is not a valid extension:\n${list}`, {
    problems: bad.map((p) => ({ code: p.code, message: p.message, ...(p.path ? { path: p.path } : {}) })),
  });
}

/** The validated extension's name (validation reports a tree without a release file as an error). */
function nameOf(result: ValidationResult, fallback: string): string {
  if (!result.name) throw new ExtensionError('INVALID_EXTENSION', `${fallback}: cannot tell the extension's name (no release file)`);
  return result.name;
}

/** An origin from its config section, or null if unrecorded. */
function originFrom(section: Record<string, string> | undefined): ExtensionOrigin | null {
  if (!section?.builder) return null;
  let context: BuilderContext = {};
  try {
    const parsed: unknown = JSON.parse(section.context ?? '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) context = parsed as BuilderContext;
  } catch {
    // An unreadable context is reported as empty; upgrade() then reports the builder's error.
  }
  return { builder: section.builder, context };
}

/** What describing an extension reads: its commit, then its sysext and confext release files. */
function describeOps(name: string): QueryOp[] {
  const [sysPath, confPath] = releasePaths(name);
  return [
    { op: 'commit' },
    { op: 'read', path: sysPath!, optional: true, maxBytes: MAX_RELEASE_BYTES },
    { op: 'read', path: confPath!, optional: true, maxBytes: MAX_RELEASE_BYTES },
  ];
}

async function treeSize(reader: TreeReader, path = ''): Promise<number> {
  const entries = await reader.list(path);
  let total = 0;
  for (const e of entries ?? []) {
    if (e.type === 'file') total += e.size ?? 0;
    else if (e.type === 'dir') total += await treeSize(reader, path ? `${path}/${e.name}` : e.name);
  }
  return total;
}

/**
 * Installed extensions in a repository.
 *
 * @example
 * ```ts
 * const repo = await Repo.open('/ostree/repo');
 * const store = new ExtensionStore(repo);
 * await store.installFromDirectory('./build/my-tools');        // validated, then committed
 * const base = await baseFromDirectory('/');
 * for (const ext of await store.list({ base })) console.log(ext.name, ext.version, ext.state);
 * ```
 */
export class ExtensionStore {
  /** The repository. */
  readonly repo: Repo;
  readonly #builders = new Map<string, Builder>();
  readonly #writes = new SerialQueue();

  /** A store over `repo`, with the built-in `directory`, `archive` and `remote` builders registered. */
  constructor(repo: Repo) {
    this.repo = repo;
    this.registerBuilder(directoryBuilder);
    this.registerBuilder(archiveBuilder);
    this.registerBuilder(remoteBuilder);
  }

  /** Adds (or replaces) a builder, so {@link ExtensionStore.build} and `upgrade` can use it. */
  registerBuilder(builder: Builder): void {
    if (
      typeof builder !== 'object' ||
      builder === null ||
      typeof builder.name !== 'string' ||
      builder.name === '' ||
      typeof builder.checkUpdate !== 'function' ||
      typeof builder.build !== 'function'
    ) {
      throw new TypeError('a builder needs a name, checkUpdate() and build()');
    }
    this.#builders.set(builder.name, builder);
  }

  /** The registered builder of that name, or undefined. */
  builder(name: string): Builder | undefined {
    return this.#builders.get(name);
  }

  /** Validates and installs the extension tree in `dir`. */
  async installFromDirectory(dir: string, opts: InstallOptions = {}): Promise<InstalledExtension> {
    is.nonEmpty('dir', dir);
    return this.build('directory', { path: dir }, opts);
  }

  /** Validates and installs an extension from a tar archive (through libostree's libarchive import). */
  async installFromArchive(archive: string, opts: InstallOptions = {}): Promise<InstalledExtension> {
    is.nonEmpty('archive', archive);
    return this.build('archive', { path: archive }, opts);
  }

  /**
   * Pulls `ref` from the OSTree remote `remote` (signatures checked as the remote is
   * configured), validates it, and installs it; nothing points at the pulled commit as an
   * extension unless it is valid.
   * @example
   * ```ts
   * await repo.addRemote('vendor', { url: 'https://example.com/repo', gpgVerify: true });
   * await repo.importRemoteKeys('vendor', await readFile('vendor.gpg'));
   * await store.installFromRemote('vendor', 'extensions/x86_64/tools', { onProgress: (p) => console.log(p.status) });
   * ```
   */
  async installFromRemote(
    remote: string,
    ref: string,
    opts: InstallOptions & { onProgress?: (progress: PullProgress) => void } = {},
  ): Promise<InstalledExtension> {
    is.remoteName('remote', remote);
    is.refName('ref', ref);
    return this.build('remote', { remote, ref }, opts);
  }

  /**
   * Runs builder `builderName` with `context`, validates what it produced, and installs it;
   * the builder and its (updated) context are recorded as the extension's origin.
   */
  async build(
    builderName: string,
    context: BuilderContext,
    opts: InstallOptions & { onProgress?: (progress: PullProgress) => void } = {},
  ): Promise<InstalledExtension> {
    const builder = this.#builders.get(is.nonEmpty('builder', builderName));
    if (!builder) throw new ExtensionError('UNKNOWN_BUILDER', `no builder named '${builderName}' is registered`);
    is.options('context', context);
    const o = is.options<InstallOptions>('options', opts);
    const wanted = o.name === undefined ? undefined : is.nonEmpty('name', o.name);
    return this.#writes.run(async () => {
      const current = wanted === undefined ? null : await this.repo.resolve(extensionRef(wanted), { allowMissing: true });
      const out = await builder.build({
        name: wanted ?? '',
        context,
        repo: this.repo,
        current,
        ...(o.allowDowngrade ? { allowDowngrade: true } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        ...(typeof opts.onProgress === 'function' ? { onProgress: opts.onProgress } : {}),
      });
      return this.#install(builder.name, out, context, o);
    });
  }

  async #install(builderName: string, out: BuildOutput, context: BuilderContext, o: Partial<InstallOptions>): Promise<InstalledExtension> {
    const strict = is.bool('strict', o.strict, false);
    const recordedContext = out.context ?? context;
    if ('tree' in out) {
      // Validate the directory before anything is written.
      const result = await validateExtension(directoryReader(out.tree), { strict, ...(o.name === undefined ? {} : { name: o.name }) });
      const err = invalid(o.name ?? out.tree, result, strict);
      if (err) throw err;
      const name = nameOf(result, out.tree);
      await this.#checkReplace(name, o.replace);
      const size = await treeSize(directoryReader(out.tree));
      const origin: ExtensionOrigin = { builder: builderName, context: recordedContext };
      // Committed without a ref first, then what was committed is validated again: a tree
      // changed on disk between the check above and the commit is caught before it is installed.
      const previous = await this.repo.resolve(extensionRef(name), { allowMissing: true });
      const commit = await this.repo.commit({
        tree: out.tree,
        parent: previous,
        subject: o.subject ?? out.subject ?? `Install ${name}`,
        metadata: { [META_NAME]: name, [META_KIND]: result.kind, [META_ORIGIN]: JSON.stringify(origin), [META_SIZE]: size },
        ...(versionOf(result.kind, result.release, null) ? { version: versionOf(result.kind, result.release, null)! } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      const stored = await validateExtension(commitReader(this.repo, commit), { strict, name });
      const changed = invalid(name, stored, strict);
      if (changed) throw changed;
      if (nameOf(stored, name) !== name || stored.kind !== result.kind) {
        throw new ExtensionError(
          'INVALID_EXTENSION',
          `${out.tree} changed while it was installed (it is now ${stored.kind} ${nameOf(stored, name)}); nothing was installed`,
        );
      }
      // What the repository mode cannot keep (bare-user-only: owners, modes, xattrs) is reported.
      const lost = this.repo.mode === 'bare-user-only' ? await unrepresentable(out.tree, this.repo, commit) : [];
      await this.repo.setRef(extensionRef(name), commit);
      // The origin goes after the ref: recorded first, a kill before the commit would make the
      // next upgrade believe it was already built ("none") and never build it.
      await this.#writeOrigin(name, origin);
      const installed = await this.get(name);
      return lost.length > 0 ? { ...installed, unrepresentable: lost } : installed;
    }
    // Archives and pulled commits are validated in the repository, before any ref points at them.
    let commit: string;
    if ('archive' in out) {
      commit = await this.repo.transaction(async (tx) =>
        tx.commit({ archive: out.archive, subject: o.subject ?? out.subject ?? 'Import archive', parent: null }),
      );
    } else {
      commit = await this.repo.resolve(out.commit);
    }
    const reader = commitReader(this.repo, commit);
    const result = await validateExtension(reader, { strict, ...(o.name === undefined ? {} : { name: o.name }) });
    const err = invalid(o.name ?? builderName, result, strict);
    if (err) throw err;
    const name = nameOf(result, builderName);
    await this.#checkReplace(name, o.replace);
    const origin: ExtensionOrigin = { builder: builderName, context: recordedContext };
    if ('archive' in out) {
      // Re-commit with our metadata and the right parent; the content objects are shared.
      const size = await treeSize(reader);
      const previous = await this.repo.resolve(extensionRef(name), { allowMissing: true });
      const meta = await this.repo.loadCommit(commit);
      commit = await this.repo.transaction(async (tx) => {
        const version = versionOf(result.kind, result.release, null);
        const c = await tx.commit({
          fromCommit: commit,
          subject: meta.subject,
          parent: previous,
          metadata: { [META_NAME]: name, [META_KIND]: result.kind, [META_ORIGIN]: JSON.stringify(origin), [META_SIZE]: size },
          ...(version === null ? {} : { version }),
        });
        tx.setRef(extensionRef(name), c);
        return c;
      });
    } else {
      await this.repo.setRef(extensionRef(name), commit);
    }
    await this.#writeOrigin(name, origin);
    return this.get(name);
  }

  async #checkReplace(name: string, replace: boolean | undefined): Promise<void> {
    if (replace) return;
    const existing = await this.repo.resolve(extensionRef(name), { allowMissing: true });
    if (existing !== null) {
      throw new ExtensionError('ALREADY_INSTALLED', `${name} is already installed (commit ${existing.slice(0, 12)}); pass replace: true to update it`);
    }
  }

  async #writeOrigin(name: string, origin: ExtensionOrigin): Promise<void> {
    const section = originSection(name);
    await this.repo.setConfig(section, 'builder', origin.builder);
    await this.repo.setConfig(section, 'context', JSON.stringify(origin.context));
  }

  /**
   * The origin recorded in the installed commit (moved with its ref, atomically), else the
   * config's: after an interrupted install the two may differ, and the commit is what is installed.
   */
  async #installedOrigin(name: string, commit: string): Promise<ExtensionOrigin | null> {
    const recorded = this.origin(name);
    const meta = (await this.repo.loadCommit(commit)).metadata[META_ORIGIN];
    // Only for the same builder: a pulled commit's metadata is the vendor's, not ours.
    if (recorded && typeof meta === 'string') {
      try {
        const o = JSON.parse(meta) as { builder?: unknown; context?: unknown };
        if (o.builder === recorded.builder && o.context && typeof o.context === 'object' && !Array.isArray(o.context)) {
          return { builder: o.builder, context: o.context as BuilderContext };
        }
      } catch {
        // fall back to the config
      }
    }
    return recorded;
  }

  /** Where an installed extension came from, or null if unrecorded. */
  origin(name: string): ExtensionOrigin | null {
    return originFrom(this.repo.config()[originSection(name)]);
  }

  /**
   * The installed extensions' refs: name → commit. A ref libostree's atomic replace left
   * behind when killed (its `tmp.XXXXXX` link beside the real ref, see {@link isStrayRef}) is
   * not an extension.
   */
  async #extensionRefs(opts: CallOptions = {}): Promise<Array<{ name: string; commit: string }>> {
    const refs = await this.repo.listRefs({ prefix: EXTENSION_REF_PREFIX, remotes: false, ...opts });
    const out: Array<{ name: string; commit: string }> = [];
    for (const [ref, commit] of Object.entries(refs)) {
      const name = nameFromExtensionRef(ref);
      if (name !== null && !(await this.#isStrayExtensionRef(name, commit))) out.push({ name, commit });
    }
    return out;
  }

  /** A `tmp.XXXXXX` link with no origin of its own, to a commit installed under another name. */
  async #isStrayExtensionRef(name: string, commit: string): Promise<boolean> {
    if (!isStrayRef(extensionRef(name)) || this.repo.config()[originSection(name)]) return false;
    const meta = await this.repo.loadCommit(commit).then(
      (c) => c.metadata[META_NAME],
      () => undefined,
    );
    return meta !== name;
  }

  /**
   * Deletes the refs libostree's atomic ref replace leaves when the process is killed between
   * its link and its rename (`tmp.XXXXXX` beside the real ref): stray extension refs, and set
   * refs of such a name for an OS name not in `osnames`. Returns the deleted refs. Keep refs
   * are reconciled by {@link ExtensionStore.keepSetExtensions}.
   */
  async removeStrayRefs(opts: CallOptions & { osnames?: string[] } = {}): Promise<string[]> {
    const signal = opts.signal;
    const stray: string[] = [];
    for (const [ref, commit] of Object.entries(await this.repo.listRefs({ prefix: EXTENSION_REF_PREFIX, remotes: false, ...(signal ? { signal } : {}) }))) {
      const name = nameFromExtensionRef(ref);
      if (name !== null && (await this.#isStrayExtensionRef(name, commit))) stray.push(ref);
    }
    if (opts.osnames) {
      const known = new Set(opts.osnames.map((o) => setRef(o)));
      for (const ref of Object.keys(await this.repo.listRefs({ prefix: SET_REF_PREFIX, remotes: false, ...(signal ? { signal } : {}) }))) {
        if (isStrayRef(ref) && !known.has(ref)) stray.push(ref);
      }
    }
    if (stray.length > 0) await this.repo.transaction(async (tx) => stray.forEach((ref) => tx.setRef(ref, null)));
    return stray;
  }

  /** Names of installed extensions, sorted. */
  async names(opts: CallOptions = {}): Promise<string[]> {
    return (await this.#extensionRefs(opts)).map((e) => e.name).sort();
  }

  /** One installed extension; rejects with `NOT_INSTALLED` if absent. */
  async get(name: string, opts: { base?: Base; compatibility?: CompatibilityOptions } & CallOptions = {}): Promise<InstalledExtension> {
    is.nonEmpty('name', name);
    const commit = await this.repo.resolve(extensionRef(name), { allowMissing: true });
    if (commit === null) throw new ExtensionError('NOT_INSTALLED', `${name} is not installed`);
    const active = await this.#activeSets();
    return this.#describe(name, commit, active, this.repo.config(), opts);
  }

  /**
   * All installed extensions, with their state against `base` when given. Reads are batched:
   * one native call per extension.
   */
  async list(opts: { base?: Base; compatibility?: CompatibilityOptions } & CallOptions = {}): Promise<InstalledExtension[]> {
    const exts = await this.#extensionRefs();
    const active = await this.#activeSets();
    // One parse of the config for all extensions: it holds two keys per extension.
    const config = this.repo.config();
    // Every extension's commit and release file in a few native calls, not two per extension.
    const answers = await this.repo.queryMany(exts.map((e) => ({ rev: e.commit, ops: describeOps(e.name) })));
    const out = await Promise.all(exts.map((e, i) => this.#describe(e.name, e.commit, active, config, opts, answers[i]!.results)));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async #describe(
    name: string,
    commit: string,
    active: Map<string, Record<string, string>>,
    config: Record<string, Record<string, string>>,
    opts: { base?: Base; compatibility?: CompatibilityOptions },
    answer?: QueryResult[],
  ): Promise<InstalledExtension> {
    const results = answer ?? (await this.repo.query(commit, describeOps(name))).results;
    const meta = results[0] as Commit;
    const sys = results[1] as Buffer | null;
    const conf = results[2] as Buffer | null;
    const kind: 'sysext' | 'confext' = sys === null && conf !== null ? 'confext' : 'sysext';
    const data = sys ?? conf;
    const release = data === null ? {} : parseRelease(data).fields;
    const origin = originFrom(config[originSection(name)]);
    const info: InstalledExtension = {
      name,
      kind,
      commit,
      version: versionOf(kind, release, meta.version),
      release,
      origin,
      timestamp: meta.timestamp,
      size: typeof meta.metadata[META_SIZE] === 'number' ? (meta.metadata[META_SIZE] as number) : null,
      outdated: await this.#outdated(origin, commit, meta),
      activeIn: [...active.entries()].filter(([, exts]) => exts[name] === commit).map(([os]) => os),
    };
    if (opts.base) {
      if (data === null) {
        info.state = 'invalid';
      } else {
        const r = checkCompatibility(release, opts.base.osRelease, { kind, name, ...opts.compatibility });
        info.state = r.compatible ? 'compatible' : 'incompatible';
        info.reason = r.reason;
      }
    }
    return info;
  }

  async #outdated(origin: ExtensionOrigin | null, commit: string, meta: Commit): Promise<boolean> {
    if (origin?.builder !== 'remote') return false;
    const { remote, ref } = origin.context as { remote?: unknown; ref?: unknown };
    if (typeof remote !== 'string' || typeof ref !== 'string') return false;
    const tracking = await this.repo.resolve(`${remote}:${ref}`, { allowMissing: true }).catch(() => null);
    if (tracking === null || tracking === commit) return false;
    const t = await this.repo.loadCommit(tracking).catch(() => null);
    return t !== null && t.timestamp >= meta.timestamp;
  }

  /** Extensions of every deployment set: osname → { name: commit }. */
  async #activeSets(): Promise<Map<string, Record<string, string>>> {
    const refs = await this.repo.listRefs({ prefix: SET_REF_PREFIX, remotes: false });
    const out = new Map<string, Record<string, string>>();
    for (const [ref, commit] of Object.entries(refs)) {
      const osname = ref.slice(SET_REF_PREFIX.length + 1);
      out.set(osname, setExtensions((await this.repo.loadCommit(commit)).metadata));
    }
    return out;
  }

  /**
   * Removes an installed extension: its ref, its origin record, and (with `prune`, the
   * default) objects nothing else uses. Refused while an active set includes it, unless `force`.
   * Commits that any set names (current or in its history, every OS name) are never pruned
   * (see {@link ExtensionStore.keepSetExtensions}). Re-running it after an interruption
   * finishes the removal. Hosts serialise it with set changes (the sysroot lock, `Host.remove`).
   */
  async remove(name: string, opts: CallOptions & { force?: boolean; prune?: boolean } = {}): Promise<void> {
    is.nonEmpty('name', name);
    const force = is.bool('force', opts.force, false);
    const prune = is.bool('prune', opts.prune, true);
    const signal = opts.signal;
    await this.#writes.run(async () => {
      const section = originSection(name);
      const commit = await this.repo.resolve(extensionRef(name), { allowMissing: true });
      if (commit === null) {
        // An interrupted removal left its mark in the origin section: finish it.
        if (this.repo.config()[section]?.[REMOVING_KEY] === undefined) throw new ExtensionError('NOT_INSTALLED', `${name} is not installed`);
      } else {
        const activeIn = [...(await this.#activeSets()).entries()].filter(([, e]) => name in e).map(([os]) => os);
        if (activeIn.length > 0 && !force) {
          throw new ExtensionError('IN_ACTIVE_SET', `${name} is part of the active set of ${activeIn.join(', ')}; undeploy it first or pass force: true`);
        }
        // The mark first, then the ref; the origin goes last, so a re-run knows what to finish.
        await this.repo.setConfig(section, REMOVING_KEY, commit);
        await this.repo.setRef(extensionRef(name), null);
      }
      if (prune) {
        await this.keepSetExtensions({ ...(signal ? { signal } : {}) });
        await this.repo.prune({ refsOnly: true, ...(signal ? { signal } : {}) });
      }
      await this.repo.deleteConfig(section).catch((e: unknown) => {
        if (!isOstreeError(e)) throw e;
      });
    });
  }

  /**
   * Makes every extension commit that a set names (the current set or one in its history, of
   * every OS name) a root for prune, with one keep ref each (`ostree-sysext/keep/<commit>`),
   * and deletes keep refs no set names any more. Idempotent; run before any prune.
   */
  async keepSetExtensions(opts: CallOptions = {}): Promise<{ kept: number; added: number; removed: number }> {
    const signal = opts.signal;
    const named = new Set<string>();
    const sets = await this.repo.listRefs({ prefix: SET_REF_PREFIX, remotes: false, ...(signal ? { signal } : {}) });
    for (const head of Object.values(sets)) {
      const { commits } = await this.repo.log(head, { maxCount: MAX_SET_HISTORY, ...(signal ? { signal } : {}) });
      for (const c of commits) for (const v of Object.values(setExtensions(c.metadata))) if (is.isChecksum(v)) named.add(v);
    }
    const existing = await this.repo.listRefs({ prefix: KEEP_REF_PREFIX, remotes: false, ...(signal ? { signal } : {}) });
    const add: string[] = [];
    for (const c of named) {
      if (existing[keepRef(c)] === c) continue;
      // A commit already lost (pruned by an older version) cannot be kept; it is skipped.
      if (
        await this.repo.loadCommit(c).then(
          () => true,
          () => false,
        )
      )
        add.push(c);
    }
    const stale = Object.keys(existing).filter((ref) => !named.has(ref.slice(KEEP_REF_PREFIX.length + 1)));
    if (add.length > 0 || stale.length > 0) {
      await this.repo.transaction(async (tx) => {
        for (const c of add) tx.setRef(keepRef(c), c);
        for (const ref of stale) tx.setRef(ref, null);
      });
    }
    return { kept: named.size, added: add.length, removed: stale.length };
  }

  /** The installed extension's commits, newest first. */
  async history(name: string, opts: CallOptions & { maxCount?: number } = {}): Promise<Commit[]> {
    is.nonEmpty('name', name);
    const commit = await this.repo.resolve(extensionRef(name), { allowMissing: true });
    if (commit === null) throw new ExtensionError('NOT_INSTALLED', `${name} is not installed`);
    return (await this.repo.log(commit, opts)).commits;
  }

  /** Points the extension back at `commit`, an earlier commit of its history (validated again). */
  async reinstall(name: string, commit: string, opts: CallOptions = {}): Promise<InstalledExtension> {
    is.nonEmpty('name', name);
    is.checksum('commit', commit);
    return this.#writes.run(async () => {
      const history = await this.history(name, opts);
      if (!history.some((c) => c.checksum === commit)) {
        throw new ExtensionError('NOT_IN_HISTORY', `${commit.slice(0, 12)} is not in the history of ${name}`);
      }
      const result = await validateExtension(commitReader(this.repo, commit), { name });
      const err = invalid(name, result, false);
      if (err) throw err;
      await this.repo.setRef(extensionRef(name), commit);
      return this.get(name);
    });
  }

  /** A reader over an installed extension's current commit. */
  async reader(name: string): Promise<TreeReader & { readonly commit: string }> {
    const commit = await this.repo.resolve(extensionRef(is.nonEmpty('name', name)), { allowMissing: true });
    if (commit === null) throw new ExtensionError('NOT_INSTALLED', `${name} is not installed`);
    return commitReader(this.repo, commit);
  }

  /**
   * Asks each installed extension's builder for updates and applies them: `available`
   * always, `warn` only with `force`, `veto` never. One outcome per extension; one failure
   * does not stop the others.
   */
  async upgrade(opts: CallOptions & { force?: boolean; names?: string[]; allowDowngrade?: boolean } = {}): Promise<UpgradeOutcome[]> {
    const force = is.bool('force', opts.force, false);
    const names = opts.names === undefined ? await this.names() : is.stringArray('names', opts.names);
    const outcomes: UpgradeOutcome[] = [];
    for (const name of names) {
      const from = await this.repo.resolve(extensionRef(name), { allowMissing: true });
      if (from === null) throw new ExtensionError('NOT_INSTALLED', `${name} is not installed`);
      const origin = await this.#installedOrigin(name, from);
      const builder = origin ? this.#builders.get(origin.builder) : undefined;
      if (!origin || !builder) {
        const message = origin ? `builder '${origin.builder}' is not registered` : 'no origin recorded';
        outcomes.push({ name, check: { status: 'unknown', message }, result: 'skipped', from, to: from });
        continue;
      }
      const req = {
        name,
        context: origin.context,
        repo: this.repo,
        current: from,
        ...(opts.allowDowngrade ? { allowDowngrade: true } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      };
      let check: UpdateCheck;
      try {
        check = await builder.checkUpdate(req);
      } catch (e) {
        outcomes.push({ name, check: { status: 'unknown', message: (e as Error).message }, result: 'failed', from, to: from, error: e as Error });
        continue;
      }
      if (check.status === 'veto') {
        outcomes.push({ name, check, result: 'vetoed', from, to: from });
        continue;
      }
      if (check.status === 'none' || check.status === 'unknown' || (check.status === 'warn' && !force)) {
        outcomes.push({ name, check, result: 'skipped', from, to: from });
        continue;
      }
      try {
        const info = await this.#writes.run(async () =>
          this.#install(builder.name, await builder.build(req), origin.context, { name, replace: true, ...(opts.signal ? { signal: opts.signal } : {}) }),
        );
        outcomes.push({ name, check, result: 'updated', from, to: info.commit });
      } catch (e) {
        outcomes.push({ name, check, result: 'failed', from, to: from, error: e as Error });
      }
    }
    return outcomes;
  }
}
