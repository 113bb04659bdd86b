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
import * as is from '../binding/args.js';
import { compareVersions, systemdOption, type SystemdInfo } from '../extension/compat.js';
import type { Base } from '../extension/base.js';
import { native } from '../binding/native.js';
import type { Repo } from '../binding/repo.js';
import { cancellable } from '../binding/signal.js';
import type { NativeLayer, NativeOverlay } from '../binding/native-contract.js';
import { mergedHierarchies } from '../extension/hierarchies.js';
import { TreeView, type OverlayWriteStats } from '../tree/view.js';
import type { Plugin } from './plugin.js';

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

/**
 * The merged view of a base and extensions, as systemd-sysext's overlay shows it. It reads
 * like a {@link TreeView} (no symlink is followed, also not in intermediate components) and
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
export class Overlay extends TreeView {
  private constructor(n: NativeOverlay, repo: Repo | undefined) {
    super(n, repo);
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
    const layers: NativeLayer[] = [];
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
    const Ctor = native().Overlay;
    return new Overlay(new Ctor(repo?._native ?? null, layers, { ...(createMissing === undefined ? {} : { createMissing }), hostHierarchyMode }), repo);
  }

  /**
   * @internal Whether systemd could create a missing hierarchy in the directory `root`: not when
   * the root is immutable (`chattr +i`, as an OSTree deployment's is).
   */
  static async createsMissingHierarchies(root: string): Promise<boolean> {
    const n = new (native().Overlay)(null, [{ name: 'base', path: root }], {});
    try {
      return (await cancellable('merged view', undefined, (c) => n.mounts(c))).createMissing;
    } finally {
      n.close();
    }
  }

  /**
   * Where each hierarchy is mounted (path → layers, topmost first), what takes no part, and
   * whether a hierarchy the base lacks is created (false on an immutable root).
   */
  async mounts(): Promise<{ mounts: Record<string, string[]>; skipped: SkippedHierarchy[]; createsMissingHierarchies: boolean }> {
    const r = await cancellable('merged view', undefined, (c) => this.native.mounts(c));
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
    const list = await cancellable('conflict check', is.signal(opts.signal), (c) => this.native.conflicts(c));
    return list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** @internal Writes the merged tree into the new directory `dest` (see mergeOffline). */
  writeDirectory(dest: string, opts: { mode?: 'none' | 'user'; signal?: AbortSignal } = {}): Promise<OverlayWriteStats> {
    return cancellable(`merge into ${dest}`, opts.signal, (c) => this.native.writeDirectory(dest, opts.mode === undefined ? {} : { mode: opts.mode }, c));
  }

  /** @internal Writes the merged tree's dirtree/dirmeta objects (inside a transaction). */
  writeTree(opts: { signal?: AbortSignal } = {}): Promise<{ tree: string; meta: string; stats: OverlayWriteStats }> {
    return cancellable('merge into a commit', opts.signal, (c) => this.native.writeTree(c));
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
