/**
 * The one interface every tree is read through — a directory ({@link directoryReader}), a
 * commit ({@link commitReader}), the merged view ({@link Overlay}) — and what works on any of
 * them: symlinks chased inside the tree, walks, plain entries.
 * @module
 */

/** One entry of an extension tree, as a {@link TreeReader} reports it (never following symlinks). */
export interface TreeEntry {
  /** Last path component; `''` for the tree root. */
  name: string;
  /** Path relative to the tree root, `/`-separated, without leading `/`; `''` for the root. */
  path: string;
  /** Regular file, directory, symbolic link, or anything else (device, FIFO, socket). */
  type: 'file' | 'dir' | 'symlink' | 'special';
  /** Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`). */
  mode: number;
  /** Size in bytes, for regular files. */
  size?: number;
  /** Link target exactly as stored, for symlinks. */
  target?: string;
  /** True for an overlayfs whiteout (a character device 0:0, type `special`). */
  whiteout?: boolean;
}

/**
 * Read access to an extension tree. Paths are relative to the tree root, `/`-separated; `''` is
 * the root. Implementations never follow symlinks, including in intermediate components: a path
 * through a symlink does not exist.
 */
export interface TreeReader {
  /** The entry at `path`, or `null` if there is none. */
  stat(path: string): Promise<TreeEntry | null>;
  /** The entries of the directory at `path` sorted by name, or `null` if it is not a directory. */
  list(path: string): Promise<TreeEntry[] | null>;
  /**
   * The contents of the regular file at `path`, at most `maxBytes` bytes of it when given, or
   * `null` if it is not a regular file.
   */
  readFile(path: string, maxBytes?: number): Promise<Buffer | null>;
  /**
   * Optional: every entry below the directory `path`, depth first in name order, in one call
   * (validation uses it so a deep tree costs one read, not one lookup from the root per entry).
   */
  walk?(path: string): Promise<TreeEntry[] | null>;
}

/** @internal Splits a tree path into components; rejects `..`, NUL and non-string input. */
export function treePathParts(path: string): string[] {
  if (typeof path !== 'string') throw new TypeError(`tree path must be a string, got ${typeof path}`);
  if (path.includes('\0')) throw new RangeError(`tree path contains NUL: ${JSON.stringify(path)}`);
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new RangeError(`tree path must not contain '..': ${JSON.stringify(path)}`);
  return parts;
}

/** A {@link TreeEntry} without the engine's extra fields (owner, layer, checksum). */
export function plainEntry(e: TreeEntry): TreeEntry {
  const out: TreeEntry = { name: e.name, path: e.path, type: e.type, mode: e.mode };
  if (e.size !== undefined) out.size = e.size;
  if (e.target !== undefined) out.target = e.target;
  if (e.whiteout) out.whiteout = true;
  return out;
}

const MAX_SYMLINK_HOPS = 32;

/** Where {@link chase} stopped following a path inside a tree. */
export interface ChaseResult {
  /**
   * `found`: the whole path resolved (to `entry`); `missing`: the directory `at` exists and has
   * no entry named `missing`; `not-directory`: something other than a directory is in the way
   * at `at`; `loop`: more than 32 symlinks.
   */
  status: 'found' | 'missing' | 'not-directory' | 'loop';
  /** The final entry, when `found`. */
  entry: TreeEntry | null;
  /** The resolved tree path reached: the final entry, the directory lacking the next component, or what is in the way. */
  at: string;
  /** The first component that does not exist, when `missing`. */
  missing?: string;
}

/**
 * Follows `path` through symlinks inside the tree, the way systemd's `chase()` does with the
 * tree as root (absolute targets and `..` stay inside it, at most 32 symlinks), and says how far
 * it got: {@link chaseInTree} when only the final entry matters.
 * @example
 * ```ts
 * const r = await chase(directoryReader('/sysroot/ostree/deploy/os/deploy/abc.0'), 'opt');
 * r.status === 'missing' && r.at === ''; // the root lacks opt itself
 * ```
 */
export async function chase(reader: TreeReader, path: string): Promise<ChaseResult> {
  const todo = treePathParts(path);
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '..') {
      done.pop();
      continue;
    }
    if (part === '.') continue;
    const entry = await reader.stat([...done, part].join('/'));
    if (entry === null) return { status: 'missing', entry: null, at: done.join('/'), missing: part };
    if (entry.type === 'symlink') {
      if (++hops > MAX_SYMLINK_HOPS) return { status: 'loop', entry: null, at: [...done, part].join('/') };
      const target = entry.target ?? '';
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter((p) => p !== ''));
      continue;
    }
    if (todo.length > 0 && entry.type !== 'dir') return { status: 'not-directory', entry: null, at: [...done, part].join('/') };
    done.push(part);
  }
  const entry = await reader.stat(done.join('/'));
  return entry === null
    ? { status: 'missing', entry: null, at: done.slice(0, -1).join('/'), missing: done.at(-1) ?? '' }
    : { status: 'found', entry, at: done.join('/') };
}

/**
 * Follows `path` through symlinks inside the tree (see {@link chase}). Returns the final entry
 * or `null` when something along the way is missing, or after 32 symlinks.
 * @example
 * ```ts
 * (await chaseInTree(reader, 'usr/lib/extension-release.d'))?.path; // 'real/lib/extension-release.d' when usr -> real
 * ```
 */
export async function chaseInTree(reader: TreeReader, path: string): Promise<TreeEntry | null> {
  return (await chase(reader, path)).entry;
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
