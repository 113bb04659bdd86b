/**
 * Offline merge for image builds: the union of a base and extensions in systemd's overlay
 * order, as hardlink checkouts into a directory, or committed as a new OSTree commit. No
 * root and no mounts needed.
 * @module
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readlink, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as is from './args.js';
import type { Base } from './base.js';
import { sortExtensionNames } from './compat.js';
import { ExtensionError } from './errors-domain.js';
import { OstreeError } from './errors.js';
import { DevInoCache, type CallOptions, type MetadataValue, type Repo } from './repo.js';

const run = promisify(execFile);

/** One extension to merge: its name and commit (in the same repository as a commit base). */
export interface MergeExtension {
  name: string;
  commit: string;
  /** `sysext` merges `usr/` and `opt/`; `confext` merges `etc/`. */
  kind: 'sysext' | 'confext';
}

/** Options for {@link mergeOffline}. */
export interface MergeOptions extends CallOptions {
  /** The repository holding the extensions (and the base, when it is a commit). */
  repo: Repo;
  /** The OS tree underneath. */
  base: Base;
  /** The extensions; they are layered in systemd's order whatever order is given here. */
  extensions: MergeExtension[];
  /** Write the merged tree to this new directory (must not exist). */
  directory?: string;
  /** Commit the merged tree; `ref` moves to it. */
  commit?: { ref?: string; subject?: string; body?: string; version?: string; metadata?: Record<string, MetadataValue> };
  /**
   * Where confext content goes: `etc` (default), or `usr/etc` for an OSTree commit base whose
   * default configuration lives there.
   */
  confextTarget?: 'etc' | 'usr/etc';
}

/** Result of {@link mergeOffline}. */
export interface MergeResult {
  /** Extension names from bottom to top (systemd's overlay order). */
  order: string[];
  /** The merged directory, when `directory` was given. */
  directory?: string;
  /** The merged commit, when `commit` was given. */
  commit?: string;
}

/**
 * Resolves `rel` inside `root` as systemd's chase with a root prefix does (absolute symlink
 * targets and `..` stay inside `root`); null when it does not exist or is not a directory.
 */
async function chaseInRoot(root: string, rel: string): Promise<string | null> {
  const todo = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  for (let hops = 0; todo.length > 0; ) {
    const part = todo.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const path = join(root, ...done, part);
    let st;
    try {
      st = await lstat(path);
    } catch {
      return null;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 32) return null;
      const target = await readlink(path);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    if (!st.isDirectory()) return null;
    done.push(part);
  }
  return join(root, ...done);
}

/** The hierarchies systemd merges for each kind (252: /usr and /opt; /etc for confexts). */
export function mergedHierarchies(kind: 'sysext' | 'confext'): string[] {
  return kind === 'sysext' ? ['usr', 'opt'] : ['etc'];
}

/**
 * Merges `extensions` onto `base` without mounts. Later extensions in systemd's order win
 * for files present in several layers, as overlayfs shows them; only the merged hierarchies
 * of each extension are used, and only those the base has (a symlinked `/opt` is followed),
 * as systemd-sysext does.
 *
 * @example
 * ```ts
 * const base = await baseFromCommit(repo, 'os/x86_64/main');
 * const { commit } = await mergeOffline({
 *   repo, base,
 *   extensions: [{ name: 'tools', commit: toolsCommit, kind: 'sysext' }],
 *   commit: { ref: 'os/x86_64/main-with-tools', subject: 'image with tools' },
 * });
 * ```
 */
export async function mergeOffline(opts: MergeOptions): Promise<MergeResult> {
  const o = is.options<MergeOptions>('options', opts);
  if (!o.repo || !o.base) throw new TypeError('repo and base are required');
  if (!Array.isArray(o.extensions)) throw new TypeError('extensions must be an array');
  if ((o.directory === undefined) === (o.commit === undefined)) throw new TypeError('give exactly one of directory and commit');
  const signal = is.signal(o.signal);
  const byName = new Map<string, MergeExtension>();
  for (const [i, e] of o.extensions.entries()) {
    is.nonEmpty(`extensions[${i}].name`, e.name);
    is.checksum(`extensions[${i}].commit`, e.commit);
    is.oneOf(`extensions[${i}].kind`, e.kind, ['sysext', 'confext'] as const);
    if (byName.has(e.name)) throw new ExtensionError('INVALID_NAME', `${e.name} is given twice`);
    byName.set(e.name, e);
  }
  const order = sortExtensionNames(byName.keys());
  const repo = o.repo;

  const target = o.directory === undefined ? undefined : resolve(is.nonEmpty('directory', o.directory));
  if (target !== undefined && existsSync(target)) {
    throw new OstreeError(`${target} already exists`, { domain: 'g-io-error-quark', gerrorCode: 2, operation: 'merge' });
  }
  // Build next to the target (same filesystem: hardlinks and a final rename work).
  const work = target === undefined
    ? join(dirname(repo.path), `.ostree-sysext-merge-${randomBytes(6).toString('hex')}`)
    : join(dirname(target), `.${basename(target)}.merge-${randomBytes(6).toString('hex')}`);
  const cache = new DevInoCache();
  try {
    if (o.base.source.type === 'directory') {
      // Copy preserving everything; no shell, arguments as an array.
      await mkdir(dirname(work), { recursive: true });
      await run('cp', ['-a', '--reflink=auto', '--', o.base.source.path, work], signal ? { signal } : {});
    } else {
      const baseCommit = o.base.source.type === 'commit' ? o.base.source.commit : o.base.source.deployment.checksum;
      await repo.checkout(baseCommit, work, { devinoCache: cache, ...(signal ? { signal } : {}) });
    }
    for (const name of order) {
      const ext = byName.get(name)!;
      const top = new Set((await repo.listDir(ext.commit, '/')).filter((e) => e.type === 'dir').map((e) => e.name));
      for (const hier of mergedHierarchies(ext.kind)) {
        if (!top.has(hier)) continue;
        // systemd-sysext ignores a hierarchy the base lacks, and follows one that is a symlink.
        const dest = await chaseInRoot(work, hier === 'etc' && o.confextTarget === 'usr/etc' ? 'usr/etc' : hier);
        if (dest === null) continue;
        await repo.checkout(ext.commit, dest, { subpath: `/${hier}`, overwrite: 'union', devinoCache: cache, ...(signal ? { signal } : {}) });
      }
    }
    if (target !== undefined) {
      await rename(work, target);
      return { order, directory: target };
    }
    const c = o.commit!;
    const parts: Record<string, MetadataValue> = Object.fromEntries(order.map((n) => [n, byName.get(n)!.commit]));
    const commit = await repo.commit({
      tree: work,
      devinoCache: cache,
      subject: c.subject ?? `Merge ${order.join(', ') || 'no extensions'} onto ${o.base.id.slice(0, 12)}`,
      ...(c.body === undefined ? {} : { body: c.body }),
      ...(c.version === undefined ? {} : { version: c.version }),
      ...(c.ref === undefined ? {} : { ref: c.ref }),
      metadata: { ...c.metadata, 'ostree-sysext.merge.base': o.base.id, 'ostree-sysext.merge.extensions': parts, 'ostree-sysext.merge.order': order },
      ...(signal ? { signal } : {}),
    });
    return { order, commit };
  } finally {
    if (existsSync(work)) await rm(work, { recursive: true, force: true });
  }
}
