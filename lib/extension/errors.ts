/**
 * Errors raised by the pure-TypeScript extension layer (release files, names, validation).
 *
 * Native libostree failures use `OstreeError` from `errors.ts`; this module stays separate so the
 * domain code never depends on the native binding.
 *
 * @module
 */

/**
 * The codes this module's own functions raise in an {@link ExtensionError}.
 *
 * - `RELEASE_TOO_LARGE`: a release file is over {@link MAX_RELEASE_BYTES}.
 * - `RELEASE_NUL`: a release file contains a NUL byte.
 * - `RELEASE_INVALID`: strict parsing found problems (listed in `problems`).
 * - `INVALID_FIELD`: a field name or value cannot be written to a release file.
 * - `INVALID_NAME`: an extension name is not a valid image name.
 * - `INVALID_EXTENSION`: validation of an extension tree found errors (listed in `problems`).
 * - `DOWNGRADE`: an update would install content older than what is installed (refused
 *   unless `allowDowngrade`).
 * - `STATE_REFUSED`: a plugin left state files that cannot be committed (devices, FIFOs,
 *   sockets, links leading outside `state/`; listed in `problems`).
 */
export type KnownExtensionErrorCode =
  | 'RELEASE_TOO_LARGE'
  | 'RELEASE_NUL'
  | 'RELEASE_INVALID'
  | 'INVALID_FIELD'
  | 'INVALID_NAME'
  | 'INVALID_EXTENSION'
  | 'BASE_NO_OS_RELEASE'
  | 'UNKNOWN_BUILDER'
  | 'ALREADY_INSTALLED'
  | 'NOT_INSTALLED'
  | 'IN_ACTIVE_SET'
  | 'NOT_IN_HISTORY'
  | 'SET_REFUSED'
  | 'APPLY_FAILED'
  | 'DOWNGRADE'
  | 'STATE_REFUSED';

/**
 * Stable machine-readable code of an {@link ExtensionError}: one of
 * {@link KnownExtensionErrorCode}, or a code defined by a higher layer (store, sets, builders),
 * which documents its own.
 */
// `string & {}` keeps editor completion for the known codes while allowing others.
export type ExtensionErrorCode = KnownExtensionErrorCode | (string & {});

/** Largest release file accepted, in bytes (64 KiB). */
export const MAX_RELEASE_BYTES = 64 * 1024;

/** One problem attached to an {@link ExtensionError}: where, what, and a stable code. */
export interface ExtensionErrorProblem {
  /** Stable code of the problem, e.g. `INVALID_KEY` or `SYMLINK_ESCAPES`. */
  code: string;
  /** Human-readable explanation. */
  message: string;
  /** 1-based line in a release file, when the problem is in one. */
  line?: number;
  /** Path inside the extension tree, when the problem is about one entry. */
  path?: string;
}

/** Options for {@link ExtensionError}. */
export interface ExtensionErrorOptions {
  /** File or tree path the error is about. */
  path?: string;
  /** The individual problems that caused the error. */
  problems?: ExtensionErrorProblem[];
  /** Underlying error, if any. */
  cause?: unknown;
}

/**
 * An error about an extension, its release file or its name, with a stable `code`.
 *
 * @example
 * ```ts
 * try {
 *   parseRelease(text, { strict: true });
 * } catch (err) {
 *   if (isExtensionError(err) && err.code === 'RELEASE_INVALID') {
 *     for (const p of err.problems ?? []) console.error(`line ${p.line}: ${p.message}`);
 *   }
 * }
 * ```
 */
export class ExtensionError extends Error {
  /** Stable code; match on this, never on `message`. */
  readonly code: ExtensionErrorCode;
  /** File or tree path the error is about, when known. */
  readonly path?: string;
  /** The individual problems behind the error, when there are several. */
  readonly problems?: ExtensionErrorProblem[];

  /**
   * Creates an error with a stable code.
   *
   * @param code - stable error code
   * @param message - human-readable explanation
   * @param options - path, problems and cause
   */
  constructor(code: ExtensionErrorCode, message: string, options: ExtensionErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ExtensionError';
    this.code = code;
    if (options.path !== undefined) this.path = options.path;
    if (options.problems !== undefined) this.problems = options.problems;
  }
}

/**
 * True when `value` is an {@link ExtensionError}, optionally with the given code.
 *
 * @example
 * ```ts
 * if (isExtensionError(err, 'RELEASE_TOO_LARGE')) skip(file);
 * ```
 */
export function isExtensionError(value: unknown, code?: ExtensionErrorCode): value is ExtensionError {
  return value instanceof ExtensionError && (code === undefined || value.code === code);
}
