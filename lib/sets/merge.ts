/**
 * Offline merge for image builds: the merged view of a base and extensions (lib/overlay.ts,
 * systemd-sysext's rules) written into a new directory or committed as a new OSTree commit.
 * No root and no mounts needed; nothing is ever written outside the target.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as is from '../binding/args.js';
import { baseFromCommit, type Base } from '../extension/base.js';
import { checkCompatibility, sortExtensionNames, systemdOption, type SystemdInfo } from '../extension/compat.js';
import { ExtensionError, MAX_RELEASE_BYTES } from '../extension/errors.js';
import { OstreeError } from '../binding/errors.js';
import { ambiguousNames, Overlay, type SkippedHierarchy } from './overlay.js';
import { mergedHierarchies } from '../extension/hierarchies.js';
import { unrepresentable, type OverlayWriteStats } from '../tree/view.js';
import { commitReader } from '../tree/commit.js';
import { parseRelease, releaseFilePath } from '../extension/release.js';
import { chaseInTree } from '../tree/reader.js';
import type { CallOptions, MetadataValue, Repo } from '../binding/repo.js';

export { ambiguousNames, mergedHierarchies };

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
  /**
   * What to do with an extension the target systemd would not merge (release incompatible
   * with the base, wrong scope or kind): `skip` it as systemd does (default, reported in
   * {@link MergeResult.skipped}), `refuse` the whole merge, or `include` it anyway.
   */
  incompatible?: 'skip' | 'refuse' | 'include';
  /** The systemd version whose rules decide (default 252), as upstream releases them. */
  systemdVersion?: number;
  /** The target systemd as {@link detectSystemd} describes it (backports included); wins over `systemdVersion`. */
  systemd?: SystemdInfo;
  /** Whether a hierarchy the base lacks is created (systemd does on a writable root); see {@link OverlayOptions}. */
  createMissingHierarchies?: boolean;
}

/** An extension the offline merge left out, as systemd would. */
export interface SkippedExtension {
  name: string;
  /** Stable code of the reason (see `checkCompatibility`). */
  code: string;
  reason: string;
}

/** Result of {@link mergeOffline}. */
export interface MergeResult {
  /** Extension names from bottom to top (systemd's overlay order). */
  order: string[];
  /** The merged directory, when `directory` was given. */
  directory?: string;
  /** The merged commit, when `commit` was given. */
  commit?: string;
  /** Extensions left out because the target systemd would not merge them. */
  skipped: SkippedExtension[];
  /**
   * Groups of names that compare equal in systemd's version compare (`a1`/`a_1`,
   * `foo-01`/`foo-1`): systemd's order between them changes from run to run, so where they
   * overlap the merged tree is not defined. The merge uses `order` and says so here.
   */
  ambiguous: string[][];
  /** Hierarchies an extension took no part in (absent, empty, or not mountable on the base). */
  hierarchies: SkippedHierarchy[];
  /** What was written. */
  stats: OverlayWriteStats;
  /**
   * What the repository could not keep of a directory base committed for a commit merge (in a
   * bare-user-only repository: owners, modes other than 0644/0755, xattrs), path by path.
   */
  unrepresentable: Array<{ path: string; lost: string }>;
}

const releasePath = (kind: 'sysext' | 'confext', name: string) => `/${releaseFilePath(kind, name)}`;

/**
 * Merges `extensions` onto `base` without mounts, exactly as systemd-sysext's overlay shows
 * them (see lib/overlay.ts for the rules): later extensions in systemd's order win; extensions
 * the target systemd would not merge are skipped (or refused, or included, on request); names
 * systemd cannot order are reported in `ambiguous`. A directory target is created new and
 * filled relative to directory fds, so no symlink in the base or an extension can send a file
 * outside it; a commit target is built from the layers' object checksums, no content copied.
 *
 * @example
 * ```ts
 * const base = await baseFromCommit(repo, 'os/x86_64/main');
 * const { commit, skipped } = await mergeOffline({
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
  const incompatible = is.oneOf('incompatible', o.incompatible ?? 'skip', ['skip', 'refuse', 'include'] as const);
  const systemd = systemdOption(o.systemd, o.systemdVersion);
  const systemdVersion = systemd.version;
  const byName = new Map<string, MergeExtension>();
  for (const [i, e] of o.extensions.entries()) {
    is.nonEmpty(`extensions[${i}].name`, e.name);
    is.checksum(`extensions[${i}].commit`, e.commit);
    is.oneOf(`extensions[${i}].kind`, e.kind, ['sysext', 'confext'] as const);
    if (byName.has(e.name)) throw new ExtensionError('INVALID_NAME', `${e.name} is given twice`);
    byName.set(e.name, e);
  }
  const repo = o.repo;
  const inputBase = o.base;
  const target = o.directory === undefined ? undefined : resolve(is.nonEmpty('directory', o.directory));
  if (target !== undefined && existsSync(target)) {
    throw new OstreeError(`${target} already exists`, { domain: 'g-io-error-quark', gerrorCode: 2, operation: 'merge' });
  }

  // systemd's choice: every extension whose release the target systemd would refuse is left out.
  const skipped: SkippedExtension[] = [];
  const all = sortExtensionNames(byName.keys());
  const reads = await repo.queryMany(
    all.map((n) => ({
      rev: byName.get(n)!.commit,
      ops: [{ op: 'read' as const, path: releasePath(byName.get(n)!.kind, n), optional: true, maxBytes: MAX_RELEASE_BYTES }],
    })),
    signal ? { signal } : {},
  );
  const order: string[] = [];
  for (const [i, name] of all.entries()) {
    const ext = byName.get(name)!;
    let data = reads[i]!.results[0] as Buffer | null;
    if (data === null) {
      // Not at its usual path: systemd chases the release directory (an extension's usr may be a symlink).
      const reader = commitReader(repo, ext.commit);
      const found = await chaseInTree(reader, releasePath(ext.kind, name));
      if (found !== null && found.type === 'file') data = await reader.readFile(found.path, MAX_RELEASE_BYTES);
    }
    const release = data === null ? {} : parseRelease(data).fields;
    const r = checkCompatibility(release, o.base.osRelease, { kind: ext.kind, name, systemd });
    if (r.compatible || incompatible === 'include') {
      order.push(name);
      continue;
    }
    if (incompatible === 'refuse')
      throw new ExtensionError('INCOMPATIBLE', `${name}: systemd-sysext ${systemdVersion} would not merge it: ${r.reason.message}`);
    skipped.push({ name, code: r.reason.code, reason: r.reason.message });
  }
  const ambiguous = ambiguousNames(order);
  const layers = order.map((n) => byName.get(n)!);
  const overlayOpts = {
    repo,
    systemd,
    ...(o.confextTarget === undefined ? {} : { confextTarget: o.confextTarget }),
    ...(o.createMissingHierarchies === undefined ? {} : { createMissingHierarchies: o.createMissingHierarchies }),
  };

  if (target !== undefined) {
    // Built next to the target (same filesystem) and renamed into place when complete.
    const work = join(dirname(target), `.${basename(target)}.merge-${randomBytes(6).toString('hex')}`);
    const view = await Overlay.open(o.base, layers, overlayOpts);
    try {
      const { skipped: hierarchies } = await view.mounts();
      const stats = await view.writeDirectory(work, signal ? { signal } : {});
      await rename(work, target);
      return { order, directory: target, skipped, ambiguous, hierarchies, stats, unrepresentable: [] };
    } finally {
      view.close();
      if (existsSync(work)) await rm(work, { recursive: true, force: true });
    }
  }

  const c = o.commit!;
  return repo.transaction(
    async (tx) => {
      // A directory base is committed first (no ref), so every layer is in the repository.
      let base: Base = inputBase;
      let lost: Array<{ path: string; lost: string }> = [];
      if (base.source.type !== 'commit') {
        const path = base.source.type === 'directory' ? base.source.path : base.source.sysroot.deploymentPath(base.source.deployment);
        const baseCommit = await tx.commit({ tree: path, subject: `base of a merge: ${path}`, ...(signal ? { signal } : {}) });
        base = { ...(await baseFromCommit(repo, baseCommit)), id: inputBase.id };
        if (repo.mode === 'bare-user-only') lost = await unrepresentable(path, repo, baseCommit);
      }
      // The base was committed for this merge: whether its root was immutable is the directory's answer.
      const immutable = inputBase.source.type !== 'commit' && o.createMissingHierarchies === undefined ? await rootIsImmutable(inputBase) : false;
      const view = await Overlay.open(base, layers, { ...overlayOpts, ...(immutable ? { createMissingHierarchies: false } : {}) });
      try {
        const { skipped: hierarchies } = await view.mounts();
        const { tree, meta, stats } = await view.writeTree(signal ? { signal } : {});
        const parts: Record<string, MetadataValue> = Object.fromEntries(order.map((n) => [n, byName.get(n)!.commit]));
        const commit = await tx.commit({
          fromTree: { tree, meta },
          subject: c.subject ?? `Merge ${order.join(', ') || 'no extensions'} onto ${inputBase.id.slice(0, 12)}`,
          ...(c.body === undefined ? {} : { body: c.body }),
          ...(c.version === undefined ? {} : { version: c.version }),
          ...(c.ref === undefined ? {} : { ref: c.ref }),
          metadata: { ...c.metadata, 'ostree-sysext.merge.base': inputBase.id, 'ostree-sysext.merge.extensions': parts, 'ostree-sysext.merge.order': order },
          ...(signal ? { signal } : {}),
        });
        return { order, commit, skipped, ambiguous, hierarchies, stats, unrepresentable: lost };
      } finally {
        view.close();
      }
    },
    signal ? { signal } : {},
  );
}

/** Whether systemd could not create a missing hierarchy in this directory or deployment base. */
async function rootIsImmutable(base: Base): Promise<boolean> {
  const view = await Overlay.open(base, []);
  try {
    return !(await view.mounts()).createsMissingHierarchies;
  } finally {
    view.close();
  }
}
