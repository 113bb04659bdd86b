/**
 * The native tree view: one engine (native/overlay.cc) reads a directory or a commit without a
 * GFile per entry, validated and symlink-free, and walks a whole tree in one call. The merged
 * view ({@link Overlay}) is the same engine with extension layers on top.
 * @module
 */
import * as is from '../binding/args.js';
import { native } from '../binding/native.js';
import type { NativeOverlay, NativeViewEntry } from '../binding/native-contract.js';
import type { Repo } from '../binding/repo.js';
import { cancellable } from '../binding/signal.js';
import { treePathParts, type TreeEntry, type TreeReader } from './reader.js';

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

function toEntry(e: NativeViewEntry): OverlayEntry {
  const out: OverlayEntry = { name: e.name, path: e.path, type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, layer: e.layer };
  if (e.type === 'file') out.size = e.size;
  if (e.target !== undefined) out.target = e.target;
  if (e.checksum !== undefined) out.checksum = e.checksum;
  if (e.xattrCount !== undefined) out.xattrCount = e.xattrCount;
  return out;
}

/**
 * A tree read by the native engine: {@link TreeView.of} for one directory or commit, and the
 * base of {@link Overlay}. Reads like a {@link TreeReader} (no symlink is followed, also not in
 * intermediate components), with owners, layers and checksums. Close it when done.
 * @example
 * ```ts
 * const view = TreeView.of({ repo, commit });
 * try {
 *   console.log((await view.walk('usr'))?.length);
 * } finally {
 *   view.close();
 * }
 * ```
 */
export class TreeView implements TreeReader {
  /** @internal */
  protected readonly native: NativeOverlay;
  /** @internal */
  readonly repo: Repo | undefined;

  /** @internal */
  protected constructor(n: NativeOverlay, repo: Repo | undefined) {
    this.native = n;
    this.repo = repo;
  }

  /**
   * A view of one tree alone (a commit in `repo`, or a directory): the engine's
   * validated, symlink-free reads, and {@link TreeView.walk} in one call.
   */
  static of(source: { repo: Repo; commit: string } | { path: string }, opts: { raw?: boolean } = {}): TreeView {
    const Ctor = native().Overlay;
    const o = { createMissing: false, raw: opts.raw === true };
    if ('path' in source) return new TreeView(new Ctor(null, [{ name: 'base', path: source.path }], o), undefined);
    return new TreeView(new Ctor(source.repo._native, [{ name: 'base', commit: is.checksum('commit', source.commit) }], o), source.repo);
  }

  async #query(op: string, path: string, maxBytes?: number, xattrs = false): Promise<unknown> {
    const p = treePathParts(path).join('/');
    const ops = [{ op, path: p, ...(maxBytes === undefined ? {} : { maxBytes }), ...(xattrs ? { xattrs } : {}) }];
    const [r] = await cancellable(`read ${op} /${p} in the merged view`, undefined, (c) => this.native.query(ops, c));
    return r;
  }

  /** The entry at `path`, or null when nothing is visible there. */
  async stat(path: string): Promise<OverlayEntry | null> {
    const r = (await this.#query('stat', path)) as NativeViewEntry | null;
    return r === null ? null : toEntry(r);
  }

  /** The visible entries of the directory at `path`, sorted by name; null if it is not a directory. */
  async list(path: string): Promise<OverlayEntry[] | null> {
    const r = (await this.#query('list', path)) as NativeViewEntry[] | null;
    return r === null ? null : r.map(toEntry);
  }

  /** The content of the regular file at `path` (at most `maxBytes`, else a LIMIT error), or null. */
  async readFile(path: string, maxBytes?: number): Promise<Buffer | null> {
    if (maxBytes !== undefined) is.integer('maxBytes', maxBytes, 1, 2 ** 40);
    return (await this.#query('read', path, maxBytes)) as Buffer | null;
  }

  /** Every visible entry below the directory `path`, depth first in name order, in one call; null if it is not a directory. */
  async walk(path: string, opts: { xattrCount?: boolean } = {}): Promise<OverlayEntry[] | null> {
    const r = (await this.#query('walk', path, undefined, opts.xattrCount === true)) as NativeViewEntry[] | null;
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

  /** Releases the view; reads in flight finish. */
  close(): void {
    this.native.close();
  }
}

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
  const a = TreeView.of({ path: source });
  const b = TreeView.of({ repo, commit: committed });
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
