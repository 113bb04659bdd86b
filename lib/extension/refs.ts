/**
 * The refs ostree-sysext keeps in a repository (DESIGN.md "Refs and files"). Extension names
 * are file names, which may hold characters a ref may not, so they are escaped reversibly.
 * Not with ostree-rs-ext's `refescape` (rpm-ostree, bootc): that one escapes `.` too and is
 * built for multi-component identifiers, while an extension name is one component and
 * version-like names (`python-3.12`) should stay readable in `ostree refs` (ARCHITECTURE.md).
 * @module
 */

/** Prefix of installed-extension refs. */
export const EXTENSION_REF_PREFIX = 'ostree-sysext/ext';
/** Prefix of deployment-set refs. */
export const SET_REF_PREFIX = 'ostree-sysext/set';
/**
 * Prefix of keep refs: one per extension commit that a set (current or in history) names, so
 * no prune (ours or `ostree admin cleanup`) deletes it. Refs are the roots prune keeps.
 */
export const KEEP_REF_PREFIX = 'ostree-sysext/keep';

const PLAIN = /[A-Za-z0-9.-]/;

/**
 * Escapes a name into one ref component: letters, digits, `.` and `-` stay (a leading `.` or
 * `-` does not, since a ref component must start with a letter or digit); every other byte,
 * `_` included, becomes `_XX` (hex). Reversible with {@link unescapeRefComponent}.
 * @example
 * ```ts
 * escapeRefComponent('my_tool@2'); // 'my_5ftool_402'
 * ```
 */
export function escapeRefComponent(name: string): string {
  let out = '';
  const bytes = Buffer.from(name, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const ch = String.fromCharCode(bytes[i]!);
    const plain = bytes[i]! < 0x80 && PLAIN.test(ch) && !(i === 0 && (ch === '.' || ch === '-'));
    out += plain ? ch : `_${bytes[i]!.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * Reverses {@link escapeRefComponent}; returns null for text it could not have produced.
 * @example
 * ```ts
 * unescapeRefComponent('my_5ftool_402'); // 'my_tool@2'
 * ```
 */
export function unescapeRefComponent(component: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < component.length; i++) {
    const ch = component[i]!;
    if (ch === '_') {
      const hex = component.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (PLAIN.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      return null;
    }
  }
  const s = Buffer.from(bytes).toString('utf8');
  return escapeRefComponent(s) === component ? s : null;
}

/**
 * The ref of an installed extension.
 * @example
 * ```ts
 * extensionRef('tools'); // 'ostree-sysext/ext/tools'
 * ```
 */
export function extensionRef(name: string): string {
  return `${EXTENSION_REF_PREFIX}/${escapeRefComponent(name)}`;
}

/**
 * The ref of the deployment set of an OS name.
 * @example
 * ```ts
 * setRef('fedora'); // 'ostree-sysext/set/fedora'
 * ```
 */
export function setRef(osname: string): string {
  return `${SET_REF_PREFIX}/${escapeRefComponent(osname)}`;
}

/**
 * The keep ref of an extension commit a set names.
 * @example
 * ```ts
 * keepRef(commit); // 'ostree-sysext/keep/' + commit
 * ```
 */
export function keepRef(commit: string): string {
  return `${KEEP_REF_PREFIX}/${commit}`;
}

/**
 * The name behind an extension ref, or null if `ref` is not one.
 * @example
 * ```ts
 * nameFromExtensionRef('ostree-sysext/ext/tools'); // 'tools'
 * nameFromExtensionRef('os/x86_64/stable');        // null
 * ```
 */
export function nameFromExtensionRef(ref: string): string | null {
  const prefix = `${EXTENSION_REF_PREFIX}/`;
  if (!ref.startsWith(prefix)) return null;
  const rest = ref.slice(prefix.length);
  if (rest.includes('/')) return null;
  return unescapeRefComponent(rest);
}

/** The config section recording where an installed extension came from. */
export function originSection(name: string): string {
  return `ostree-sysext-origin "${escapeRefComponent(name)}"`;
}
