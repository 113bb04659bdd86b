/**
 * The merged view: what systemd-sysext's overlay shows for a base and its extensions. One
 * engine (native, overlayfs' rules for read-only lower layers) computes it; the offline merge,
 * the plugins' view and the file-conflict check all read it from here.
 *
 * The rules, as systemd applies them (verified against the real systemd-sysext 252, 254, 257, 262):
 * - each hierarchy (`usr`, `opt`; `etc` for confexts) is chased inside the base and inside
 *   each extension (symlinks followed within that root); the overlay lands on the resolved
 *   path, so a base `opt -> var/opt` gets its merged tree at `var/opt`;
 * - a hierarchy the base lacks is created (with missing parents) unless that needs an entry in
 *   an immutable root, as an OSTree deployment's is; then it is skipped;
 * - an extension whose hierarchy is absent or empty does not take part in it; a hierarchy no
 *   extension takes part in is not mounted at all;
 * - the topmost layer is systemd's own: the mounted hierarchy root shows owner 0:0, no xattrs
 *   and mode 0755 (252–255), or from 256 the host hierarchy's permission bits (`st_mode &
 *   0777`; 0755 where the base has none) — {@link SystemdInfo.hostHierarchyMode};
 * - for every other path the topmost layer with an entry decides its type; directories merge
 *   down to the first non-directory or opaque directory (`trusted.overlay.opaque=y`); a
 *   whiteout (char 0:0) hides the path; a merged directory's metadata is the topmost's; the
 *   `trusted.overlay.*` xattrs are never shown; symlinks are entries, never followed.
 * @module
 */
import * as is from './args.js';
import { compareVersions, systemdOption, type SystemdInfo } from './compat.js';
import type { Base } from './base.js';
import { native } from './native.js';
import type { Repo } from './repo.js';
import { cancellable } from './signal.js';
import type { Plugin } from './plugins.js';
import type { TreeEntry, TreeReader } from './validate.js';

/** The hierarchies systemd merges for each kind (252: /usr and /opt; /etc for confexts). */
export const HIERARCHIES = { sysext: ['usr', 'opt'], confext: ['etc'] } as const satisfies Record<'sysext' | 'confext', readonly string[]>;

/**
 * The hierarchies systemd merges for an extension of `kind`.
 * @example
 * ```ts
 * mergedHierarchies('sysext'); // ['usr', 'opt']
 * ```
 */
export function mergedHierarchies(kind: 'sysext' | 'confext'): string[] {
  return [...HIERARCHIES[kind]];
}

/** An entry of the merged view: a {@link TreeEntry} plus owner and the layer it comes from. */
export interface OverlayEntry extends TreeEntry {
  uid: number;
  gid: number;
  /** `base`, an extension's name, or `systemd-sysext` for a hierarchy root systemd makes. */
  layer: string;
  /** The OSTree content (or dirtree) checksum, when the layer is a commit. */
  checksum?: string;
  /** How many extended attributes it has (from {@link Overlay.walk} with `xattrCount`). */
  xattrCount?: number;
}

/** How a path is provided differently by several layers. */
export type OverlayConflictKind =
  /** Files or symlinks of the same type with different content, mode or target. */
  | 'content'
  /** A type replacement: a file or symlink over a directory, a directory over a file, … */
  | 'type'
  /** A whiteout in an extension hides what is below. */
  | 'whiteout'
  /** An opaque directory hides the contents of the directories below. */
  | 'opaque'
  /** Directories merge, but the topmost's mode or owner replaces the one below. */
  | 'directory-metadata';

/** One path that several layers provide, as {@link Overlay.conflicts} reports it. */
export interface OverlayConflict {
  /** Path relative to the root. */
  path: string;
  kind: OverlayConflictKind;
  /** The layers providing it, bottom first (`base` for the base). */
  providers: string[];
  /** The type each provider has there (`file`, `dir`, `symlink`, `whiteout`, `special`). */
  types: string[];
  /** The layer whose entry systemd shows (the topmost). */
  winner: string;
}

/** One extension layer of an {@link Overlay}. */
export interface OverlayExtension {
  name: string;
  /** Its commit, in the overlay's repository. */
  commit: string;
  kind: 'sysext' | 'confext';
}

/** Options for {@link Overlay.open}. */
export interface OverlayOptions {
  /** The repository holding the extensions (default: a commit base's repository). */
  repo?: Repo;
  /** Where confext content goes: `etc` (default), or `usr/etc` for an OSTree commit base. */
  confextTarget?: 'etc' | 'usr/etc';
  /**
   * Whether a hierarchy the base lacks is created, as systemd does on a writable root.
   * Default: what systemd would do — not when the base directory's root is immutable
   * (`chattr +i`, as an OSTree deployment's is), else yes (a commit base counts as writable).
   */
  createMissingHierarchies?: boolean;
  /** The systemd version whose overlay is shown (default 252), as upstream releases it. */
  systemdVersion?: number;
  /** The target systemd as {@link detectSystemd} describes it; wins over `systemdVersion`. */
  systemd?: SystemdInfo;
}

/** A hierarchy an extension does not take part in, and why. */
export interface SkippedHierarchy {
  extension: string;
  hierarchy: string;
  reason: string;
}

/** What a write of the merged view did. */
export interface OverlayWriteStats {
  files: number;
  dirs: number;
  symlinks: number;
  /** Directories taken whole from one layer (by checksum, or by one libostree checkout). */
  reused: number;
  checkouts: number;
  /** Paths whose owner, xattrs or type this process or repository could not reproduce (the first 1,000). */
  unrepresentable: string[];
}

interface NativeOverlay {
  query(ops: Array<{ op: string; path: string; maxBytes?: number }>, c?: unknown): Promise<unknown[]>;
  conflicts(c?: unknown): Promise<OverlayConflict[]>;
  mounts(
    c?: unknown,
  ): Promise<{ mounts: Record<string, string[]>; skipped: Array<{ layer: string; hierarchy: string; reason: string }>; createMissing: boolean }>;
  writeDirectory(dest: string, opts: { mode?: 'none' | 'user' }, c?: unknown): Promise<OverlayWriteStats>;
  writeTree(c?: unknown): Promise<{ tree: string; meta: string; stats: OverlayWriteStats }>;
  linkCheckout(dest: string, opts: { mode: 'none' | 'user'; requireLinks: boolean }, c?: unknown): Promise<OverlayWriteStats>;
  close(): void;
}

type NativeEntry = Omit<OverlayEntry, 'size'> & { size: number; mode: number };

function toEntry(e: NativeEntry): OverlayEntry {
  const out: OverlayEntry = { name: e.name, path: e.path, type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, layer: e.layer };
  if (e.type === 'file') out.size = e.size;
  if (e.target !== undefined) out.target = e.target;
  if (e.checksum !== undefined) out.checksum = e.checksum;
  if (e.xattrCount !== undefined) out.xattrCount = e.xattrCount;
  return out;
}

function treePath(path: string): string {
  if (typeof path !== 'string') throw new TypeError(`tree path must be a string, got ${typeof path}`);
  if (path.includes('\0')) throw new RangeError(`tree path contains NUL: ${JSON.stringify(path)}`);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new RangeError(`tree path must not contain '..': ${JSON.stringify(path)}`);
  return parts.join('/');
}

/**
 * The merged view of a base and extensions, as systemd-sysext's overlay shows it. It reads
 * like a {@link TreeReader} (no symlink is followed, also not in intermediate components) and
 * reports conflicts; `mergeOffline` writes it out. Close it when done.
 * @example
 * ```ts
 * const view = await Overlay.open(base, [{ name: 'tools', commit, kind: 'sysext' }], { repo });
 * try {
 *   console.log(await view.stat('usr/bin/htop'));
 *   for (const c of await view.conflicts()) console.log(c.kind, c.path, c.winner);
 * } finally {
 *   view.close();
 * }
 * ```
 */
export class Overlay implements TreeReader {
  readonly #n: NativeOverlay;
  /** @internal */
  readonly repo: Repo | undefined;

  private constructor(n: NativeOverlay, repo: Repo | undefined) {
    this.#n = n;
    this.repo = repo;
  }

  /** Opens the merged view of `base` with `extensions` layered in the order given (bottom first). */
  static async open(base: Base, extensions: readonly OverlayExtension[], opts: OverlayOptions = {}): Promise<Overlay> {
    const o = is.options<OverlayOptions>('options', opts);
    const repo = o.repo ?? (base.source.type === 'commit' ? base.source.repo : undefined);
    if (extensions.length > 0 && repo === undefined) throw new TypeError('the extensions need a repository: give options.repo');
    if (base.source.type === 'commit' && repo !== undefined && base.source.repo.path !== repo.path) {
      throw new TypeError('a commit base must be in the same repository as the extensions');
    }
    const confextTarget = is.oneOf('confextTarget', o.confextTarget ?? 'etc', ['etc', 'usr/etc'] as const);
    const layers: Array<Record<string, unknown>> = [];
    if (base.source.type === 'commit') layers.push({ name: 'base', commit: base.source.commit });
    else if (base.source.type === 'directory') layers.push({ name: 'base', path: base.source.path });
    else layers.push({ name: 'base', path: base.source.sysroot.deploymentPath(base.source.deployment) });
    for (const [i, e] of extensions.entries()) {
      is.nonEmpty(`extensions[${i}].name`, e.name);
      is.checksum(`extensions[${i}].commit`, e.commit);
      is.oneOf(`extensions[${i}].kind`, e.kind, ['sysext', 'confext'] as const);
      const hierarchies = mergedHierarchies(e.kind).map((h) => (h === 'etc' && confextTarget === 'usr/etc' ? 'etc:usr/etc' : h));
      layers.push({ name: e.name, commit: e.commit, hierarchies });
    }
    // Default: what systemd would do, i.e. create it unless the base's root is immutable
    // (detected natively for a directory or deployment base; a commit is taken as writable).
    const createMissing = o.createMissingHierarchies === undefined ? undefined : is.bool('createMissingHierarchies', o.createMissingHierarchies, true);
    const { hostHierarchyMode } = systemdOption(o.systemd, o.systemdVersion);
    type Ctor = new (repo: unknown, layers: unknown[], opts: { createMissing?: boolean; hostHierarchyMode: boolean }) => NativeOverlay;
    const Ctor = (native() as unknown as { Overlay: Ctor }).Overlay;
    return new Overlay(new Ctor(repo?._native ?? null, layers, { ...(createMissing === undefined ? {} : { createMissing }), hostHierarchyMode }), repo);
  }

  /**
   * @internal A view of one tree alone (a commit in `repo`, or a directory): the engine's
   * validated, symlink-free reads, and {@link Overlay.walk} in one call.
   */
  static tree(source: { repo: Repo; commit: string } | { path: string }, opts: { raw?: boolean } = {}): Overlay {
    type Ctor = new (repo: unknown, layers: unknown[], opts: { createMissing?: boolean; raw?: boolean }) => NativeOverlay;
    const Ctor = (native() as unknown as { Overlay: Ctor }).Overlay;
    const o = { createMissing: false, raw: opts.raw === true };
    if ('path' in source) return new Overlay(new Ctor(null, [{ name: 'base', path: source.path }], o), undefined);
    return new Overlay(new Ctor(source.repo._native, [{ name: 'base', commit: is.checksum('commit', source.commit) }], o), source.repo);
  }

  /**
   * @internal Whether systemd could create a missing hierarchy in the directory `root`: not when
   * the root is immutable (`chattr +i`, as an OSTree deployment's is).
   */
  static async createsMissingHierarchies(root: string): Promise<boolean> {
    type Ctor = new (repo: unknown, layers: unknown[], opts: object) => NativeOverlay;
    const Ctor = (native() as unknown as { Overlay: Ctor }).Overlay;
    const n = new Ctor(null, [{ name: 'base', path: root }], {});
    try {
      return (await cancellable('merged view', undefined, (c) => n.mounts(c))).createMissing;
    } finally {
      n.close();
    }
  }

  /** @internal A hardlink checkout of a one-commit raw view into the new directory `dest`. */
  linkCheckout(dest: string, opts: { mode: 'none' | 'user'; requireLinks: boolean; signal?: AbortSignal }): Promise<OverlayWriteStats> {
    return cancellable(`check out to ${dest}`, opts.signal, (c) => this.#n.linkCheckout(dest, { mode: opts.mode, requireLinks: opts.requireLinks }, c));
  }

  async #query(op: string, path: string, maxBytes?: number, xattrs = false): Promise<unknown> {
    const p = treePath(path);
    const ops = [{ op, path: p, ...(maxBytes === undefined ? {} : { maxBytes }), ...(xattrs ? { xattrs } : {}) }];
    const [r] = await cancellable(`read ${op} /${p} in the merged view`, undefined, (c) => this.#n.query(ops, c));
    return r;
  }

  /** The entry at `path`, or null when nothing is visible there. */
  async stat(path: string): Promise<OverlayEntry | null> {
    const r = (await this.#query('stat', path)) as NativeEntry | null;
    return r === null ? null : toEntry(r);
  }

  /** The visible entries of the directory at `path`, sorted by name; null if it is not a directory. */
  async list(path: string): Promise<OverlayEntry[] | null> {
    const r = (await this.#query('list', path)) as NativeEntry[] | null;
    return r === null ? null : r.map(toEntry);
  }

  /** The content of the regular file at `path` (at most `maxBytes`, else a LIMIT error), or null. */
  async readFile(path: string, maxBytes?: number): Promise<Buffer | null> {
    if (maxBytes !== undefined) is.integer('maxBytes', maxBytes, 1, 2 ** 40);
    return (await this.#query('read', path, maxBytes)) as Buffer | null;
  }

  /** Every visible entry below the directory `path`, depth first in name order, in one call; null if it is not a directory. */
  async walk(path: string, opts: { xattrCount?: boolean } = {}): Promise<OverlayEntry[] | null> {
    const r = (await this.#query('walk', path, undefined, opts.xattrCount === true)) as NativeEntry[] | null;
    return r === null ? null : r.map(toEntry);
  }

  /** The target of the symlink at `path`, or null. */
  async readLink(path: string): Promise<string | null> {
    return (await this.#query('readlink', path)) as string | null;
  }

  /** The visible extended attributes of the file or directory at `path`, or null. */
  async xattrs(path: string): Promise<Record<string, Buffer> | null> {
    return (await this.#query('xattrs', path)) as Record<string, Buffer> | null;
  }

  /**
   * Where each hierarchy is mounted (path → layers, topmost first), what takes no part, and
   * whether a hierarchy the base lacks is created (false on an immutable root).
   */
  async mounts(): Promise<{ mounts: Record<string, string[]>; skipped: SkippedHierarchy[]; createsMissingHierarchies: boolean }> {
    const r = await cancellable('merged view', undefined, (c) => this.#n.mounts(c));
    return {
      mounts: r.mounts,
      skipped: r.skipped.map((s) => ({ extension: s.layer, hierarchy: s.hierarchy, reason: s.reason })),
      createsMissingHierarchies: r.createMissing,
    };
  }

  /**
   * Every path that several layers provide differently, sorted by path: content changes, type
   * replacements, whiteouts, opaque directories and directory metadata replaced, each naming
   * the layer systemd shows.
   */
  async conflicts(opts: { signal?: AbortSignal } = {}): Promise<OverlayConflict[]> {
    const list = await cancellable('conflict check', is.signal(opts.signal), (c) => this.#n.conflicts(c));
    return list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** @internal Writes the merged tree into the new directory `dest` (see mergeOffline). */
  writeDirectory(dest: string, opts: { mode?: 'none' | 'user'; signal?: AbortSignal } = {}): Promise<OverlayWriteStats> {
    return cancellable(`merge into ${dest}`, opts.signal, (c) => this.#n.writeDirectory(dest, opts.mode === undefined ? {} : { mode: opts.mode }, c));
  }

  /** @internal Writes the merged tree's dirtree/dirmeta objects (inside a transaction). */
  writeTree(opts: { signal?: AbortSignal } = {}): Promise<{ tree: string; meta: string; stats: OverlayWriteStats }> {
    return cancellable('merge into a commit', opts.signal, (c) => this.#n.writeTree(c));
  }

  /** Releases the view; reads in flight finish. */
  close(): void {
    this.#n.close();
  }
}

/** An extension as the merged view needs it (a {@link SetMember} fits). */
export interface OverlayMember {
  name: string;
  commit: string;
  kind: 'sysext' | 'confext';
  /** The repository holding `commit`. */
  repo?: Repo;
}

/**
 * The plugins' read-only merged view of `base` with `extensions` (bottom first). A thin
 * wrapper over {@link Overlay.open}.
 * @example
 * ```ts
 * const merged = await overlayView(base, members, { repo });
 * const unit = await merged.readFile('usr/lib/systemd/system/foo.service');
 * ```
 */
export function overlayView(base: Base, extensions: readonly OverlayMember[], opts: OverlayOptions = {}): Promise<Overlay> {
  const repo = opts.repo ?? extensions.find((e) => e.repo !== undefined)?.repo;
  return Overlay.open(
    base,
    extensions.map((e) => ({ name: e.name, commit: e.commit, kind: e.kind })),
    repo === undefined ? opts : { ...opts, repo },
  );
}

/**
 * Every entry below `dir` of a tree (paths relative to the tree root), depth first.
 * @example
 * ```ts
 * for await (const e of walk(view, 'usr/lib/systemd/system')) console.log(e.path);
 * ```
 */
export async function* walk(reader: TreeReader, dir: string): AsyncGenerator<TreeEntry> {
  const entries = await reader.list(dir);
  for (const e of entries ?? []) {
    yield e;
    if (e.type === 'dir') yield* walk(reader, e.path);
  }
}

/** One path provided differently by several layers, as {@link fileConflictPlugin} reports it. */
export type FileConflict = OverlayConflict;

/**
 * Built-in plugin: warns about every path the layers provide differently (content, type
 * replacements, whiteouts, opaque directories, replaced directory metadata), naming the
 * layer systemd shows, and about names systemd cannot order (`{ kind: 'ambiguous-order',
 * names }` in its details). Computed by the same engine as the merged view.
 */
export const fileConflictPlugin: Plugin = {
  name: 'file-conflicts',
  async checkCompatible(ctx) {
    const view = await overlayView(ctx.base, ctx.extensions, {
      ...(ctx.repo === undefined ? {} : { repo: ctx.repo }),
      ...(ctx.systemd === undefined ? { systemdVersion: ctx.systemdVersion } : { systemd: ctx.systemd }),
    });
    try {
      const conflicts: Array<OverlayConflict | { kind: 'ambiguous-order'; names: string[] }> = await view.conflicts(
        ctx.signal === undefined ? {} : { signal: ctx.signal },
      );
      // Names systemd cannot order: which of them is on top changes from merge to merge.
      const groups = ambiguousNames(ctx.extensions.map((e) => e.name));
      if (conflicts.length === 0 && groups.length === 0) return { verdict: 'approve', message: 'no file conflicts' };
      const shown = (conflicts as OverlayConflict[]).slice(0, 10).map((c) => `/${c.path} (${c.kind}: ${c.providers.join(', ')}; ${c.winner} wins)`);
      const parts = [
        ...(conflicts.length === 0 ? [] : [`${conflicts.length} conflicting path(s): ${shown.join('; ')}${conflicts.length > 10 ? '; …' : ''}`]),
        ...groups.map((g) => `systemd-sysext has no fixed order between ${g.join(' and ')} (their names compare equal): rename one`),
      ];
      for (const g of groups) conflicts.push({ kind: 'ambiguous-order', names: g });
      return { verdict: 'warn', message: parts.join('; '), details: conflicts };
    } finally {
      view.close();
    }
  },
};

/**
 * Paths whose owner, mode or extended attributes the commit `committed` does not keep from the
 * directory `source` (a bare-user-only repository stores canonical 0644/0755 root-owned files
 * without xattrs): what a repository mode cannot represent, to report rather than hide.
 * @example
 * ```ts
 * const lost = await unrepresentable(dir, repo, commit); // [{ path: 'usr/bin/tool', lost: 'mode 4755 stored as 0755' }]
 * ```
 */
export async function unrepresentable(source: string, repo: Repo, committed: string): Promise<Array<{ path: string; lost: string }>> {
  const a = Overlay.tree({ path: source });
  const b = Overlay.tree({ repo, commit: committed });
  try {
    const [before, after, rootBefore, rootAfter] = await Promise.all([
      a.walk('', { xattrCount: true }),
      b.walk('', { xattrCount: true }),
      a.stat(''),
      b.stat(''),
    ]);
    const stored = new Map((after ?? []).map((e) => [e.path, e]));
    if (rootAfter !== null) stored.set('', rootAfter);
    const out: Array<{ path: string; lost: string }> = [];
    for (const e of [...(rootBefore === null ? [] : [rootBefore]), ...(before ?? [])]) {
      const s = stored.get(e.path);
      if (s === undefined || s.type !== e.type) continue;
      const what: string[] = [];
      if (e.type !== 'symlink' && s.mode !== e.mode) what.push(`mode ${e.mode.toString(8).padStart(4, '0')} stored as ${s.mode.toString(8).padStart(4, '0')}`);
      if (s.uid !== e.uid || s.gid !== e.gid) what.push(`owner ${e.uid}:${e.gid} stored as ${s.uid}:${s.gid}`);
      if ((e.xattrCount ?? 0) > (s.xattrCount ?? 0)) what.push(`${(e.xattrCount ?? 0) - (s.xattrCount ?? 0)} xattr(s) dropped`);
      if (what.length > 0) out.push({ path: e.path, lost: what.join(', ') });
    }
    return out;
  } finally {
    a.close();
    b.close();
  }
}

/**
 * Groups of names that compare equal in systemd's version compare (`a1`/`a_1`,
 * `foo-01`/`foo-1`), each in the order given: systemd's order between them changes from run
 * to run (a hashmap and an unstable sort), so where they overlap the merged tree is undefined.
 * @example
 * ```ts
 * ambiguousNames(['a1', 'a_1', 'b']); // [['a1', 'a_1']]
 * ```
 */
export function ambiguousNames(order: readonly string[]): string[][] {
  const groups: string[][] = [];
  for (const name of order) {
    const g = groups.find((x) => compareVersions(x[0]!, name) === 0);
    if (g) g.push(name);
    else groups.push([name]);
  }
  return groups.filter((g) => g.length > 1);
}
