/**
 * A {@link TreeReader} over an OSTree commit: validation and plugins read extension trees
 * straight from the repository, without a checkout.
 * @module
 */
import { isOstreeError } from '../binding/errors.js';
import type { Repo } from '../binding/repo.js';
import type { CommitEntry } from '../binding/read.js';
import { TreeView } from './view.js';
import { plainEntry, type TreeEntry, type TreeReader } from './reader.js';

function toTreeEntry(e: CommitEntry): TreeEntry {
  const t: TreeEntry = { name: e.name, path: e.path.replace(/^\//, ''), type: e.type, mode: e.mode, size: e.size };
  if (e.target !== undefined) t.target = e.target;
  return t;
}

/**
 * Reads a commit's tree through {@link Repo.query}. The commit is pinned by checksum, so a
 * ref moving meanwhile never mixes two trees in one validation.
 * @example
 * ```ts
 * const reader = commitReader(repo, await repo.resolve('ostree-sysext/ext/foo'));
 * const result = await validateExtension(reader, { name: 'foo' });
 * ```
 */
export function commitReader(repo: Repo, commit: string): TreeReader & { readonly commit: string } {
  return {
    commit,
    async walk(path: string): Promise<TreeEntry[] | null> {
      const view = TreeView.of({ repo, commit });
      try {
        const entries = await view.walk(path);
        return entries === null ? null : entries.map(plainEntry);
      } finally {
        view.close();
      }
    },
    async stat(path: string): Promise<TreeEntry | null> {
      const { results } = await repo.query(commit, [{ op: 'stat', path, optional: true }]);
      return results[0] === null ? null : toTreeEntry(results[0] as CommitEntry);
    },
    async list(path: string): Promise<TreeEntry[] | null> {
      try {
        const { results } = await repo.query(commit, [{ op: 'list', path, optional: true }]);
        return results[0] === null ? null : (results[0] as CommitEntry[]).map(toTreeEntry);
      } catch (e) {
        if (isOstreeError(e, 'NOT_DIRECTORY')) return null;
        throw e;
      }
    },
    async readFile(path: string, maxBytes?: number): Promise<Buffer | null> {
      const op = maxBytes === undefined ? { op: 'read' as const, path, optional: true } : { op: 'read' as const, path, optional: true, maxBytes };
      try {
        const { results } = await repo.query(commit, [op]);
        return results[0] as Buffer | null;
      } catch (e) {
        // Not a regular file (directory, symlink, device): no content to read.
        if (isOstreeError(e, 'IS_DIRECTORY')) return null;
        throw e;
      }
    },
  };
}
