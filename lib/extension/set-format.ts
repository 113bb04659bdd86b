/**
 * The format of a deployment-set commit (on `ostree-sysext/set/<osname>`, see
 * {@link setRef}): its metadata keys and the one reader of the extensions it names. It lives
 * in the extension layer, below both users: the store keeps what sets name from any prune and
 * refuses to remove a member; {@link DeploymentSet} writes and reads sets.
 * @module
 */

/** Metadata key of a set commit mapping each extension name to its commit. */
export const META_SET_EXTENSIONS = 'ostree-sysext.extensions';
/** Metadata key of a set commit naming its base. */
export const META_SET_BASE = 'ostree-sysext.base';
/** Metadata key of a set commit with the vote report (JSON). */
export const META_SET_VOTES = 'ostree-sysext.votes';
/** Metadata key of a rollback commit naming the set it restores. */
export const META_SET_ROLLBACK_OF = 'ostree-sysext.rollback-of';

/**
 * The extensions a set commit names (name → extension commit), from its metadata; entries that
 * are not strings are left out, and a commit without the key names none.
 * @example
 * ```ts
 * setExtensions((await repo.loadCommit('ostree-sysext/set/fedora')).metadata); // { tools: '3f…' }
 * ```
 */
export function setExtensions(metadata: Record<string, unknown>): Record<string, string> {
  const raw = metadata[META_SET_EXTENSIONS];
  const out: Record<string, string> = {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [name, commit] of Object.entries(raw)) if (typeof commit === 'string') out[name] = commit;
  return out;
}
