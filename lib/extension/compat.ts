/**
 * The compatibility rules systemd-sysext applies between an extension's release file and the
 * host's os-release, plus systemd's version ordering of extension names.
 *
 * Mirrors `extension_release_validate()` (src/shared/extension-release.c in systemd 252,
 * src/shared/extension-util.c from 253 on) and `strverscmp_improved()`
 * (src/fundamental/string-util-fundamental.c).
 *
 * @module
 */

import { endianness, machine } from 'node:os';
import * as is from '../binding/args.js';
import { ArgumentError } from '../binding/errors.js';

/** Oldest systemd version whose rules this module implements; the default when none is known. */
export const DEFAULT_SYSTEMD_VERSION = 252;

/** Where an extension is being attached: the host system, an initrd, or a portable service. */
export type ExtensionScope = 'system' | 'initrd' | 'portable';

/** System extensions (`/usr`, `/opt`) or configuration extensions (`/etc`, systemd 254+). */
export type ExtensionKind = 'sysext' | 'confext';

/**
 * Stable codes explaining a {@link CompatibilityResult}.
 *
 * Refusals: `CONFEXT_UNSUPPORTED` (confext before systemd 254), `HOST_ID_MISSING` (the host
 * os-release has no `ID`: systemd-sysext fails the whole merge), `RELEASE_EMPTY` (no fields at
 * all), `SCOPE_MISMATCH`, `ARCHITECTURE_MISMATCH`, `ID_MISSING`, `ID_MISMATCH`,
 * `SYSEXT_LEVEL_MISMATCH` / `CONFEXT_LEVEL_MISMATCH`, `VERSION_ID_MISSING`, `VERSION_ID_MISMATCH`.
 *
 * Acceptances: `ID_ANY` (`ID=_any`), `ROLLING_HOST` (host has neither `VERSION_ID` nor a level),
 * `MATCH` (level or `VERSION_ID` equal), `VERSION_UNCHECKED` (host has a level but no
 * `VERSION_ID` and the extension has no level, so systemd compares nothing).
 */
export type CompatibilityCode =
  | 'CONFEXT_UNSUPPORTED'
  | 'HOST_ID_MISSING'
  | 'RELEASE_EMPTY'
  | 'SCOPE_MISMATCH'
  | 'ARCHITECTURE_MISMATCH'
  | 'ID_MISSING'
  | 'ID_ANY'
  | 'ID_MISMATCH'
  | 'ROLLING_HOST'
  | 'SYSEXT_LEVEL_MISMATCH'
  | 'CONFEXT_LEVEL_MISMATCH'
  | 'VERSION_ID_MISSING'
  | 'VERSION_ID_MISMATCH'
  | 'MATCH'
  | 'VERSION_UNCHECKED';

/** Why an extension was accepted or refused. */
export interface CompatibilityReason {
  /** Stable code; see {@link CompatibilityCode}. */
  code: CompatibilityCode;
  /** The release field that decided, e.g. `ID` or `SYSEXT_LEVEL`; `null` when none did. */
  field: string | null;
  /** What the host requires (host value, scope or architecture); `null` when not applicable. */
  expected: string | null;
  /** What the extension declares; `null` when the field is absent or not applicable. */
  actual: string | null;
  /** Human-readable explanation. */
  message: string;
}

/** The verdict of {@link checkCompatibility}. */
export interface CompatibilityResult {
  /** Whether systemd-sysext would merge the extension. */
  compatible: boolean;
  /** The rule that decided. */
  reason: CompatibilityReason;
}

/**
 * What a particular systemd does where versions differ, as {@link detectSystemd} finds it on
 * the installed systemd or {@link systemdRules} derives it from a version number alone.
 */
export interface SystemdInfo {
  /** Major version, e.g. `257`. */
  version: number;
  /** The full version systemd prints in parentheses (`257.13-1~deb13u1`); `null` when unknown. */
  fullVersion: string | null;
  /**
   * Whether an extension's `ID` may also match a word of the host's `ID_LIKE`. Upstream added
   * this in 258; distributions' 257 stable releases carry it too (Debian's 257.13 does), which is
   * why {@link detectSystemd} asks the installed systemd instead of trusting the major number.
   */
  idLike: boolean;
  /**
   * Whether a merged hierarchy's root (`/usr`, `/opt`, `/etc`) shows the host hierarchy's
   * permission bits (`st_mode & 0777`, 0755 where the host has none), as systemd 256 and later
   * make it; before, it shows systemd's own 0755 (measured: 252, 254 fixed; 257, 262 the host's).
   * The owner is root and there are no xattrs either way. Optional in what callers pass: derived
   * from `version` when absent.
   */
  hostHierarchyMode: boolean;
}

/**
 * The rules of systemd `version` as upstream releases it (no distribution backports): what
 * {@link checkCompatibility} assumes when it is given only a version number.
 *
 * @example
 * ```ts
 * systemdRules(257).idLike; // false (upstream 258 added ID_LIKE matching)
 * ```
 */
export function systemdRules(version: number): SystemdInfo {
  if (!Number.isInteger(version) || version < 1) throw new ArgumentError(`systemd version must be a positive integer, got ${String(version)}`);
  return { version, fullVersion: null, idLike: version >= 258, hostHierarchyMode: version >= 256 };
}

/**
 * The systemd whose rules apply, from the `systemd` and `systemdVersion` options every
 * operation takes (`systemd` wins), validated; `fallback` when neither is given.
 * @internal
 */
export function systemdOption(
  systemd: unknown,
  systemdVersion: unknown,
  fallback: () => SystemdInfo = () => systemdRules(DEFAULT_SYSTEMD_VERSION),
): SystemdInfo {
  if (systemd !== undefined) {
    const s = systemd as Partial<SystemdInfo> | null;
    if (typeof s !== 'object' || s === null || typeof s.idLike !== 'boolean')
      throw new ArgumentError('systemd must be a SystemdInfo ({ version, fullVersion, idLike }), as detectSystemd() returns');
    is.integer('systemd.version', s.version, 200, 10000);
    if (s.fullVersion !== null && s.fullVersion !== undefined && typeof s.fullVersion !== 'string')
      throw new ArgumentError('systemd.fullVersion must be a string or null');
    if (s.hostHierarchyMode !== undefined && typeof s.hostHierarchyMode !== 'boolean') throw new ArgumentError('systemd.hostHierarchyMode must be a boolean');
    const version = s.version as number;
    return { version, fullVersion: s.fullVersion ?? null, idLike: s.idLike, hostHierarchyMode: s.hostHierarchyMode ?? systemdRules(version).hostHierarchyMode };
  }
  if (systemdVersion !== undefined) {
    return systemdRules(is.integer('systemdVersion', systemdVersion, 200, 10000));
  }
  return fallback();
}

/** Options for {@link checkCompatibility}. */
export interface CompatibilityOptions {
  /**
   * systemd version whose rules apply, as upstream releases them ({@link systemdRules}).
   * Default {@link DEFAULT_SYSTEMD_VERSION}; the result depends on the arguments only (pass
   * `systemd: await detectSystemd()` for the installed one). `systemd` takes precedence.
   */
  systemdVersion?: number;
  /**
   * The systemd whose behaviour applies, from {@link detectSystemd} (which also sees a
   * distribution's backports). Takes precedence over `systemdVersion`.
   */
  systemd?: SystemdInfo;
  /** Scope the extension is attached in. Default `'system'` (use `'initrd'` inside an initrd). */
  scope?: ExtensionScope;
  /** Host architecture in systemd's naming. Default {@link systemdArchitecture}(). */
  architecture?: string;
  /** Extension class. Default `'sysext'`. */
  kind?: ExtensionKind;
  /** Extension name, used in messages only. */
  name?: string;
}

const WHITESPACE_RUN = /[ \t\n\r]+/;

/** Splits like systemd's `strv_split(s, WHITESPACE)`: no empty entries. */
function splitWhitespace(value: string): string[] {
  return value.split(WHITESPACE_RUN).filter((word) => word !== '');
}

/** The field value, or `undefined` when absent; own properties only. */
function get(fields: Readonly<Record<string, string>>, name: string): string | undefined {
  return Object.hasOwn(fields, name) ? fields[name] : undefined;
}

/** systemd's `isempty()`: absent or the empty string. */
function isEmpty(value: string | undefined): value is undefined | '' {
  return value === undefined || value === '';
}

/**
 * Decides whether systemd-sysext would merge an extension with release fields
 * `extensionRelease` on a host whose os-release fields are `hostOsRelease`.
 *
 * The checks run in systemd's order and the first that decides is returned:
 * 1. scope (`SYSEXT_SCOPE` / `CONFEXT_SCOPE`, default `system portable`; present but empty
 *    matches nothing);
 * 2. `ARCHITECTURE`, unless empty or `_any`, equals the host's;
 * 3. `ID` present; `ID=_any` accepts at once;
 * 4. `ID` equals the host `ID` (or any word of the host's `ID_LIKE`, where that systemd
 *    matches it: {@link SystemdInfo.idLike});
 * 5. a host with neither `VERSION_ID` nor level accepts (rolling release);
 * 6. if both declare `SYSEXT_LEVEL` (`CONFEXT_LEVEL`) they must be equal, otherwise if the host
 *    has `VERSION_ID` the extension's must equal it.
 *
 * Comparisons are exact and case-sensitive; an empty value counts as absent except for the scope.
 * Both records are fields as returned by `parseRelease`.
 *
 * @example
 * ```ts
 * const host = parseRelease(hostText).fields;
 * const ext = parseRelease(extText).fields;
 * const { compatible, reason } = checkCompatibility(ext, host, { architecture: 'x86-64' });
 * if (!compatible) console.error(`${reason.code}: ${reason.message}`);
 * ```
 */
export function checkCompatibility(
  extensionRelease: Readonly<Record<string, string>>,
  hostOsRelease: Readonly<Record<string, string>>,
  opts: CompatibilityOptions = {},
): CompatibilityResult {
  if (typeof extensionRelease !== 'object' || extensionRelease === null) throw new ArgumentError('extensionRelease must be an object of release fields');
  if (typeof hostOsRelease !== 'object' || hostOsRelease === null) throw new ArgumentError('hostOsRelease must be an object of release fields');
  const systemd = systemdOption(opts.systemd, opts.systemdVersion);
  const version = systemd.version;
  const kind = opts.kind ?? 'sysext';
  const scope = opts.scope ?? 'system';
  const label = opts.name === undefined ? 'extension' : `extension '${opts.name}'`;
  const levelField = kind === 'confext' ? 'CONFEXT_LEVEL' : 'SYSEXT_LEVEL';
  const scopeField = kind === 'confext' ? 'CONFEXT_SCOPE' : 'SYSEXT_SCOPE';

  const refuse = (code: CompatibilityCode, field: string | null, expected: string | null, actual: string | null, message: string): CompatibilityResult => ({
    compatible: false,
    reason: { code, field, expected, actual, message },
  });
  const accept = (code: CompatibilityCode, field: string | null, expected: string | null, actual: string | null, message: string): CompatibilityResult => ({
    compatible: true,
    reason: { code, field, expected, actual, message },
  });

  if (kind === 'confext' && version < 254) {
    return refuse('CONFEXT_UNSUPPORTED', null, null, null, `systemd ${version} has no confext support (added in 254)`);
  }

  // systemd reads these before looking at any extension and fails the whole merge without an ID.
  const hostId = get(hostOsRelease, 'ID');
  if (isEmpty(hostId)) {
    return refuse('HOST_ID_MISSING', 'ID', null, null, 'the host os-release has no ID; systemd-sysext refuses to merge anything');
  }

  if (Object.keys(extensionRelease).length === 0) {
    return refuse('RELEASE_EMPTY', null, null, null, `${label} carries no release data`);
  }

  const extScope = get(extensionRelease, scopeField);
  const scopes = extScope === undefined ? ['system', 'portable'] : splitWhitespace(extScope);
  if (!scopes.includes(scope)) {
    return refuse('SCOPE_MISMATCH', scopeField, scope, extScope ?? null, `${label} is for scope(s) '${scopes.join(' ')}', not '${scope}'`);
  }

  const hostArch = opts.architecture ?? systemdArchitecture();
  const extArch = get(extensionRelease, 'ARCHITECTURE');
  if (!isEmpty(extArch) && extArch !== '_any' && extArch !== hostArch) {
    return refuse('ARCHITECTURE_MISMATCH', 'ARCHITECTURE', hostArch, extArch, `${label} is for architecture '${extArch}', but the host is '${hostArch}'`);
  }

  const extId = get(extensionRelease, 'ID');
  if (isEmpty(extId)) {
    return refuse('ID_MISSING', 'ID', hostId, null, `${label} has no ID (it must name the host OS or be '_any')`);
  }
  if (extId === '_any') {
    return accept('ID_ANY', 'ID', hostId, extId, `${label} declares ID=_any and fits any OS`);
  }

  const hostIdLike = get(hostOsRelease, 'ID_LIKE');
  const likeIds = systemd.idLike && hostIdLike !== undefined ? splitWhitespace(hostIdLike) : [];
  if (extId !== hostId && !likeIds.includes(extId)) {
    const likeNote = likeIds.length > 0 ? ` (like '${likeIds.join(' ')}')` : '';
    return refuse('ID_MISMATCH', 'ID', hostId, extId, `${label} is for OS '${extId}', but the host is '${hostId}'${likeNote}`);
  }

  const hostVersionId = get(hostOsRelease, 'VERSION_ID');
  const hostLevel = get(hostOsRelease, levelField);
  if (isEmpty(hostVersionId) && isEmpty(hostLevel)) {
    return accept('ROLLING_HOST', null, null, null, `the host has neither VERSION_ID nor ${levelField} (rolling release), and the ID matches`);
  }

  const extLevel = get(extensionRelease, levelField);
  if (!isEmpty(hostLevel) && !isEmpty(extLevel)) {
    if (extLevel !== hostLevel) {
      return refuse(
        kind === 'confext' ? 'CONFEXT_LEVEL_MISMATCH' : 'SYSEXT_LEVEL_MISMATCH',
        levelField,
        hostLevel,
        extLevel,
        `${label} is for ${levelField} '${extLevel}', but the host has '${hostLevel}'`,
      );
    }
    return accept('MATCH', levelField, hostLevel, extLevel, `${label} matches the host's ${levelField} '${hostLevel}'`);
  }

  if (!isEmpty(hostVersionId)) {
    const extVersionId = get(extensionRelease, 'VERSION_ID');
    if (isEmpty(extVersionId)) {
      return refuse(
        'VERSION_ID_MISSING',
        'VERSION_ID',
        hostVersionId,
        null,
        `${label} has no VERSION_ID${isEmpty(hostLevel) ? '' : ` or ${levelField}`}, but the host requires VERSION_ID '${hostVersionId}'`,
      );
    }
    if (extVersionId !== hostVersionId) {
      return refuse(
        'VERSION_ID_MISMATCH',
        'VERSION_ID',
        hostVersionId,
        extVersionId,
        `${label} is for VERSION_ID '${extVersionId}', but the host has '${hostVersionId}'`,
      );
    }
    return accept('MATCH', 'VERSION_ID', hostVersionId, extVersionId, `${label} matches the host's VERSION_ID '${hostVersionId}'`);
  }

  // Host has a level but no VERSION_ID, and the extension declares no level: systemd checks nothing.
  return accept(
    'VERSION_UNCHECKED',
    levelField,
    hostLevel ?? null,
    null,
    `${label} declares no ${levelField} and the host has no VERSION_ID, so systemd compares no version`,
  );
}

// uname(2) machine names to systemd architecture names, as in systemd's uname_architecture().
const UNAME_TO_SYSTEMD: Readonly<Record<string, string>> = {
  aarch64: 'arm64',
  aarch64_be: 'arm64-be',
  armv8l: 'arm',
  armv8b: 'arm-be',
  armv7ml: 'arm',
  armv7mb: 'arm-be',
  armv7l: 'arm',
  armv7b: 'arm-be',
  armv6l: 'arm',
  armv6b: 'arm-be',
  armv5tl: 'arm',
  armv5tel: 'arm',
  armv5tejl: 'arm',
  armv5tejb: 'arm-be',
  armv5teb: 'arm-be',
  armv5tb: 'arm-be',
  armv4tl: 'arm',
  armv4tb: 'arm-be',
  armv4l: 'arm',
  armv4b: 'arm-be',
  alpha: 'alpha',
  arc: 'arc',
  arceb: 'arc-be',
  crisv32: 'cris',
  x86_64: 'x86-64',
  i686: 'x86',
  i586: 'x86',
  i486: 'x86',
  i386: 'x86',
  x32: 'x32',
  ia64: 'ia64',
  parisc64: 'parisc64',
  parisc: 'parisc',
  loongarch64: 'loongarch64',
  m68k: 'm68k',
  mips64: 'mips64',
  mips: 'mips',
  nios2: 'nios2',
  ppc64le: 'ppc64-le',
  ppc64: 'ppc64',
  ppcle: 'ppc-le',
  ppc: 'ppc',
  riscv64: 'riscv64',
  riscv32: 'riscv32',
  s390x: 's390x',
  s390: 's390',
  sh5: 'sh64',
  sh4a: 'sh',
  sh4: 'sh',
  sh3: 'sh',
  sh2a: 'sh',
  sh2: 'sh',
  sparc64: 'sparc64',
  sparc: 'sparc',
  tilegx: 'tilegx',
};

/**
 * Maps a Node.js `process.arch` value to systemd's architecture name, taking endianness into
 * account for the bi-endian ones. Returns `undefined` for values systemd has no name for.
 *
 * @example
 * ```ts
 * nodeArchToSystemd('x64');        // 'x86-64'
 * nodeArchToSystemd('ppc64', 'LE'); // 'ppc64-le'
 * ```
 */
export function nodeArchToSystemd(arch: string, byteOrder: 'BE' | 'LE' = endianness()): string | undefined {
  const le = byteOrder === 'LE';
  switch (arch) {
    case 'x64':
      return 'x86-64';
    case 'ia32':
      return 'x86';
    case 'arm64':
      return le ? 'arm64' : 'arm64-be';
    case 'arm':
      return le ? 'arm' : 'arm-be';
    case 'ppc64':
      return le ? 'ppc64-le' : 'ppc64';
    case 'ppc':
      return le ? 'ppc-le' : 'ppc';
    case 's390x':
      return 's390x';
    case 's390':
      return 's390';
    case 'riscv64':
      return 'riscv64';
    case 'loong64':
      return 'loongarch64';
    case 'mips':
      return 'mips';
    case 'mipsel':
      return 'mips-le';
    case 'mips64':
      return 'mips64';
    case 'mips64el':
      return 'mips64-le';
    default:
      return undefined;
  }
}

/**
 * The host architecture in systemd's naming (`x86-64`, `arm64`, `ppc64-le`, …), the value an
 * extension's `ARCHITECTURE=` must equal.
 *
 * Like systemd, this follows the kernel's `uname -m` (`os.machine()`), so a 32-bit Node on a
 * 64-bit kernel still reports the kernel's architecture; a machine name systemd does not know
 * falls back to mapping `process.arch` with {@link nodeArchToSystemd}, then to `process.arch`.
 *
 * @example
 * ```ts
 * systemdArchitecture();          // 'x86-64' on a PC
 * systemdArchitecture('aarch64'); // 'arm64'
 * ```
 */
export function systemdArchitecture(unameMachine: string = machine()): string {
  return UNAME_TO_SYSTEMD[unameMachine] ?? nodeArchToSystemd(process.arch) ?? process.arch;
}

/** systemd's `is_valid_version_char()`: ASCII letters and digits and `~ - ^ .`. */
function isVersionChar(c: number): boolean {
  return isDigit(c) || isAlpha(c) || c === 0x7e || c === 0x2d || c === 0x5e || c === 0x2e;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
function cmp(a: number | boolean, b: number | boolean): -1 | 0 | 1 {
  const x = Number(a);
  const y = Number(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Compares two version strings like systemd's `strverscmp_improved()`; returns -1, 0 or 1.
 *
 * Strings split into numeric and alphabetic segments; numbers compare by value (leading zeros
 * ignored), a `~` segment is older than anything, `-` older than `^` older than `.`, a longer
 * string with more segments is newer, and other characters only separate segments.
 * systemd-sysext stacks extensions in this order, later ones on top.
 *
 * @example
 * ```ts
 * compareVersions('foo-1.9', 'foo-1.10'); // -1
 * compareVersions('123~rc1', '123');      // -1
 * compareVersions('0123', '123');         // 0
 * ```
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  // Work on UTF-8 bytes and stop at NUL, as the C function does.
  const A = Buffer.from(a, 'utf8');
  const B = Buffer.from(b, 'utf8');
  const at = (s: Buffer, i: number): number => (i < s.length ? (s[i] as number) : 0);
  let i = 0;
  let j = 0;

  for (;;) {
    while (at(A, i) !== 0 && !isVersionChar(at(A, i))) i++;
    while (at(B, j) !== 0 && !isVersionChar(at(B, j))) j++;

    // '~' marks pre-releases: the string with it is older.
    if (at(A, i) === 0x7e || at(B, j) === 0x7e) {
      const r = cmp(at(A, i) !== 0x7e, at(B, j) !== 0x7e);
      if (r !== 0) return r;
      i++;
      j++;
    }

    if (at(A, i) === 0 || at(B, j) === 0) return cmp(at(A, i), at(B, j));

    for (const sep of [0x2d /* - */, 0x5e /* ^ */, 0x2e /* . */]) {
      if (at(A, i) === sep || at(B, j) === sep) {
        const r = cmp(at(A, i) !== sep, at(B, j) !== sep);
        if (r !== 0) return r;
        i++;
        j++;
      }
    }

    let ii = i;
    let jj = j;
    if (isDigit(at(A, i)) || isDigit(at(B, j))) {
      while (isDigit(at(A, ii))) ii++;
      while (isDigit(at(B, jj))) jj++;
      // A numeric segment is newer than an empty one.
      let r = cmp(i !== ii, j !== jj);
      if (r !== 0) return r;
      while (at(A, i) === 0x30) i++;
      while (at(B, j) === 0x30) j++;
      r = cmp(ii - i, jj - j);
      if (r !== 0) return r;
      r = cmp(Buffer.compare(A.subarray(i, ii), B.subarray(j, jj)), 0);
      if (r !== 0) return r;
    } else {
      while (isAlpha(at(A, ii))) ii++;
      while (isAlpha(at(B, jj))) jj++;
      const n = Math.min(ii - i, jj - j);
      let r = cmp(Buffer.compare(A.subarray(i, i + n), B.subarray(j, j + n)), 0);
      if (r !== 0) return r;
      r = cmp(ii - i, jj - j);
      if (r !== 0) return r;
    }
    i = ii;
    j = jj;
  }
}

/**
 * Sorts extension names into systemd-sysext's overlay order (lowest layer first) with
 * {@link compareVersions}. Names systemd considers equal are ordered bytewise, so the result is
 * deterministic where systemd's `qsort()` is not. Returns a new array.
 *
 * @example
 * ```ts
 * sortExtensionNames(['foo-1.10', 'foo-1.9', 'bar']); // ['bar', 'foo-1.9', 'foo-1.10']
 * ```
 */
export function sortExtensionNames(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => compareVersions(a, b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
