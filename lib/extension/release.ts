/**
 * Parser and writer for os-release(5) and extension-release files.
 *
 * The parser reproduces systemd's environment-file reader (`parse_env_file()` /
 * `load_env_file_pairs()` in `src/basic/env-file.c`) byte for byte, so a file means here exactly
 * what it means to systemd-sysext; where systemd silently skips something, this module also
 * reports it as a {@link ReleaseProblem}.
 *
 * @module
 */

import { ArgumentError } from '../binding/errors.js';
import { ExtensionError, MAX_RELEASE_BYTES } from './errors.js';

/**
 * Stable codes for problems found while parsing a release file.
 *
 * - `NO_EQUALS`: a line has text but no `=`; systemd ignores the line.
 * - `INVALID_KEY`: the name before `=` is not `[A-Za-z_][A-Za-z0-9_]*`; the assignment is dropped
 *   (systemd keeps it under that name, but no field lookup can ever match it).
 * - `UNTERMINATED_QUOTE`: the file ends inside a quoted value; the value read so far is kept,
 *   as systemd does.
 * - `INVALID_UTF8`: a key or value is not valid UTF-8 (or holds a Unicode non-character);
 *   systemd refuses the whole file, see {@link ParsedRelease.loadable}.
 * - `COMMENT_CONTINUATION`: a comment ends in a backslash. systemd before 254 then treats the
 *   next line as comment too; 254 and later do not.
 * - `DUPLICATE_KEY`: a key is assigned twice; the later assignment wins.
 */
/** The directory of an extension's release file, per kind (relative to the extension's root). */
export const RELEASE_DIRS: Readonly<Record<'sysext' | 'confext', string>> = {
  sysext: 'usr/lib/extension-release.d',
  confext: 'etc/extension-release.d',
};

/**
 * Where an extension's release file is (relative to its root): the one place this library
 * spells `usr/lib/extension-release.d/extension-release.NAME` and its confext twin.
 * @example
 * ```ts
 * releaseFilePath('confext', 'site'); // 'etc/extension-release.d/extension-release.site'
 * ```
 */
export function releaseFilePath(kind: 'sysext' | 'confext', name: string): string {
  return `${RELEASE_DIRS[kind]}/extension-release.${name}`;
}

export type ReleaseProblemCode = 'NO_EQUALS' | 'INVALID_KEY' | 'UNTERMINATED_QUOTE' | 'INVALID_UTF8' | 'COMMENT_CONTINUATION' | 'DUPLICATE_KEY';

/** One problem found by {@link parseRelease}. */
export interface ReleaseProblem {
  /** 1-based physical line where the offending assignment or line starts. */
  line: number;
  /** Stable problem code. */
  code: ReleaseProblemCode;
  /** Human-readable explanation. */
  message: string;
}

/** Options for {@link parseRelease}. */
export interface ParseReleaseOptions {
  /** Throw an `ExtensionError` with code `RELEASE_INVALID` if any problem is found. Default `false`. */
  strict?: boolean;
  /**
   * systemd version whose reading to reproduce. Only comments ending in a backslash differ:
   * before 254 they swallow the following line. Default 252 (the oldest version supported).
   */
  systemdVersion?: number;
  /** File path used in error messages. */
  path?: string;
}

/** The result of {@link parseRelease}. */
export interface ParsedRelease {
  /**
   * Field values after unquoting, keyed by name; a later assignment overrides an earlier one.
   * The object has a `null` prototype, so a field named like an `Object.prototype` member is safe;
   * use `Object.hasOwn()` or `in` to test for a field.
   */
  fields: Record<string, string>;
  /** Everything systemd would skip or read differently, in file order. */
  problems: ReleaseProblem[];
  /**
   * `false` when systemd refuses to load the file at all (invalid UTF-8 in a key or value): an
   * extension with such a release file is never merged, and a host with such an os-release
   * cannot merge anything.
   */
  loadable: boolean;
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * True when `name` can be a field name in a release file (`[A-Za-z_][A-Za-z0-9_]*`, the shell
 * variable syntax systemd's `env_name_is_valid()` accepts).
 *
 * @example
 * ```ts
 * isValidFieldName('SYSEXT_LEVEL'); // true
 * isValidFieldName('1X');           // false
 * ```
 */
export function isValidFieldName(name: string): boolean {
  return FIELD_NAME.test(name);
}

// Parser states, named after the ones in systemd's env-file.c.
const PRE_KEY = 0;
const KEY = 1;
const PRE_VALUE = 2;
const VALUE = 3;
const VALUE_ESCAPE = 4;
const SINGLE_QUOTE_VALUE = 5;
const DOUBLE_QUOTE_VALUE = 6;
const DOUBLE_QUOTE_VALUE_ESCAPE = 7;
const COMMENT = 8;
const COMMENT_ESCAPE = 9;

const CH_NL = 0x0a;
const CH_CR = 0x0d;
const CH_SPACE = 0x20;
const CH_TAB = 0x09;
const CH_HASH = 0x23;
const CH_SEMI = 0x3b;
const CH_EQ = 0x3d;
const CH_BACKSLASH = 0x5c;
const CH_SQUOTE = 0x27;
const CH_DQUOTE = 0x22;
const CH_BACKTICK = 0x60;
const CH_DOLLAR = 0x24;

const isNewline = (c: number): boolean => c === CH_NL || c === CH_CR;
const isWhitespace = (c: number): boolean => c === CH_SPACE || c === CH_TAB || c === CH_NL || c === CH_CR;
const isComment = (c: number): boolean => c === CH_HASH || c === CH_SEMI;
// SHELL_NEED_ESCAPE in systemd: the only characters a backslash escapes inside double quotes.
const isShellNeedEscape = (c: number): boolean => c === CH_DQUOTE || c === CH_BACKSLASH || c === CH_BACKTICK || c === CH_DOLLAR;

// ignoreBOM keeps a leading U+FEFF: systemd does not strip it, so it becomes part of the first key.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 the way systemd's `utf8_is_valid()` accepts it, or returns null. */
function decodeStrictUtf8(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return null;
  }
  return hasNonCharacter(text) ? null : text;
}

/** True if `text` holds a code point systemd's `unichar_is_valid()` rejects (U+FDD0..U+FDEF, U+xFFFE/F). */
function hasNonCharacter(text: string): boolean {
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return true;
  }
  return false;
}

/** Throws the typed errors for input systemd-sysext must never be handed. */
function checkLimits(bytes: Uint8Array, path: string | undefined): void {
  const where = path === undefined ? 'release file' : path;
  if (bytes.length > MAX_RELEASE_BYTES) {
    throw new ExtensionError(
      'RELEASE_TOO_LARGE',
      `${where} is ${bytes.length} bytes, over the ${MAX_RELEASE_BYTES}-byte limit`,
      path === undefined ? {} : { path },
    );
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    throw new ExtensionError(
      'RELEASE_NUL',
      `${where} contains a NUL byte at offset ${nul}; systemd would silently stop reading there`,
      path === undefined ? {} : { path },
    );
  }
}

/**
 * Parses an os-release(5) or extension-release file exactly as systemd reads it.
 *
 * Rules (systemd's env-file reader): lines starting with `#` or `;` are comments; `KEY=VALUE`
 * assigns, with whitespace around the key and before the value ignored. Single quotes take
 * everything literally, across lines. Inside double quotes a backslash escapes only `"` `\` `` ` ``
 * `$` and a newline (continuation); before any other character it stays. Unquoted, a backslash
 * escapes any character, a backslash-newline joins lines, and trailing whitespace is dropped.
 * Quoted and unquoted pieces concatenate (`A="x"y` is `xy`). A later assignment wins. CR counts
 * as a line end, as in systemd.
 *
 * Input over 64 KiB or containing NUL throws an `ExtensionError` (`RELEASE_TOO_LARGE`,
 * `RELEASE_NUL`); a string is measured in UTF-8. Everything else is reported in `problems`, and
 * only throws with `strict` (`RELEASE_INVALID`).
 *
 * @example
 * ```ts
 * const { fields, problems } = parseRelease('ID=fedora\nVERSION_ID="40"\n');
 * fields.VERSION_ID; // '40'
 * problems.length;   // 0
 * ```
 */
export function parseRelease(text: string | Uint8Array, opts: ParseReleaseOptions = {}): ParsedRelease {
  if (typeof text !== 'string' && !(text instanceof Uint8Array))
    throw new ArgumentError(`text must be a string or bytes, got ${text === null ? 'null' : typeof text}`);
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  checkLimits(bytes, opts.path);
  const commentContinues = (opts.systemdVersion ?? 252) < 254;

  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  const problems: ReleaseProblem[] = [];
  let loadable = true;

  let state = PRE_KEY;
  let key: number[] = [];
  let value: number[] = [];
  let lastKeyWhitespace = -1; // index where trailing key whitespace starts, -1 if none
  let lastValueWhitespace = -1;
  let line = 1; // physical line of the byte being read
  let entryLine = 1; // physical line where the current key or comment started

  const push = (): void => {
    if (lastKeyWhitespace !== -1) key.length = lastKeyWhitespace;
    const name = decodeStrictUtf8(Uint8Array.from(key));
    const val = decodeStrictUtf8(Uint8Array.from(value));
    if (name === null || val === null) {
      loadable = false;
      const shown = Buffer.from(key).toString('utf8');
      problems.push({
        line: entryLine,
        code: 'INVALID_UTF8',
        message:
          name === null
            ? `invalid UTF-8 in key '${shown}'; systemd refuses the whole file`
            : `invalid UTF-8 in the value of ${shown}; systemd refuses the whole file`,
      });
      return;
    }
    if (!FIELD_NAME.test(name)) {
      problems.push({
        line: entryLine,
        code: 'INVALID_KEY',
        message: `'${name}' is not a valid field name ([A-Za-z_][A-Za-z0-9_]*); assignment ignored`,
      });
      return;
    }
    if (Object.hasOwn(fields, name)) {
      problems.push({
        line: entryLine,
        code: 'DUPLICATE_KEY',
        message: `${name} is assigned again; this later value wins`,
      });
    }
    fields[name] = val;
  };

  const dropKeyLine = (): void => {
    const shown = Buffer.from(key).toString('utf8').trimEnd();
    problems.push({
      line: entryLine,
      code: 'NO_EQUALS',
      // systemd reads a line starting with '=' as a key named '=...' that never gets its own '='.
      message: shown.startsWith('=') ? `'${shown}' has no key before '='; line ignored` : `'${shown}' has no '='; line ignored`,
    });
  };

  const endEntry = (): void => {
    key = [];
    value = [];
  };

  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;

    switch (state) {
      case PRE_KEY:
        if (isComment(c)) {
          state = COMMENT;
          entryLine = line;
        } else if (!isWhitespace(c)) {
          state = KEY;
          entryLine = line;
          lastKeyWhitespace = -1;
          key.push(c);
        }
        break;

      case KEY:
        if (isNewline(c)) {
          state = PRE_KEY;
          dropKeyLine();
          endEntry();
        } else if (c === CH_EQ) {
          state = PRE_VALUE;
          lastValueWhitespace = -1;
        } else {
          if (!isWhitespace(c)) lastKeyWhitespace = -1;
          else if (lastKeyWhitespace === -1) lastKeyWhitespace = key.length;
          key.push(c);
        }
        break;

      case PRE_VALUE:
        if (isNewline(c)) {
          state = PRE_KEY;
          push();
          endEntry();
        } else if (c === CH_SQUOTE) state = SINGLE_QUOTE_VALUE;
        else if (c === CH_DQUOTE) state = DOUBLE_QUOTE_VALUE;
        else if (c === CH_BACKSLASH) state = VALUE_ESCAPE;
        else if (!isWhitespace(c)) {
          state = VALUE;
          value.push(c);
        }
        break;

      case VALUE:
        if (isNewline(c)) {
          state = PRE_KEY;
          if (lastValueWhitespace !== -1) value.length = lastValueWhitespace;
          push();
          endEntry();
        } else if (c === CH_BACKSLASH) {
          state = VALUE_ESCAPE;
          lastValueWhitespace = -1;
        } else {
          if (!isWhitespace(c)) lastValueWhitespace = -1;
          else if (lastValueWhitespace === -1) lastValueWhitespace = value.length;
          value.push(c);
        }
        break;

      case VALUE_ESCAPE:
        state = VALUE;
        // An escaped line end joins the lines; any other escaped byte is kept literally.
        if (!isNewline(c)) value.push(c);
        break;

      case SINGLE_QUOTE_VALUE:
        if (c === CH_SQUOTE) state = PRE_VALUE;
        else value.push(c);
        break;

      case DOUBLE_QUOTE_VALUE:
        if (c === CH_DQUOTE) state = PRE_VALUE;
        else if (c === CH_BACKSLASH) state = DOUBLE_QUOTE_VALUE_ESCAPE;
        else value.push(c);
        break;

      case DOUBLE_QUOTE_VALUE_ESCAPE:
        state = DOUBLE_QUOTE_VALUE;
        if (isShellNeedEscape(c)) value.push(c);
        else if (c !== CH_NL) value.push(CH_BACKSLASH, c); // like the shell, keep the backslash
        break;

      case COMMENT:
        if (c === CH_BACKSLASH) state = COMMENT_ESCAPE;
        else if (isNewline(c)) state = PRE_KEY;
        break;

      case COMMENT_ESCAPE:
        if (isNewline(c)) {
          problems.push({
            line: entryLine,
            code: 'COMMENT_CONTINUATION',
            message: commentContinues
              ? 'comment ends with a backslash: systemd before 254 reads the next line as comment too'
              : 'comment ends with a backslash: systemd before 254 would read the next line as comment too',
          });
          state = commentContinues ? COMMENT : PRE_KEY;
        } else state = COMMENT;
        break;
    }

    // Count physical lines: LF, or a CR not followed by LF.
    if (c === CH_NL || (c === CH_CR && bytes[i + 1] !== CH_NL)) line++;
  }

  switch (state) {
    case KEY:
      dropKeyLine();
      break;
    case VALUE:
      if (lastValueWhitespace !== -1) value.length = lastValueWhitespace;
      push();
      break;
    case SINGLE_QUOTE_VALUE:
    case DOUBLE_QUOTE_VALUE:
    case DOUBLE_QUOTE_VALUE_ESCAPE: {
      problems.push({
        line: entryLine,
        code: 'UNTERMINATED_QUOTE',
        message: `the file ends inside a ${state === SINGLE_QUOTE_VALUE ? 'single' : 'double'}-quoted value; the text read so far is used`,
      });
      push();
      break;
    }
    case PRE_VALUE:
    case VALUE_ESCAPE:
      push();
      break;
    default:
      break;
  }

  if (opts.strict === true && problems.length > 0) {
    const where = opts.path ?? 'release file';
    throw new ExtensionError(
      'RELEASE_INVALID',
      `${where}: ${problems.map((p) => `line ${p.line}: ${p.message}`).join('; ')}`,
      opts.path === undefined ? { problems: [...problems] } : { path: opts.path, problems: [...problems] },
    );
  }
  return { fields, problems, loadable };
}

// Values made only of these are written unquoted; they mean the same to systemd and to sh.
const SAFE_UNQUOTED = /^[A-Za-z0-9._:/@%+,-]+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Quotes one value for a release file: unquoted when it is plain, else double-quoted with
 * `"` `\` `` ` `` `$` escaped (the only escapes systemd and sh both honour inside double quotes).
 */
function quoteValue(value: string): string {
  if (SAFE_UNQUOTED.test(value)) return value;
  return `"${value.replace(/["\\`$]/g, (ch) => `\\${ch}`)}"`;
}

/**
 * Writes fields as an os-release(5) / extension-release file that {@link parseRelease} (and
 * systemd) reads back to exactly the same fields. Fields are written in the object's key order,
 * one `KEY=VALUE` per line; values are quoted only when needed.
 *
 * Throws an `ExtensionError` with code `INVALID_FIELD` for a name that is not a valid field name
 * or a value that cannot round-trip (NUL, lone UTF-16 surrogates, Unicode non-characters, which
 * systemd rejects), and `RELEASE_TOO_LARGE` if the file would exceed 64 KiB.
 *
 * @example
 * ```ts
 * formatRelease({ ID: 'fedora', VERSION_ID: '40', NAME: 'Fedora Linux' });
 * // 'ID=fedora\nVERSION_ID=40\nNAME="Fedora Linux"\n'
 * ```
 */
export function formatRelease(fields: Readonly<Record<string, string>>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (!FIELD_NAME.test(name)) {
      throw new ExtensionError('INVALID_FIELD', `'${name}' is not a valid field name ([A-Za-z_][A-Za-z0-9_]*)`);
    }
    if (typeof value !== 'string') {
      throw new ExtensionError('INVALID_FIELD', `value of ${name} must be a string, got ${typeof value}`);
    }
    if (value.includes('\0')) {
      throw new ExtensionError('INVALID_FIELD', `value of ${name} contains a NUL character`);
    }
    if (LONE_SURROGATE.test(value) || hasNonCharacter(value)) {
      throw new ExtensionError('INVALID_FIELD', `value of ${name} holds a lone surrogate or a Unicode non-character, which systemd rejects as invalid UTF-8`);
    }
    lines.push(`${name}=${quoteValue(value)}\n`);
  }
  const text = lines.join('');
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_RELEASE_BYTES) {
    throw new ExtensionError('RELEASE_TOO_LARGE', `the release file would be ${size} bytes, over the ${MAX_RELEASE_BYTES}-byte limit`);
  }
  return text;
}
