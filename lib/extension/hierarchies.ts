/**
 * Which hierarchies systemd-sysext and systemd-confext merge: the one definition every layer
 * (validation, the merged view, the offline merge, the systemd driver) reads.
 * @module
 */

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
