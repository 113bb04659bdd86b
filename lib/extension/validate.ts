/**
 * Structural validation of an extension tree (sysext or confext) before it is committed or
 * handed to systemd-sysext, over an abstract {@link TreeReader} so the same checks run on a
 * directory or on an OSTree commit.
 *
 * @module
 */

import { ExtensionError, MAX_RELEASE_BYTES, isExtensionError } from './errors.js';
import { parseRelease, RELEASE_DIRS, type ParsedRelease } from './release.js';
import type { ExtensionKind } from './compat.js';
import { HIERARCHIES } from './hierarchies.js';
import { chaseInTree, type TreeEntry, type TreeReader } from '../tree/reader.js';

const NAME_MAX = 255;
// The longest path (bytes, from the tree root) accepted: checkouts put it below a prefix
// (`ostree/deploy/<os>/extensions/<commit>.0/staged/<name>/`), and PATH_MAX is 4096.
const PATH_MAX_IN_TREE = 3584;

/**
 * Why `name` is not a valid extension (image) name, or `null` if it is valid. The rules are
 * systemd's `image_name_is_valid()`: a non-empty file name of at most 255 bytes, not `.` or `..`,
 * without `/`, NUL or control characters, valid UTF-8, and not starting with `.#` (a temporary file).
 *
 * @example
 * ```ts
 * extensionNameProblem('foo-1.2'); // null
 * extensionNameProblem('a/b');     // "contains '/'"
 * ```
 */
export function extensionNameProblem(name: string): string | null {
  if (typeof name !== 'string') return 'is not a string';
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return `is '${name}'`;
  if (name.includes('/')) return "contains '/'";
  if (name.includes('\0')) return 'contains NUL';
  if (/[\x00-\x1f\x7f]/.test(name)) return 'contains a control character';
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(name)) return 'is not valid Unicode';
  for (const ch of name) {
    const cp = ch.codePointAt(0) ?? 0;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return 'contains a Unicode non-character';
  }
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX) return `is longer than ${NAME_MAX} bytes`;
  if (name.startsWith('.#')) return "starts with '.#' (reserved for temporary files)";
  return null;
}

/**
 * True when `name` is a valid extension name; see {@link extensionNameProblem} for the rules.
 *
 * @example
 * ```ts
 * isValidExtensionName('foo'); // true
 * isValidExtensionName('..');  // false
 * ```
 */
export function isValidExtensionName(name: string): boolean {
  return extensionNameProblem(name) === null;
}

/**
 * Stable codes for problems found by {@link validateExtension}.
 *
 * Errors (systemd would refuse or mis-merge the extension): `NOT_A_TREE`, `INVALID_NAME`,
 * `RELEASE_MISSING`, `RELEASE_DIR_NOT_DIRECTORY`, `RELEASE_NOT_FILE`, `MULTIPLE_RELEASE_FILES`,
 * `NAME_MISMATCH`, `MIXED_KIND`, `RELEASE_TOO_LARGE`, `RELEASE_NUL`, `RELEASE_UNLOADABLE`,
 * `RELEASE_ID_MISSING`, `RELEASE_SCOPE_EMPTY`, `OS_RELEASE_PRESENT`, `HIERARCHY_NOT_DIRECTORY`,
 * `SPECIAL_FILE` (a device, FIFO or socket; overlay whiteouts are legal), `NAME_TOO_LONG`
 * (over 255 bytes), `PATH_TOO_LONG`.
 *
 * Warnings: `IGNORED_CONTENT` (outside the merged hierarchies; systemd ignores it),
 * `RELEASE_SYNTAX` (a line systemd skips or reads oddly), `SYMLINK_ESCAPES` (a relative
 * target climbing above the root; symlinks may otherwise point anywhere), `SETUID` (an error
 * with `strict`).
 */
export type ValidationCode =
  | 'NOT_A_TREE'
  | 'INVALID_NAME'
  | 'RELEASE_MISSING'
  | 'RELEASE_DIR_NOT_DIRECTORY'
  | 'RELEASE_NOT_FILE'
  | 'MULTIPLE_RELEASE_FILES'
  | 'NAME_MISMATCH'
  | 'MIXED_KIND'
  | 'RELEASE_TOO_LARGE'
  | 'RELEASE_NUL'
  | 'RELEASE_UNLOADABLE'
  | 'RELEASE_ID_MISSING'
  | 'RELEASE_SCOPE_EMPTY'
  | 'RELEASE_SYNTAX'
  | 'OS_RELEASE_PRESENT'
  | 'HIERARCHY_NOT_DIRECTORY'
  | 'IGNORED_CONTENT'
  | 'SYMLINK_ESCAPES'
  | 'SPECIAL_FILE'
  | 'NAME_TOO_LONG'
  | 'PATH_TOO_LONG'
  | 'SETUID';

/** One finding of {@link validateExtension}. */
export interface ValidationProblem {
  /** Stable code; see {@link ValidationCode}. */
  code: ValidationCode;
  /** `error`: the extension must not be used; `warning`: it works, but something is off. */
  severity: 'error' | 'warning';
  /** Tree path the problem is about (`''` for the tree itself). */
  path: string;
  /** Human-readable explanation. */
  message: string;
}

/** Options for {@link validateExtension}. */
export interface ValidateExtensionOptions {
  /**
   * The image name the extension will be installed under (its directory name in
   * `/var/lib/extensions`). Default: taken from the single release file.
   */
  name?: string;
  /** Treat setuid/setgid files as errors rather than warnings. Default `false`. */
  strict?: boolean;
  /** systemd version for reading the release file (see `parseRelease`). Default 252. */
  systemdVersion?: number;
  /** Aborts the walk; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The result of {@link validateExtension}. */
export interface ValidationResult {
  /** `sysext` or `confext`, from the release file found (or guessed from the content if none). */
  kind: ExtensionKind;
  /**
   * The extension's name: `opts.name`, or the one in the release file name. `''` only when it
   * cannot be told (no or several release files), which is always reported as an error.
   */
  name: string;
  /** Fields of the release file (empty when it is missing or unreadable). */
  release: Record<string, string>;
  /** Every finding, errors and warnings, in tree order. */
  problems: ValidationProblem[];
  /** True when no problem has severity `error`. */
  ok: boolean;
}

const RELEASE_PREFIX = 'extension-release.';

/**
 * Why a symlink at `linkPath` pointing to `target` probably does not do what its author meant,
 * or null. Symlinks may point anywhere (they resolve in the merged root at run time, and
 * systemd merges them as entries); only a relative target climbing above the root is worth a
 * warning, since `..` stops at `/` there.
 */
function symlinkOddity(linkPath: string, target: string): string | null {
  if (target.startsWith('/')) return null;
  let depth = linkPath.split('/').length - 1;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (depth === 0) return `points to '${target}', which climbs above the root ('..' stops at '/' in the merged system)`;
      depth--;
    } else depth++;
  }
  return null;
}

/**
 * Checks that a tree is a well-formed systemd extension, without assuming it is a directory.
 *
 * A sysext has exactly one `usr/lib/extension-release.d/extension-release.<NAME>` and content
 * only under `usr/` and `opt/`; a confext has `etc/extension-release.d/extension-release.<NAME>`
 * and content only under `etc/`. Also refused: both kinds at once, `usr/lib/os-release`, a release
 * file named differently from the image (systemd accepts that only with the
 * `user.extension-release.strict=false` xattr, which trees built here never carry), symlinks
 * leaving the merged hierarchies, device nodes, FIFOs and sockets. Content elsewhere and
 * setuid/setgid files are warnings.
 *
 * @example
 * ```ts
 * const v = await validateExtension(directoryReader(dir), { name: 'htop' });
 * for (const p of v.problems) console.log(`${p.severity} ${p.code} ${p.path}: ${p.message}`);
 * if (!v.ok) process.exitCode = 1;
 * ```
 */
export async function validateExtension(reader: TreeReader, opts: ValidateExtensionOptions = {}): Promise<ValidationResult> {
  opts.signal?.throwIfAborted();
  const problems: ValidationProblem[] = [];
  const error = (code: ValidationCode, path: string, message: string): void => {
    problems.push({ code, severity: 'error', path, message });
  };
  const warning = (code: ValidationCode, path: string, message: string): void => {
    problems.push({ code, severity: 'warning', path, message });
  };
  const done = (kind: ExtensionKind, name: string, release: Record<string, string>): ValidationResult => ({
    kind,
    name,
    release,
    problems,
    ok: !problems.some((p) => p.severity === 'error'),
  });

  let name: string = opts.name ?? '';
  if (opts.name !== undefined) {
    const why = extensionNameProblem(opts.name);
    if (why !== null) error('INVALID_NAME', '', `extension name ${JSON.stringify(opts.name)} ${why}`);
  }

  const root = await reader.stat('');
  if (root === null || root.type !== 'dir') {
    error('NOT_A_TREE', '', root === null ? 'the extension tree does not exist' : `the extension root is a ${root.type}, not a directory`);
    return done('sysext', name, Object.create(null) as Record<string, string>);
  }
  const top = (await reader.list('')) ?? [];
  const topNames = new Set(top.map((e) => e.name));

  // Find the release files of both kinds.
  const found: Record<ExtensionKind, TreeEntry[]> = { sysext: [], confext: [] };
  for (const kind of ['sysext', 'confext'] as const) {
    // systemd chases the release directory inside the image (an extension's usr may be a symlink).
    const dirEntry = await chaseInTree(reader, RELEASE_DIRS[kind]);
    if (dirEntry === null) continue;
    const dir = dirEntry.path;
    if (dirEntry.type !== 'dir') {
      error('RELEASE_DIR_NOT_DIRECTORY', dir, `${dir} is a ${dirEntry.type}, not a directory`);
      continue;
    }
    found[kind] = ((await reader.list(dir)) ?? []).filter((e) => e.name.startsWith(RELEASE_PREFIX));
  }

  let kind: ExtensionKind;
  if (found.sysext.length > 0 && found.confext.length > 0) {
    error('MIXED_KIND', '', `the tree has both ${RELEASE_DIRS.sysext} and ${RELEASE_DIRS.confext} release files; an extension is either a sysext or a confext`);
    kind = 'sysext';
  } else if (found.confext.length > 0) kind = 'confext';
  else if (found.sysext.length > 0) kind = 'sysext';
  else kind = topNames.has('etc') && !topNames.has('usr') && !topNames.has('opt') ? 'confext' : 'sysext';

  // Pick the release file for the image name, as systemd's open_extension_release() does.
  const candidates = found[kind];
  let chosen: TreeEntry | undefined;
  const releaseDir = RELEASE_DIRS[kind];
  if (candidates.length === 0) {
    const expected = `${releaseDir}/${RELEASE_PREFIX}${name === '' ? '<NAME>' : name}`;
    error('RELEASE_MISSING', releaseDir, `no release file: a ${kind} needs ${expected}`);
  } else if (opts.name !== undefined) {
    chosen = candidates.find((e) => e.name === RELEASE_PREFIX + name);
    if (chosen === undefined) {
      const others = candidates.map((e) => e.name).join(', ');
      error(
        'NAME_MISMATCH',
        releaseDir,
        `the image is named '${name}' but the release file is ${others}; systemd 252 accepts a renamed image only ` +
          `if its release file carries the xattr user.extension-release.strict=false. Rename the release file to ${RELEASE_PREFIX}${name}` +
          ' or install the extension under the name in its release file',
      );
      if (candidates.length === 1) chosen = candidates[0];
    }
  } else if (candidates.length === 1) {
    chosen = candidates[0] as TreeEntry;
    name = chosen.name.slice(RELEASE_PREFIX.length);
    const why = extensionNameProblem(name);
    if (why !== null) error('INVALID_NAME', chosen.path, `the name in the release file name, ${JSON.stringify(name)}, ${why}`);
  }
  if (candidates.length > 1) {
    for (const extra of candidates.filter((e) => e !== chosen)) {
      error(
        'MULTIPLE_RELEASE_FILES',
        extra.path,
        `an extension has exactly one release file; ${extra.name} is ${chosen ? `extra next to ${chosen.name}` : 'one of several'}`,
      );
    }
  }

  let release: Record<string, string> = Object.create(null) as Record<string, string>;
  if (chosen !== undefined) {
    const parsed = await readRelease(reader, chosen, opts.systemdVersion, error, warning);
    if (parsed !== null) {
      release = parsed.fields;
      if (parsed.loadable) {
        if ((release.ID ?? '') === '') {
          error('RELEASE_ID_MISSING', chosen.path, "the release file has no ID (set the host's ID, or ID=_any); systemd never merges it");
        }
        const scopeField = kind === 'confext' ? 'CONFEXT_SCOPE' : 'SYSEXT_SCOPE';
        const scope = release[scopeField];
        if (scope !== undefined && /^[ \t\n\r]*$/.test(scope)) {
          error('RELEASE_SCOPE_EMPTY', chosen.path, `${scopeField} is set but empty, so the extension fits no scope; remove it or list scopes`);
        }
      }
    }
  }

  // Top level: only the merged hierarchies count; systemd ignores everything else.
  const hierarchies: readonly string[] = HIERARCHIES[kind];
  for (const entry of top) {
    if (hierarchies.includes(entry.name)) {
      // A symlink is chased inside the extension (systemd uses its target as the layer).
      if (entry.type !== 'dir' && entry.type !== 'symlink') {
        error('HIERARCHY_NOT_DIRECTORY', entry.path, `/${entry.name} must be a directory (or a symlink to one) in an extension, not a ${entry.type}`);
      }
    } else {
      warning(
        'IGNORED_CONTENT',
        entry.path,
        `a ${kind} only merges ${hierarchies.map((h) => `/${h}`).join(' and ')}; /${entry.name} is ignored by systemd-sysext`,
      );
    }
  }

  if ((await chaseInTree(reader, 'usr/lib/os-release')) !== null) {
    error(
      'OS_RELEASE_PRESENT',
      'usr/lib/os-release',
      "an extension must not carry usr/lib/os-release (it would replace the host's); systemd-sysext refuses it",
    );
  }

  // Walk the merged hierarchies depth-first, in name order, so problems come in tree order.
  const check = (entry: TreeEntry): void => {
    const nameBytes = Buffer.byteLength(entry.name);
    if (nameBytes > NAME_MAX) error('NAME_TOO_LONG', entry.path, `the name is ${nameBytes} bytes; file systems hold at most ${NAME_MAX}`);
    const pathBytes = Buffer.byteLength(entry.path);
    if (pathBytes > PATH_MAX_IN_TREE)
      error('PATH_TOO_LONG', entry.path.slice(0, 200) + '…', `the path is ${pathBytes} bytes; at most ${PATH_MAX_IN_TREE} can be checked out`);
    switch (entry.type) {
      case 'symlink': {
        const why = symlinkOddity(entry.path, entry.target ?? '');
        if (why !== null) warning('SYMLINK_ESCAPES', entry.path, `symlink ${why}`);
        break;
      }
      case 'special':
        // An overlayfs whiteout (char 0:0) is legal: it hides the path in the layers below.
        if (!entry.whiteout) {
          error('SPECIAL_FILE', entry.path, 'device nodes, FIFOs and sockets are not allowed in an extension (OSTree cannot store them)');
        }
        break;
      case 'file':
        if ((entry.mode & 0o6000) !== 0) {
          const bits = [(entry.mode & 0o4000) !== 0 ? 'setuid' : '', (entry.mode & 0o2000) !== 0 ? 'setgid' : ''].filter((b) => b !== '').join(' and ');
          const message = `file is ${bits} (mode ${entry.mode.toString(8).padStart(4, '0')})`;
          if (opts.strict === true) error('SETUID', entry.path, message);
          else warning('SETUID', entry.path, message);
        }
        break;
      default:
        break;
    }
  };
  const visit = async (entry: TreeEntry): Promise<void> => {
    check(entry);
    if (entry.type !== 'dir') return;
    opts.signal?.throwIfAborted();
    for (const child of (await reader.list(entry.path)) ?? []) await visit(child);
  };
  for (const entry of top) {
    if (entry.type !== 'dir' || !hierarchies.includes(entry.name)) continue;
    check(entry);
    const all = reader.walk === undefined ? null : await reader.walk(entry.path);
    if (all === null) {
      for (const child of (await reader.list(entry.path)) ?? []) await visit(child);
    } else {
      opts.signal?.throwIfAborted();
      for (const e of all) check(e);
    }
  }

  return done(kind, name, release);
}

/** Reads and parses one release file, turning every failure into a validation problem. */
async function readRelease(
  reader: TreeReader,
  entry: TreeEntry,
  systemdVersion: number | undefined,
  error: (code: ValidationCode, path: string, message: string) => void,
  warning: (code: ValidationCode, path: string, message: string) => void,
): Promise<ParsedRelease | null> {
  if (entry.type !== 'file') {
    error('RELEASE_NOT_FILE', entry.path, `the release file is a ${entry.type}, not a regular file`);
    return null;
  }
  if ((entry.size ?? 0) > MAX_RELEASE_BYTES) {
    error('RELEASE_TOO_LARGE', entry.path, `the release file is ${entry.size} bytes, over the ${MAX_RELEASE_BYTES}-byte limit`);
    return null;
  }
  const data = await reader.readFile(entry.path, MAX_RELEASE_BYTES + 1);
  if (data === null) {
    error('RELEASE_NOT_FILE', entry.path, 'the release file could not be read as a regular file');
    return null;
  }
  let parsed: ParsedRelease;
  try {
    parsed = parseRelease(data, { path: entry.path, ...(systemdVersion === undefined ? {} : { systemdVersion }) });
  } catch (err) {
    if (isExtensionError(err, 'RELEASE_TOO_LARGE') || isExtensionError(err, 'RELEASE_NUL')) {
      error(err.code === 'RELEASE_NUL' ? 'RELEASE_NUL' : 'RELEASE_TOO_LARGE', entry.path, err.message);
      return null;
    }
    throw err;
  }
  for (const p of parsed.problems) {
    if (p.code === 'INVALID_UTF8') {
      error('RELEASE_UNLOADABLE', entry.path, `line ${p.line}: ${p.message}`);
    } else {
      warning('RELEASE_SYNTAX', entry.path, `line ${p.line}: ${p.message} (${p.code})`);
    }
  }
  return parsed;
}

/**
 * Like {@link validateExtension}, but throws an `ExtensionError` with code `INVALID_EXTENSION`
 * (its `problems` listing the errors) unless the tree is valid; resolves to the validation.
 *
 * @example
 * ```ts
 * const { name, kind } = await assertValidExtension(directoryReader(dir));
 * ```
 */
export async function assertValidExtension(reader: TreeReader, opts: ValidateExtensionOptions = {}): Promise<ValidationResult> {
  const result = await validateExtension(reader, opts);
  if (!result.ok) {
    const errors = result.problems.filter((p) => p.severity === 'error');
    throw new ExtensionError(
      'INVALID_EXTENSION',
      `invalid extension${result.name === '' ? '' : ` '${result.name}'`}: ${errors.map((p) => `${p.path || '.'}: ${p.message}`).join('; ')}`,
      { problems: errors.map(({ code, message, path }) => ({ code, message, path })) },
    );
  }
  return result;
}

/** Where {@link findOsRelease} found the os-release of a tree. */
export interface OsReleaseFile {
  /** The path it was looked up under: `etc/os-release` or `usr/lib/os-release`. */
  source: 'etc/os-release' | 'usr/lib/os-release';
  /** The tree path the file was read from, after following symlinks inside the tree. */
  path: string;
  /** The parsed file. */
  release: ParsedRelease;
}

/**
 * Reads a base tree's os-release as systemd does for the host: `etc/os-release`, falling back to
 * `usr/lib/os-release` when the first does not exist, following symlinks inside the tree (Debian's
 * `etc/os-release` is a link to `../usr/lib/os-release`). Resolves to `null` when neither is a
 * readable regular file.
 *
 * @example
 * ```ts
 * const host = await findOsRelease(directoryReader('/'));
 * const verdict = checkCompatibility(ext.release, host?.release.fields ?? {});
 * ```
 */
export async function findOsRelease(reader: TreeReader, opts: { systemdVersion?: number } = {}): Promise<OsReleaseFile | null> {
  for (const source of ['etc/os-release', 'usr/lib/os-release'] as const) {
    const entry = await chaseInTree(reader, source);
    if (entry === null) continue;
    if (entry.type !== 'file') return null;
    const data = await reader.readFile(entry.path, MAX_RELEASE_BYTES + 1);
    if (data === null) return null;
    return {
      source,
      path: entry.path,
      release: parseRelease(data, { path: entry.path, ...(opts.systemdVersion === undefined ? {} : { systemdVersion: opts.systemdVersion }) }),
    };
  }
  return null;
}
