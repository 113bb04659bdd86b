/**
 * A {@link TreeReader} over a directory on disk: no symlink is ever followed, also not in
 * intermediate components.
 * @module
 */
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { constants, type Stats } from 'node:fs';
import { join } from 'node:path';
import { plainEntry, treePathParts, type TreeEntry, type TreeReader } from './reader.js';
import { TreeView } from './view.js';

function entryFromStats(parts: readonly string[], st: Stats, target?: string): TreeEntry {
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'special';
  const entry: TreeEntry = { name: parts.at(-1) ?? '', path: parts.join('/'), type, mode: st.mode & 0o7777 };
  if (type === 'file') entry.size = st.size;
  if (target !== undefined) entry.target = target;
  if (st.isCharacterDevice() && st.rdev === 0) entry.whiteout = true;
  return entry;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * A {@link TreeReader} over a directory on disk, using `lstat` and `O_NOFOLLOW` so no symlink is
 * ever followed, even in intermediate path components.
 *
 * @example
 * ```ts
 * const result = await validateExtension(directoryReader('/var/lib/extensions/foo'), { name: 'foo' });
 * ```
 */
export function directoryReader(root: string): TreeReader {
  // lstat every component so a symlinked parent never redirects the lookup.
  const lstatChain = async (parts: readonly string[]): Promise<Stats | null> => {
    let st: Stats;
    try {
      st = await lstat(root);
      for (let i = 0; i < parts.length; i++) {
        if (!st.isDirectory()) return null;
        st = await lstat(join(root, ...parts.slice(0, i + 1)));
      }
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    return st;
  };

  const statEntry = async (parts: readonly string[]): Promise<TreeEntry | null> => {
    const st = await lstatChain(parts);
    if (st === null) return null;
    return entryFromStats(parts, st, st.isSymbolicLink() ? await readlink(join(root, ...parts)) : undefined);
  };

  return {
    stat: async (path) => statEntry(treePathParts(path)),

    walk: async (path) => {
      const view = TreeView.of({ path: root });
      try {
        const entries = await view.walk(treePathParts(path).join('/'));
        return entries === null ? null : entries.map(plainEntry);
      } finally {
        view.close();
      }
    },

    list: async (path) => {
      const parts = treePathParts(path);
      const st = await lstatChain(parts);
      if (st === null || !st.isDirectory()) return null;
      const names = await readdir(join(root, ...parts));
      names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const entries: TreeEntry[] = [];
      for (const name of names) {
        const childParts = [...parts, name];
        const child = join(root, ...childParts);
        try {
          const cst = await lstat(child);
          entries.push(entryFromStats(childParts, cst, cst.isSymbolicLink() ? await readlink(child) : undefined));
        } catch (err) {
          if (!isMissing(err)) throw err; // removed while listing
        }
      }
      return entries;
    },

    readFile: async (path, maxBytes) => {
      const parts = treePathParts(path);
      const st = await lstatChain(parts);
      if (st === null || !st.isFile()) return null;
      // O_NONBLOCK: a FIFO swapped in after the lstat must not hang the open.
      const handle = await open(join(root, ...parts), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: unknown) => {
        if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ELOOP') return null;
        throw err;
      });
      if (handle === null) return null;
      try {
        const fst = await handle.stat();
        if (!fst.isFile()) return null;
        const limit = maxBytes ?? Number.POSITIVE_INFINITY;
        const chunks: Buffer[] = [];
        let total = 0;
        while (total < limit) {
          const buf = Buffer.alloc(Math.min(64 * 1024, limit - total));
          const { bytesRead } = await handle.read(buf, 0, buf.length, null);
          if (bytesRead === 0) break;
          chunks.push(buf.subarray(0, bytesRead));
          total += bytesRead;
        }
        return Buffer.concat(chunks, total);
      } finally {
        await handle.close();
      }
    },
  };
}
