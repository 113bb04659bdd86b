/**
 * What the command prints: exit codes, one-line errors, `--json` envelopes, and progress
 * (a bar on a terminal, plain lines otherwise), all kept apart from the library.
 * @module
 */
import { isExtensionError } from '../extension/errors.js';
import { AbortError, ArgumentError, fromFsError, isOstreeError } from '../binding/errors.js';
import type { PullProgress } from '../binding/pull.js';

/** Exit codes of `ostree-sysext` (documented in docs/cli.md). */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** The operation failed (I/O, libostree, systemd-sysext, invalid extension, …). */
  FAILURE: 1,
  /** Bad command line: unknown command or option, missing argument. */
  USAGE: 2,
  /** Refused: plugins vetoed the set (or warned without --force), incompatible, in use, already installed. */
  REFUSED: 3,
  /** Not found: no such extension, set, remote, ref, builder or deployment. */
  NOT_FOUND: 4,
  /** Locked: another apply or `ostree admin` holds the sysroot lock. */
  LOCKED: 5,
  /** Verification failed: a bad or missing signature, or fsck found problems. */
  VERIFY_FAILED: 6,
  /** Interrupted (SIGINT/SIGTERM) or aborted. */
  INTERRUPTED: 130,
} as const;

/** An error the command raises itself, with its exit code and a hint. */
export class CliError extends Error {
  /** The exit code to leave with. */
  readonly exitCode: number;
  /** A stable code for `--json` (`USAGE`, `NOT_FOUND`, …). */
  readonly code: string;
  /** What to try. */
  readonly hint: string | undefined;
  /** An error ending the command with `exitCode`. */
  constructor(message: string, exitCode: number, code: string, hint?: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
    this.hint = hint;
  }
}

/** A usage error (exit 2). */
export function usage(message: string, hint?: string): CliError {
  return new CliError(message, EXIT.USAGE, 'USAGE', hint);
}

const HINTS: Record<string, string> = {
  SET_REFUSED: "see the current set's votes with `ostree-sysext check --vote`; warnings (not vetoes) pass with --force",
  NO_SPACE: 'free space or inodes on the file system of the sysroot or repository, then run the same command again',
  IN_ACTIVE_SET: 'undeploy it first (`ostree-sysext undeploy NAME`) or pass --force',
  ALREADY_INSTALLED: 'pass --replace to install the new content over it',
  NOT_INSTALLED: 'see the installed extensions with `ostree-sysext list`',
  NOT_IN_HISTORY: 'see the history with `ostree-sysext status --json`',
  UNKNOWN_BUILDER: 'load it with --module FILE (a module exporting the builder)',
  INVALID_EXTENSION: 'fix the tree (one extension-release file, content only under usr/ and opt/, or etc/ for a confext)',
  LOCKED: 'another ostree-sysext or `ostree admin` is running; retry later or pass --wait',
  PERMISSION_DENIED: 'run as root, or point --sysroot/--repo at a directory you can write',
  NOT_FOUND: 'check the name, and --sysroot/--repo',
  APPLY_FAILED: 'run with OSTREE_SYSEXT_DEBUG=1 for details',
  CONFEXT_UNSUPPORTED: 'undeploy the confexts, or apply with --no-refresh on a host whose systemd is older than 254',
  BASE_NO_OS_RELEASE: 'give a base with usr/lib/os-release or etc/os-release (--base DIR|REV)',
  HOST_NOT_FOUND: 'check the remote URL (`ostree-sysext remote list`) and the network',
  CONNECTION_REFUSED: 'check that the server runs and the remote URL (`ostree-sysext remote list`)',
  NETWORK_ERROR: 'check the remote URL and the network, then retry',
  HTTP_ERROR: 'check the remote URL (`ostree-sysext remote list`) and that the ref exists',
  SIGN_UNSUPPORTED:
    "the remote requires ed25519 signatures (sign-verify), which this libostree cannot check (Debian's is built without libsodium): use a GPG-signed remote, or a libostree with ed25519",
  GPG_NO_SIGNATURE: 'the commit is unsigned; ask the vendor for a signed one, or add the remote with --no-gpg-verify if you trust it',
  GPG_MISSING_KEY: "import the vendor's key: `ostree-sysext remote add NAME URL --gpg-import KEYFILE --replace`",
  GPG_INVALID_SIGNATURE: 'the content was not signed by a trusted key; do not use it',
  GPG_EXPIRED_KEY: 'ask the vendor for its renewed key and import it',
  GPG_REVOKED_KEY: 'the signing key was revoked; do not use this content',
};

/** What the library's parameter names are called on the command line. */
const ARGUMENT_WORDS: Record<string, string> = {
  name: 'the name',
  names: 'the names',
  url: 'the URL',
  rev: 'the revision',
  to: 'the set id',
  osname: 'the OS name',
  remote: 'the remote name',
  ref: 'the ref',
  commit: 'the commit',
  path: 'the path',
  directory: 'the directory',
};

/**
 * The message of an error for the command line: an {@link ArgumentError} from the library
 * starts with its parameter's name (`name must not be empty`), which says nothing to a person
 * at a shell; it is replaced by what the command calls it.
 */
export function messageFor(e: unknown): string {
  const message = oneLine(e);
  if (!(e instanceof ArgumentError)) return message;
  return message.replace(/^([A-Za-z]+)(?:\[\d+\])?(?:\.[A-Za-z.]+)? (?=must |is |has |contains )/, (_, p: string) => `${ARGUMENT_WORDS[p] ?? 'an argument'} `);
}

/** Exit code, stable code and hint for any error. */
export function classify(err: unknown): { exitCode: number; code: string; hint: string | undefined } {
  const e = fromFsError(err); // ENOSPC/EDQUOT: NO_SPACE
  if (e instanceof CliError) return { exitCode: e.exitCode, code: e.code, hint: e.hint };
  if (e instanceof AbortError || (e as Error)?.name === 'AbortError') return { exitCode: EXIT.INTERRUPTED, code: 'ABORTED', hint: undefined };
  if (e instanceof ArgumentError) return { exitCode: EXIT.USAGE, code: 'USAGE', hint: 'see --help' };
  if (isExtensionError(e)) {
    const code = e.code;
    const exitCode =
      code === 'SET_REFUSED' || code === 'IN_ACTIVE_SET' || code === 'ALREADY_INSTALLED' || code === 'CONFEXT_UNSUPPORTED'
        ? EXIT.REFUSED
        : code === 'NOT_INSTALLED' || code === 'NOT_IN_HISTORY' || code === 'UNKNOWN_BUILDER'
          ? EXIT.NOT_FOUND
          : EXIT.FAILURE;
    return { exitCode, code, hint: HINTS[code] };
  }
  if (isOstreeError(e)) {
    const code = e.code;
    const exitCode =
      code === 'LOCKED'
        ? EXIT.LOCKED
        : code === 'NOT_FOUND'
          ? EXIT.NOT_FOUND
          : code === 'CANCELLED'
            ? EXIT.INTERRUPTED
            : code.startsWith('GPG_') || code === 'SIGN_UNSUPPORTED'
              ? EXIT.VERIFY_FAILED
              : EXIT.FAILURE;
    return { exitCode, code, hint: HINTS[code] };
  }
  const errno = (e as NodeJS.ErrnoException)?.code;
  if (errno === 'EACCES' || errno === 'EPERM') return { exitCode: EXIT.FAILURE, code: 'PERMISSION_DENIED', hint: HINTS.PERMISSION_DENIED };
  if (errno === 'ENOENT') return { exitCode: EXIT.NOT_FOUND, code: 'NOT_FOUND', hint: HINTS.NOT_FOUND };
  return { exitCode: EXIT.FAILURE, code: 'FAILED', hint: 'run with OSTREE_SYSEXT_DEBUG=1 for details' };
}

/** The error's message on one line: its lines joined with `; `. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg
    .split('\n')
    .map((l) => l.trim().replace(/^- /, ''))
    .filter(Boolean)
    .join('; ')
    .replace(/:; /g, ': ');
}

/** Human size: `1.5 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Where and how the command writes. */
export class Output {
  /** `--json`: one JSON document on stdout, nothing else there. */
  readonly json: boolean;
  /** `--quiet`: no informational text and no progress. */
  readonly quiet: boolean;
  /** stderr, where progress goes, is a terminal: progress is drawn as a bar. */
  readonly tty: boolean;
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream;

  /** Output for the given streams and flags. */
  constructor(opts: { json: boolean; quiet: boolean; stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream }) {
    this.json = opts.json;
    this.quiet = opts.quiet;
    const out = opts.stdout ?? process.stdout;
    this.#out = out;
    this.#err = opts.stderr ?? process.stderr;
    this.tty = Boolean((this.#err as NodeJS.WriteStream).isTTY) && !opts.json;
  }

  /** A line of human output on stdout (not with --json or --quiet). */
  info(line = ''): void {
    if (!this.json && !this.quiet) this.#out.write(line + '\n');
  }

  /** A line of the command's result on stdout (not with --json; kept with --quiet). */
  result(line = ''): void {
    if (!this.json) this.#out.write(line + '\n');
  }

  /** A warning on stderr (kept with --quiet). */
  warn(line: string): void {
    this.#err.write(`warning: ${line}\n`);
  }

  /** Reports a failure: one line on stderr (and the JSON envelope on stdout with --json). */
  fail(command: string, e: unknown): number {
    const classified = classify(e);
    const { exitCode, code } = classified;
    const hint = e instanceof ArgumentError ? `ostree-sysext ${command ? `${command} ` : ''}--help` : classified.hint;
    const message = messageFor(e);
    if (process.env.OSTREE_SYSEXT_DEBUG === '1' && e instanceof Error) this.#err.write(`${e.stack ?? e.message}\n`);
    const what = command ? `ostree-sysext ${command}` : 'ostree-sysext';
    this.#err.write(`${what}: ${message}${hint ? ` (try: ${hint})` : ''}\n`);
    if (this.json) {
      // A refused set carries its vote round: every plugin's vote, as the refusal printed them.
      const votes = (e as { report?: unknown } | null)?.report;
      this.#out.write(
        JSON.stringify({ ok: false, command, exitCode, error: { code, exitCode, message, ...(hint ? { hint } : {}), ...(votes ? { votes } : {}) } }, null, 2) +
          '\n',
      );
    }
    return exitCode;
  }

  /** A progress reporter for a pull or a long step; call `end()` when done. */
  progress(label: string): Progress {
    return new Progress(label, this.quiet || this.json ? null : this.#err, this.tty);
  }

  /**
   * For a step that reports no progress of its own (fsck): `label: text` once, and on a
   * terminal the seconds elapsed, redrawn every second until `end()`.
   */
  activity(label: string, text: string): Progress {
    const p = this.progress(label);
    p.tick(text);
    return p;
  }
}

/**
 * Progress of one pull or long step on stderr: a redrawn bar when stderr is a terminal, a plain
 * line at most every second otherwise. Nothing is shown before there is progress to show.
 */
export class Progress {
  readonly #label: string;
  readonly #stream: NodeJS.WritableStream | null;
  readonly #tty: boolean;
  #lastLine = 0;
  #drawn = false;
  #shown = false;
  #pending: string | undefined;
  #start = Date.now();
  #timer: NodeJS.Timeout | undefined;

  /** A reporter writing to `stream` (null: silent). */
  constructor(label: string, stream: NodeJS.WritableStream | null, tty: boolean) {
    this.#label = label;
    this.#stream = stream;
    this.#tty = tty;
  }

  /** Takes a pull's progress snapshot. */
  pull = (p: PullProgress): void => {
    // Nothing counted yet: a pull that fails now (unknown ref, server down) shows no bar; a
    // local (file://) pull counts nothing at all, so its summary is shown when it succeeds.
    if (p.requested === 0 && p.fetched === 0 && p.bytesTransferred === 0) {
      this.#pending = p.status;
      return;
    }
    const rate = p.elapsedMs > 0 ? (p.bytesTransferred * 1000) / p.elapsedMs : 0;
    const total = Math.max(p.requested, p.fetched);
    const text = `${p.fetched}/${total} objects, ${formatBytes(p.bytesTransferred)}, ${formatBytes(Math.round(rate))}/s${p.scanning ? ', scanning metadata' : ''}`;
    this.update(total > 0 ? p.fetched / total : 0, text, p.done);
  };

  /** Shows `fraction` (0–1) done with `text`; `final` forces a plain line out. */
  update(fraction: number, text: string, final = false): void {
    if (!this.#stream) return;
    if (this.#tty) {
      const width = 24;
      const full = Math.max(0, Math.min(width, Math.round(fraction * width)));
      this.#stream.write(`\r\x1b[2K${this.#label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${text}`);
      this.#drawn = true;
      this.#shown = true;
      return;
    }
    const now = Date.now();
    if (!final && now - this.#lastLine < 1000) return;
    this.#lastLine = now;
    this.#shown = true;
    this.#stream.write(`${this.#label}: ${text}\n`);
  }

  /** Shows `text` without a fraction: once as a line, and on a terminal with the seconds elapsed, redrawn each second. */
  tick(text: string): void {
    if (!this.#stream) return;
    if (!this.#tty) {
      this.update(0, text, true);
      return;
    }
    const draw = () => {
      this.#stream!.write(`\r\x1b[2K${this.#label}: ${text} (${Math.floor((Date.now() - this.#start) / 1000)} s)`);
      this.#drawn = true;
    };
    draw();
    clearInterval(this.#timer);
    this.#timer = setInterval(draw, 1000);
    this.#timer.unref();
  }

  /**
   * Ends the progress: with `text`, a last line saying how it ended; without, the bar is
   * cleared so an error line follows cleanly.
   */
  end(text?: string): void {
    clearInterval(this.#timer);
    if (!this.#stream) return;
    if (this.#tty && this.#drawn) this.#stream.write(text ? '\n' : '\r\x1b[2K');
    this.#drawn = false;
    if (text && !this.#shown && this.#pending) this.#stream.write(`${this.#label}: ${this.#pending}\n`);
    if (text) this.#stream.write(`${this.#label}: ${text} (${((Date.now() - this.#start) / 1000).toFixed(1)} s)\n`);
  }
}

/** Formats rows as aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
