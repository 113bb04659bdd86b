/**
 * `DeploymentSet`: the extensions chosen for one base, voted on by plugins, with the state
 * files plugins generated for exactly that combination, committed on `ostree-sysext/set/<osname>`
 * so the ref's parent chain is the set's history.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as is from '../binding/args.js';
import type { Base } from '../extension/base.js';
import { commitReader } from '../tree/commit.js';
import { sortExtensionNames, systemdOption, type SystemdInfo } from '../extension/compat.js';
import { ExtensionError, MAX_RELEASE_BYTES } from '../extension/errors.js';
import { extensionRef, setRef } from '../extension/refs.js';
import { fileConflictPlugin, overlayView } from './overlay.js';
import { loadPluginDirectory, releaseCompatibilityPlugin, runDeployFinish, runVote } from './plugins.js';
import { type Plugin, type SetMember, type VoteReport } from './plugin.js';
import { parseRelease, releaseFilePath } from '../extension/release.js';
import type { CallOptions, Repo } from '../binding/repo.js';
import type { Commit } from '../binding/read.js';
import { META_SET_BASE, META_SET_EXTENSIONS, META_SET_ROLLBACK_OF, META_SET_VOTES, setExtensions } from '../extension/set-format.js';

/** Where a base keeps its plugins, relative to its root. */
export const BASE_PLUGIN_DIR = 'usr/lib/ostree-sysext/plugins';

/** A committed set, as read back from the repository. */
export interface SetRecord {
  /** The set commit. */
  commit: string;
  osname: string;
  /** The base it was made for (commit checksum or directory). */
  base: string;
  /** name → extension commit. */
  extensions: Record<string, string>;
  /** Extension names in systemd's overlay order. */
  order: string[];
  timestamp: Date;
  subject: string;
  /** The previous set, or null. */
  parent: string | null;
  /** The vote that let it in. */
  votes: VoteReport | null;
  /** For a rollback commit: the earlier set it made current again; else null. */
  rollbackOf: string | null;
}

/** Options of a {@link DeploymentSet}. */
export interface DeploymentSetOptions {
  /** The repository holding the extensions (and the set refs): an {@link ExtensionStore}'s `repo`. */
  repo: Repo;
  /** The OS name (one set ref per OS name). */
  osname: string;
  /** The base the set is for. */
  base: Base;
  /** Plugins registered in-process, run after the built-ins and the base's plugins. */
  plugins?: Plugin[];
  /** Run the built-in release-compatibility and file-conflict plugins. Default true. */
  builtinPlugins?: boolean;
  /** Load plugins from the base's `usr/lib/ostree-sysext/plugins`. Default true. */
  basePlugins?: boolean;
  /** systemd version whose rules apply, as upstream releases them. Default 252. */
  systemdVersion?: number;
  /** The target systemd as {@link detectSystemd} describes it (backports included); wins over `systemdVersion`. */
  systemd?: SystemdInfo;
  /** Time limit per plugin call (ms). */
  pluginTimeoutMs?: number;
}

/** Result of {@link DeploymentSet.commit}. */
export interface SetCommitResult {
  record: SetRecord;
  report: VoteReport;
}

/** Raised when plugins refuse a set; `report` holds every vote. */
export class SetRefusedError extends ExtensionError {
  /** The vote round that refused the set. */
  readonly report: VoteReport;
  /** Builds the error from the refusing vote round. */
  constructor(report: VoteReport) {
    const reasons = report.votes.filter((v) => v.verdict !== 'approve').map((v) => `${v.plugin} ${v.verdict}: ${v.message}`);
    const hint = report.verdict === 'warn' ? ' (warnings pass with force)' : ' (a veto cannot be forced)';
    super('SET_REFUSED', `the set was refused${hint}:\n  - ${reasons.join('\n  - ')}`);
    this.report = report;
  }
}

function recordFrom(osname: string, c: Commit): SetRecord {
  const exts = setExtensions(c.metadata);
  let votes: VoteReport | null = null;
  try {
    const raw = c.metadata[META_SET_VOTES];
    if (typeof raw === 'string') votes = JSON.parse(raw) as VoteReport;
  } catch {
    votes = null;
  }
  return {
    commit: c.checksum,
    osname,
    base: String(c.metadata[META_SET_BASE] ?? ''),
    extensions: exts,
    order: sortExtensionNames(Object.keys(exts)),
    timestamp: c.timestamp,
    subject: c.subject,
    parent: c.parent,
    votes,
    rollbackOf: typeof c.metadata[META_SET_ROLLBACK_OF] === 'string' ? (c.metadata[META_SET_ROLLBACK_OF] as string) : null,
  };
}

/** The set ref's commits for an OS name, newest first (none when no set was ever committed). */
async function historyCommits(repo: Repo, osname: string, opts: CallOptions & { maxCount?: number } = {}): Promise<Commit[]> {
  const commit = await repo.resolve(setRef(is.nonEmpty('osname', osname)), { allowMissing: true });
  return commit === null ? [] : (await repo.log(commit, opts)).commits;
}

/**
 * The extensions chosen for one base.
 *
 * @example
 * ```ts
 * const set = await DeploymentSet.fromCurrent({ repo: store.repo, osname: 'debian', base });
 * set.add('tools');
 * const { record, report } = await set.commit();   // plugins vote; state files generated
 * console.log(report.votes.map((v) => `${v.plugin}: ${v.verdict}`));
 * ```
 */
export class DeploymentSet {
  readonly #opts: DeploymentSetOptions;
  readonly #systemd: SystemdInfo;
  readonly #selection = new Map<string, string | null>();

  /** An empty set for `opts.base`. */
  constructor(opts: DeploymentSetOptions) {
    const o = is.options<DeploymentSetOptions>('options', opts);
    if (!o.repo || !o.base) throw new TypeError('repo and base are required');
    is.nonEmpty('osname', o.osname);
    this.#systemd = systemdOption(o.systemd, o.systemdVersion);
    this.#opts = opts;
  }

  /** A set starting from the OS name's current set (its extensions, pinned to their commits). */
  static async fromCurrent(opts: DeploymentSetOptions): Promise<DeploymentSet> {
    return DeploymentSet.fromRecord(opts, await DeploymentSet.current(opts.repo, opts.osname));
  }

  /**
   * A set starting from a set record already read (its extensions, pinned to their commits),
   * or an empty one for null: {@link DeploymentSet.fromCurrent} without reading the set again.
   */
  static fromRecord(opts: DeploymentSetOptions, record: SetRecord | null): DeploymentSet {
    const set = new DeploymentSet(opts);
    for (const [name, commit] of Object.entries(record?.extensions ?? {})) set.#selection.set(name, commit);
    return set;
  }

  /** The current set of an OS name, or null if none was ever committed. */
  static async current(repo: Repo, osname: string): Promise<SetRecord | null> {
    const commit = await repo.resolve(setRef(is.nonEmpty('osname', osname)), { allowMissing: true });
    return commit === null ? null : recordFrom(osname, await repo.loadCommit(commit));
  }

  /** Reads any set commit. */
  static async load(repo: Repo, osname: string, commit: string): Promise<SetRecord> {
    return recordFrom(osname, await repo.loadCommit(is.checksum('commit', commit)));
  }

  /** The set's history for an OS name, newest first. */
  static async history(repo: Repo, osname: string, opts: CallOptions & { maxCount?: number } = {}): Promise<SetRecord[]> {
    return (await historyCommits(repo, osname, opts)).map((c) => recordFrom(osname, c));
  }

  /**
   * Makes an earlier set current again, as a new commit on top of the history (so the
   * rollback itself can be rolled back). Its state files are reused as they were. Rolling back
   * to `to` when the current set already is `to` (or a rollback to it) commits nothing and
   * returns the current set, so a repeated rollback converges.
   */
  static async rollback(repo: Repo, osname: string, to?: string): Promise<SetRecord> {
    const wanted = to === undefined ? undefined : is.checksum('to', to);
    const commits = await historyCommits(repo, osname);
    const history = commits.map((c) => recordFrom(osname, c));
    if (history.length === 0) throw new ExtensionError('NOT_INSTALLED', `no set exists for ${osname}`);
    const head = history[0]!;
    if (wanted !== undefined && (head.commit === wanted || head.rollbackOf === wanted)) return head;
    const target = wanted === undefined ? history[1] : history.find((r) => r.commit === wanted);
    if (!target) {
      throw new ExtensionError(
        'NOT_IN_HISTORY',
        to === undefined ? `the set of ${osname} has no earlier state` : `${to.slice(0, 12)} is not in the set history of ${osname}`,
      );
    }
    const meta = commits[history.indexOf(target)]!;
    const commit = await repo.commit({
      fromCommit: target.commit,
      ref: setRef(osname),
      subject: `Roll back to ${target.commit.slice(0, 12)}`,
      metadata: { ...(meta.metadata as Record<string, never>), [META_SET_ROLLBACK_OF]: target.commit },
    });
    return DeploymentSet.load(repo, osname, commit);
  }

  /** Names selected, in systemd's overlay order. */
  get names(): string[] {
    return sortExtensionNames(this.#selection.keys());
  }

  /** Selects an installed extension (its current commit, or a given one). */
  add(name: string, commit?: string): this {
    is.nonEmpty('name', name);
    this.#selection.set(name, commit === undefined ? null : is.checksum('commit', commit));
    return this;
  }

  /** Deselects an extension. */
  remove(name: string): this {
    if (!this.#selection.delete(is.nonEmpty('name', name))) throw new ExtensionError('NOT_INSTALLED', `${name} is not in the set`);
    return this;
  }

  /** The selected extensions as plugins see them, in overlay order. */
  async members(): Promise<SetMember[]> {
    const repo = this.#opts.repo;
    const out: SetMember[] = [];
    for (const name of this.names) {
      const pinned = this.#selection.get(name) ?? null;
      const commit = pinned ?? (await repo.resolve(extensionRef(name), { allowMissing: true }));
      if (commit === null) throw new ExtensionError('NOT_INSTALLED', `${name} is not installed`);
      const { results } = await repo.query(commit, [
        { op: 'read', path: `/${releaseFilePath('sysext', name)}`, optional: true, maxBytes: MAX_RELEASE_BYTES },
        { op: 'read', path: `/${releaseFilePath('confext', name)}`, optional: true, maxBytes: MAX_RELEASE_BYTES },
      ]);
      const sys = results[0] as Buffer | null;
      const conf = results[1] as Buffer | null;
      const data = sys ?? conf;
      out.push({
        name,
        commit,
        kind: sys === null && conf !== null ? 'confext' : 'sysext',
        release: data === null ? {} : parseRelease(data).fields,
        reader: commitReader(repo, commit),
        repo,
      });
    }
    return out;
  }

  async #plugins(): Promise<{ plugins: Plugin[]; cleanup: () => Promise<void> }> {
    const o = this.#opts;
    const plugins: Plugin[] = [];
    let cleanup = async () => {};
    if (o.builtinPlugins ?? true) plugins.push(releaseCompatibilityPlugin, fileConflictPlugin);
    if (o.basePlugins ?? true) {
      const src = o.base.source;
      if (src.type === 'directory') plugins.push(...(await loadPluginDirectory(join(src.path, BASE_PLUGIN_DIR))));
      else if (src.type === 'deployment') plugins.push(...(await loadPluginDirectory(join(src.sysroot.deploymentPath(src.deployment), BASE_PLUGIN_DIR))));
      else if ((await o.base.reader.stat(BASE_PLUGIN_DIR))?.type === 'dir') {
        // A commit base: check its plugin directory out to run it.
        const dir = await mkdtemp(join(tmpdir(), 'ostree-sysext-plugins-'));
        cleanup = () => rm(dir, { recursive: true, force: true });
        await src.repo.checkout(src.commit, join(dir, 'p'), { subpath: `/${BASE_PLUGIN_DIR}` });
        plugins.push(...(await loadPluginDirectory(join(dir, 'p'))));
      }
    }
    plugins.push(...(o.plugins ?? []));
    return { plugins, cleanup };
  }

  /** Runs the vote round on the current selection without committing anything. */
  async vote(opts: CallOptions & { force?: boolean } = {}): Promise<VoteReport> {
    const { plugins, cleanup } = await this.#plugins();
    try {
      return await runVote(plugins, await this.#context(opts.signal), this.#voteOptions(opts.force));
    } finally {
      await cleanup();
    }
  }

  #voteOptions(force: boolean | undefined): { force: boolean; timeoutMs?: number } {
    return { force: force ?? false, ...(this.#opts.pluginTimeoutMs === undefined ? {} : { timeoutMs: this.#opts.pluginTimeoutMs }) };
  }

  async #context(signal?: AbortSignal) {
    return {
      osname: this.#opts.osname,
      base: this.#opts.base,
      repo: this.#opts.repo,
      extensions: await this.members(),
      systemdVersion: this.#systemd.version,
      systemd: this.#systemd,
      ...(signal ? { signal } : {}),
    };
  }

  /**
   * Votes, lets plugins write the set's state files, and commits the set on its OS name's
   * ref (parent: the previous set). Rejects with {@link SetRefusedError} when plugins refuse;
   * then nothing is written.
   */
  async commit(opts: CallOptions & { force?: boolean; subject?: string } = {}): Promise<SetCommitResult> {
    const force = is.bool('force', opts.force, false);
    const { plugins, cleanup } = await this.#plugins();
    const work = await mkdtemp(join(tmpdir(), `ostree-sysext-set-${randomBytes(3).toString('hex')}-`));
    try {
      const ctx = await this.#context(opts.signal);
      const report = await runVote(plugins, ctx, this.#voteOptions(force));
      if (!report.accepted) throw new SetRefusedError(report);
      const stateDir = join(work, 'state');
      await mkdir(stateDir, { recursive: true });
      const merged = await overlayView(this.#opts.base, ctx.extensions, { repo: this.#opts.repo, systemd: this.#systemd });
      try {
        await runDeployFinish(plugins, { ...ctx, merged, stateDir }, this.#opts.pluginTimeoutMs === undefined ? {} : { timeoutMs: this.#opts.pluginTimeoutMs });
      } finally {
        merged.close();
      }
      const extensions = Object.fromEntries(ctx.extensions.map((m) => [m.name, m.commit]));
      const repo = this.#opts.repo;
      const commit = await repo.commit({
        tree: work,
        ref: setRef(this.#opts.osname),
        subject: opts.subject ?? `Set for ${this.#opts.osname}: ${this.names.join(', ') || '(empty)'}`,
        metadata: {
          [META_SET_EXTENSIONS]: extensions,
          [META_SET_BASE]: this.#opts.base.id,
          [META_SET_VOTES]: JSON.stringify(report),
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return { record: await DeploymentSet.load(this.#opts.repo, this.#opts.osname, commit), report };
    } finally {
      await rm(work, { recursive: true, force: true });
      await cleanup();
    }
  }
}
