/**
 * Errors raised by the libostree binding. Native code builds {@link OstreeError} through the
 * constructor registered at load time, so every GError arrives as one typed class.
 * @module
 */
import { lstatSync, statfsSync } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';

/** Stable symbolic codes of {@link OstreeError}. New codes may be added; existing ones stay. */
export type OstreeErrorCode =
  | 'FAILED'
  | 'NOT_FOUND'
  | 'EXISTS'
  | 'IS_DIRECTORY'
  | 'NOT_DIRECTORY'
  | 'NOT_EMPTY'
  | 'NO_SPACE'
  | 'INVALID_ARGUMENT'
  | 'INVALID_DATA'
  | 'PERMISSION_DENIED'
  | 'NOT_SUPPORTED'
  | 'READ_ONLY'
  | 'CANCELLED'
  | 'TIMED_OUT'
  | 'LOCKED'
  | 'BUSY'
  | 'HOST_NOT_FOUND'
  | 'CONNECTION_REFUSED'
  | 'NETWORK_ERROR'
  | 'HTTP_ERROR'
  | 'TRANSACTION_IN_PROGRESS'
  | 'CORRUPT'
  | 'CLOSED'
  | 'TOO_LARGE'
  | 'GPG_NO_SIGNATURE'
  | 'GPG_INVALID_SIGNATURE'
  | 'GPG_MISSING_KEY'
  | 'GPG_EXPIRED_SIGNATURE'
  | 'GPG_EXPIRED_KEY'
  | 'GPG_REVOKED_KEY'
  /**
   * A remote asks for a signature type (`sign-verify`, ed25519) this libostree cannot check:
   * built without it (Debian's is built without libsodium). Nothing was pulled into a ref.
   */
  | 'SIGN_UNSUPPORTED'
  | 'ADDON_LOAD_FAILED';

/** GError domain of GIO errors (`G_IO_ERROR`). */
export const G_IO_ERROR_DOMAIN = 'g-io-error-quark';
/** GError domain of libostree's GPG errors (`OSTREE_GPG_ERROR`). */
export const OSTREE_GPG_ERROR_DOMAIN = 'OstreeGpgError';
/** GError domain of errors raised by this binding itself. */
export const BINDING_ERROR_DOMAIN = 'ostree-sysext-binding-error';

const IO_CODES: Record<number, OstreeErrorCode> = {
  0: 'FAILED',
  1: 'NOT_FOUND',
  2: 'EXISTS',
  3: 'IS_DIRECTORY',
  4: 'NOT_DIRECTORY',
  5: 'NOT_EMPTY',
  12: 'NO_SPACE',
  13: 'INVALID_ARGUMENT',
  14: 'PERMISSION_DENIED',
  15: 'NOT_SUPPORTED',
  19: 'CANCELLED',
  21: 'READ_ONLY',
  24: 'TIMED_OUT',
  26: 'BUSY',
  27: 'LOCKED',
  28: 'HOST_NOT_FOUND',
  34: 'CORRUPT', // PARTIAL_INPUT: a truncated object stream while pulling
  35: 'INVALID_DATA',
  37: 'NETWORK_ERROR',
  38: 'NETWORK_ERROR',
  39: 'CONNECTION_REFUSED',
  44: 'NETWORK_ERROR',
};

const GPG_CODES: Record<number, OstreeErrorCode> = {
  0: 'GPG_NO_SIGNATURE',
  1: 'GPG_INVALID_SIGNATURE',
  2: 'GPG_MISSING_KEY',
  3: 'GPG_EXPIRED_SIGNATURE',
  4: 'GPG_EXPIRED_KEY',
  5: 'GPG_REVOKED_KEY',
};

// GFileError numbering (glib/gfileutils.h).
const FILE_CODES: Record<number, OstreeErrorCode> = {
  0: 'EXISTS',
  1: 'IS_DIRECTORY',
  2: 'PERMISSION_DENIED',
  4: 'NOT_FOUND',
  5: 'NOT_DIRECTORY',
  8: 'READ_ONLY',
  12: 'NO_SPACE',
  22: 'PERMISSION_DENIED',
};

const BINDING_CODES: Record<number, OstreeErrorCode> = { 1: 'CLOSED', 2: 'INVALID_ARGUMENT', 3: 'TOO_LARGE' };

/** Where a message of {@link FAILED_MESSAGES} is printed, and its text there (a printf format). */
export interface MessageSource {
  /** The library that prints it (its file is searched for `text`), or `binding` for native/. */
  in: 'libostree' | 'libcurl' | 'libc' | 'libgio' | 'libarchive' | 'libz' | 'binding';
  /** The text as it stands in that library: a printf format (`%s`, `%u`, … filled in for the match). */
  text: string;
  /** The arguments the format is filled with (default `x` for every directive). */
  args?: string[];
}

/**
 * @internal libostree reports several distinct failures as G_IO_ERROR_FAILED (or with no
 * domain code this table knows): then the message tells them apart. One row per case, each with
 * where its wording really comes from (every wording of the versions in use: curl 7 and 8 word
 * theirs differently); test/native/error-messages.test.ts checks that every text maps to its
 * row's code and that, for each library a row names, the installed one prints at least one of
 * its texts, so a rewording there fails a test instead of silently changing a code. Order
 * matters: first match wins.
 */
export const FAILED_MESSAGES: ReadonlyArray<{ pattern: RegExp; code: OstreeErrorCode; from: readonly MessageSource[] }> = [
  {
    pattern: /another transaction is in progress/i,
    code: 'TRANSACTION_IN_PROGRESS',
    from: [{ in: 'libostree', text: 'Failed to prepare transaction, another transaction is in progress' }],
  },
  { pattern: /already exists/i, code: 'EXISTS', from: [{ in: 'libostree', text: 'Remote configuration for "%s" already exists: %s' }] },
  // libostree's fetcher errors are G_IO_ERROR: codeFromGError reads their HTTP status first (HTTP_STATUS).
  { pattern: /server returned http 404|HTTP 404/i, code: 'NOT_FOUND', from: [{ in: 'libostree', text: 'Server returned HTTP %lu', args: ['404'] }] },
  { pattern: /not found/i, code: 'NOT_FOUND', from: [{ in: 'libostree', text: 'Remote "%s" not found' }] },
  {
    pattern: /No such branch/i,
    code: 'NOT_FOUND',
    from: [
      { in: 'libostree', text: "No such branch '%s' in repository summary" },
      { in: 'libostree', text: 'No such branch (%s, %s) in repository summary' },
    ],
  },
  { pattern: /server returned http|HTTP \d{3}/i, code: 'HTTP_ERROR', from: [{ in: 'libostree', text: 'Server returned HTTP %lu', args: ['403'] }] },
  {
    pattern: /corrupted|checksum mismatch|invalid checksum|unexpected end of|truncated|header size \d+ exceeds size/i,
    code: 'CORRUPT',
    from: [
      { in: 'libostree', text: "Corrupted %s object; checksum expected='%s' actual='%s'" },
      { in: 'libostree', text: 'File header size %u exceeds size %lu', args: ['4096', '12'] },
      { in: 'libostree', text: 'Invalid checksum of length %lu expected 32', args: ['5'] },
      { in: 'libz', text: 'unexpected end of file' },
      { in: 'libarchive', text: 'truncated gzip input' },
    ],
  },
  {
    pattern: /no signatures found|gpg verification enabled, but no signatures/i,
    code: 'GPG_NO_SIGNATURE',
    from: [
      { in: 'libostree', text: 'GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)' },
      { in: 'libostree', text: 'No signatures found for commit %s' },
    ],
  },
  // sign-verify on a libostree without ed25519: the pull falls back to its test-only "dummy"
  // type (test/native/sign-ed25519.test.ts provokes it).
  {
    pattern: /dummy signature type is only for ostree testing/i,
    code: 'SIGN_UNSUPPORTED',
    from: [{ in: 'libostree', text: 'dummy signature type is only for ostree testing' }],
  },
  {
    pattern: /timeout was reached|timed out/i,
    code: 'TIMED_OUT',
    from: [
      { in: 'libcurl', text: 'Timeout was reached' },
      { in: 'libcurl', text: 'Connection timed out after %ld milliseconds', args: ['100'] }, // curl 7, 8.14
      { in: 'libcurl', text: '%s timed out after %ld milliseconds', args: ['Connection', '100'] }, // curl 8.1x (sid)
    ],
  },
  {
    pattern: /couldn't resolve host|could not resolve/i,
    code: 'HOST_NOT_FOUND',
    from: [
      { in: 'libcurl', text: "Couldn't resolve host name" }, // curl 7
      { in: 'libcurl', text: 'Could not resolve host: %s' }, // curl 7
      { in: 'libcurl', text: 'Could not resolve hostname' }, // curl 8
      { in: 'libcurl', text: 'Could not resolve: %s' }, // curl 8.1x (sid)
    ],
  },
  {
    pattern: /couldn't connect|could not connect|connection refused|failed to connect/i,
    code: 'CONNECTION_REFUSED',
    from: [
      { in: 'libcurl', text: "Couldn't connect to server" }, // curl 7
      { in: 'libcurl', text: 'Could not connect to server' }, // curl 8
      { in: 'libcurl', text: 'Failed to connect to %s port %u after %ld ms: %s', args: ['127.0.0.1', '9', '0', 'Connection refused'] }, // curl 7, 8.14
      { in: 'libcurl', text: 'Failed to connect to %s:%u%s %s%s%safter %ld ms: %s', args: ['127.0.0.1', '9', '', '', '', '', '0', 'Connection refused'] }, // curl 8.1x
      { in: 'libc', text: 'Connection refused' },
    ],
  },
  { pattern: /no space left on device/i, code: 'NO_SPACE', from: [{ in: 'libc', text: 'No space left on device' }] },
  // The repo's reserve (core.min-free-space-percent/-size) would be used: a full disk to the caller.
  {
    pattern: /min-free-space-(percent|size) .* would be exceeded/i,
    code: 'NO_SPACE',
    from: [
      { in: 'libostree', text: 'min-free-space-size %luMB %s', args: ['500', 'would be exceeded'] },
      { in: 'libostree', text: "min-free-space-percent '%u%%' %s", args: ['3', 'would be exceeded, at least 1 MB requested'] },
    ],
  },
  {
    pattern: /permission denied|operation not permitted/i,
    code: 'PERMISSION_DENIED',
    from: [
      { in: 'libc', text: 'Permission denied' },
      { in: 'libc', text: 'Operation not permitted' },
    ],
  },
  // libostree's repo lock: "Locking repo … failed" with flock's EWOULDBLOCK.
  { pattern: /resource temporarily unavailable/i, code: 'LOCKED', from: [{ in: 'libc', text: 'Resource temporarily unavailable' }] },
];

const FAILED_PATTERNS: Array<[RegExp, OstreeErrorCode]> = FAILED_MESSAGES.map((r) => [r.pattern, r.code]);

// Codes whose message can name a more precise one. libostree 2025.x passes curl's
// CURLE_COULDNT_CONNECT on as G_IO_ERROR_TIMED_OUT with curl 8's wording ("Failed to connect
// … : Could not connect to server"): a refused connection unless the message says it timed out.
const MESSAGE_PATTERNS: Partial<Record<OstreeErrorCode, Array<[RegExp, OstreeErrorCode]>>> = {
  FAILED: FAILED_PATTERNS,
  TIMED_OUT: [[/^(?!.*(timed? ?out|timeout)).*(could(n't| not) connect|connection refused)/is, 'CONNECTION_REFUSED']],
};

// libostree's fetcher reports HTTP 5xx as G_IO_ERROR_BUSY and other statuses as FAILED: the
// status in the message is what a caller can act on.
const HTTP_STATUS = /Server returned HTTP (\d{3})/;

/**
 * Derives the stable symbolic code from a GError's domain, numeric code and message.
 * @example
 * ```ts
 * codeFromGError('g-io-error-quark', 1, 'No such file or directory'); // 'NOT_FOUND'
 * ```
 */
export function codeFromGError(domain: string, gerrorCode: number, message: string): OstreeErrorCode {
  const http = domain === G_IO_ERROR_DOMAIN ? HTTP_STATUS.exec(message) : null;
  if (http) return http[1] === '404' || http[1] === '410' ? 'NOT_FOUND' : 'HTTP_ERROR';
  let code: OstreeErrorCode | undefined;
  if (domain === G_IO_ERROR_DOMAIN) code = IO_CODES[gerrorCode];
  else if (domain === OSTREE_GPG_ERROR_DOMAIN) code = GPG_CODES[gerrorCode];
  else if (domain === 'g-file-error-quark') code = FILE_CODES[gerrorCode];
  else if (domain === BINDING_ERROR_DOMAIN) code = BINDING_CODES[gerrorCode];
  // native/objects.cc reports a damaged repository object as INVALID_DATA "corrupted <type> object …".
  if (code === 'INVALID_DATA' && /(^|: )corrupted \w+ object [0-9a-f]{64}: /.test(message)) return 'CORRUPT';
  const patterns = code === undefined ? FAILED_PATTERNS : MESSAGE_PATTERNS[code];
  if (patterns) for (const [re, c] of patterns) if (re.test(message)) return c;
  return code ?? 'FAILED';
}

/** Details the native layer passes when it builds an {@link OstreeError}. */
export interface OstreeErrorDetails {
  /** GError domain as a string (e.g. `g-io-error-quark`). */
  domain: string;
  /** GError numeric code within its domain. */
  gerrorCode: number;
  /** Overrides the code derived from domain and number. */
  code?: OstreeErrorCode;
  /** What the library was doing, prefixed to the message. */
  operation?: string;
  cause?: unknown;
}

/**
 * An error from libostree (or from this binding's native layer).
 *
 * @example
 * ```ts
 * try {
 *   await repo.resolve('missing/ref');
 * } catch (e) {
 *   if (e instanceof OstreeError && e.code === 'NOT_FOUND') console.log('no such ref');
 * }
 * ```
 */
export class OstreeError extends Error {
  /** Stable symbolic code, e.g. `NOT_FOUND`, `EXISTS`, `LOCKED`, `GPG_NO_SIGNATURE`. */
  readonly code: OstreeErrorCode;
  /** GError domain (e.g. `g-io-error-quark`). */
  readonly domain: string;
  /** GError numeric code in {@link OstreeError.domain}. */
  readonly gerrorCode: number;
  /** The message as libostree wrote it, without the operation prefix. */
  readonly gerrorMessage: string;
  /** What the library was doing when it failed, if known. */
  operation?: string;

  /** Normally called by the native layer; `details` carries the GError domain and code. */
  constructor(message: string, details: OstreeErrorDetails) {
    super(details.operation ? `${details.operation}: ${message}` : message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'OstreeError';
    this.domain = details.domain;
    this.gerrorCode = details.gerrorCode;
    this.gerrorMessage = message;
    this.code = details.code ?? codeFromGError(details.domain, details.gerrorCode, message);
    if (details.operation) this.operation = details.operation;
  }

  /** Returns a copy whose message starts with what the library was doing. */
  withOperation(operation: string): OstreeError {
    const e = new OstreeError(this.gerrorMessage, {
      domain: this.domain,
      gerrorCode: this.gerrorCode,
      code: this.code,
      operation,
      cause: this.cause,
    });
    return e;
  }
}

/** The nearest existing ancestor of `path` (itself when it exists). */
function existingAncestor(path: string): string | null {
  for (let p = resolvePath(path); ; p = dirname(p)) {
    try {
      lstatSync(p);
      return p;
    } catch {
      if (p === dirname(p)) return null;
    }
  }
}

/**
 * A Node file-system error a caller can act on, as an {@link OstreeError} with a stable code;
 * anything else is returned unchanged. `ENOSPC` and `EDQUOT` become `NO_SPACE`. So does an
 * `ENOENT` from `mkdir` whose nearest existing ancestor's file system has no free blocks or
 * inodes left: Node's promise-based recursive `mkdir` reports a full file system that way
 * (the parent it tried to create is missing), which used to surface as "not found".
 * @example
 * ```ts
 * await mkdir(dir, { recursive: true }).catch((e) => { throw fromFsError(e); });
 * ```
 */
export function fromFsError(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const err = e as NodeJS.ErrnoException;
  const what = [err.syscall, err.path].filter(Boolean).join(' ');
  const full = (message: string) => new OstreeError(message, { domain: G_IO_ERROR_DOMAIN, gerrorCode: 12, code: 'NO_SPACE', cause: e });
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
    return full(`no space left on the device${err.code === 'EDQUOT' ? ' (disk quota exceeded)' : ' (or no free inodes)'}${what ? ` (${what})` : ''}`);
  }
  if (err.code === 'ENOENT' && err.syscall === 'mkdir' && typeof err.path === 'string') {
    const at = existingAncestor(dirname(err.path));
    if (at === null) return e;
    try {
      const fs = statfsSync(at);
      // Root's reserved blocks count as free for root; `bavail` is what others can use.
      const noBlocks = (process.getuid?.() === 0 ? fs.bfree : fs.bavail) === 0;
      const noInodes = fs.files > 0 && fs.ffree === 0;
      if (noBlocks || noInodes) {
        return full(`no ${noInodes ? 'free inodes' : 'space'} left on the file system holding ${at} (mkdir ${err.path})`);
      }
    } catch {
      return e;
    }
  }
  return e;
}

/**
 * `mkdir -p` that reports why it failed. Node's `mkdir(path, { recursive: true })` from
 * `fs/promises` answers any failure of the last step (ENOSPC, EDQUOT, EROFS…) with the
 * ENOENT of a `stat` it makes afterwards; this one creates each missing level itself and
 * throws the real error through {@link fromFsError}.
 */
export async function makeDirectory(path: string, mode = 0o755): Promise<void> {
  try {
    await mkdir(path, { mode });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await lstat(path)).isDirectory()) return;
      throw e;
    }
    if (code !== 'ENOENT' || dirname(path) === path) throw fromFsError(e);
    await makeDirectory(dirname(path), mode);
    try {
      await mkdir(path, { mode });
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'EEXIST' && (await lstat(path)).isDirectory()) return;
      throw fromFsError(again);
    }
  }
}

/**
 * True when `e` is an {@link OstreeError}, optionally with the given code.
 * @example
 * ```ts
 * try {
 *   await repo.resolve('missing-ref');
 * } catch (e) {
 *   if (isOstreeError(e, 'NOT_FOUND')) console.log('no such ref');
 *   else throw e;
 * }
 * ```
 */
export function isOstreeError(e: unknown, code?: OstreeErrorCode): e is OstreeError {
  return e instanceof OstreeError && (code === undefined || e.code === code);
}

/**
 * Rejection of an operation whose `signal` was aborted, like Node's own `AbortError`
 * (`name` is `AbortError`, `code` is `ABORT_ERR`); `cause` is the signal's reason.
 */
export class AbortError extends Error {
  /** Always `ABORT_ERR`, as in Node's own APIs. */
  readonly code = 'ABORT_ERR';
  /** An abort error; `options.cause` is usually the signal's `reason`. */
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** A `TypeError` for a bad argument, with Node's `code` convention. */
export class ArgumentError extends TypeError {
  /** `ERR_INVALID_ARG_TYPE` for a wrong type, `ERR_INVALID_ARG_VALUE` for a bad value. */
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';
  /** A bad-argument error; `code` tells a wrong type from a bad value. */
  constructor(message: string, code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' = 'ERR_INVALID_ARG_TYPE') {
    super(message);
    this.name = 'TypeError';
    this.code = code;
  }
}
