/**
 * Remotes, pulls and publishing (GPG signatures, summary, static deltas). The {@link Repo}
 * methods `addRemote`, `pull`, `signCommit`, … delegate here; this module validates every
 * argument before anything reaches native code and turns failures into {@link OstreeError}s
 * whose message names the remote or URL.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NativeCancellable, NativePullOptions, NativePullProgress, NativeRepo, NativeSignature } from './native-contract.js';
import * as is from './args.js';
import { AbortError, ArgumentError, OstreeError } from './errors.js';
import { native } from './native.js';
import { cancellable, type CallOptions } from './signal.js';

/** What a remote's config section holds, as {@link Repo.addRemote} writes it. */
export interface RemoteConfig {
  /** Where the repository is served: an `http://`, `https://` or `file://` URL. */
  url: string;
  /** Require a valid GPG signature on every pulled commit. Default true (libostree's default). */
  gpgVerify?: boolean;
  /** Require a valid GPG signature on the summary. Default false. */
  gpgVerifySummary?: boolean;
  /**
   * Any other key of the section (`branches`, `contenturl`, `tls-permissive`, `proxy`, …): a
   * string, a boolean, or a string list (written `a;b;`).
   */
  options?: Record<string, string | boolean | string[]>;
}

/** Options for {@link Repo.addRemote}. */
export interface AddRemoteOptions extends RemoteConfig, CallOptions {
  /** Succeed without change when a remote of that name exists (default: reject with `EXISTS`). */
  ifNotExists?: boolean;
  /** Replace an existing remote's whole section (default false). */
  replace?: boolean;
}

/** Options for {@link Repo.changeRemote}: only the given fields change. */
export interface ChangeRemoteOptions extends Partial<RemoteConfig>, CallOptions {
  /** Keys to remove from the section. */
  unset?: string[];
}

/** A configured remote, as {@link Repo.remotes} and {@link Repo.getRemote} report it. */
export interface RemoteInfo {
  /** The remote's name. */
  name: string;
  /** Its URL (null for a metalink-only remote). */
  url: string | null;
  /** Whether commits pulled from it must carry a valid GPG signature (libostree's effective value). */
  gpgVerify: boolean;
  /** Whether its summary must carry a valid GPG signature. */
  gpgVerifySummary: boolean;
  /** The other keys set for it, as raw config strings (lists as `a;b;`). */
  options: Record<string, string>;
}

/** Options for {@link Repo.deleteRemote}. */
export interface DeleteRemoteOptions extends CallOptions {
  /** Succeed when the remote does not exist (default: reject with `NOT_FOUND`). */
  ifExists?: boolean;
}

/** Options for network calls that fetch no content ({@link Repo.listRemoteRefs}, {@link Repo.fetchRemoteSummary}). */
export interface RemoteFetchOptions extends CallOptions {
  /** Give up with `TIMED_OUT` after this many milliseconds. Default 60000; 0 waits forever. */
  timeout?: number;
}

/** A remote's summary file and its detached signatures, as served. */
export interface RemoteSummary {
  /** The summary (a GVariant of refs and static deltas). */
  summary: Buffer;
  /** The `summary.sig` file, or null when the remote serves none. */
  signatures: Buffer | null;
}

/** A progress snapshot of a running pull. Snapshots are coalesced: intermediate ones may be skipped. */
export interface PullProgress {
  /** Objects fetched so far. */
  fetched: number;
  /**
   * Objects requested so far (grows while metadata is scanned). libostree's own counters, not
   * one per download: libostree 2025.2 counts the request for detached metadata a server does
   * not have (404) here and never as fetched, so a finished pull can end one below per commit.
   */
  requested: number;
  /** Metadata objects scanned. */
  scannedMetadata: number;
  /** Metadata objects fetched. */
  metadataFetched: number;
  /** Requests in flight. */
  outstandingFetches: number;
  /** Object writes queued. */
  outstandingWrites: number;
  /** Static delta parts fetched, and their total (0 when no delta is used). */
  fetchedDeltaParts: number;
  /** Static delta parts to fetch. */
  totalDeltaParts: number;
  /** Bytes received over the network. */
  bytesTransferred: number;
  /** Bytes of delta parts fetched. */
  fetchedDeltaPartSize: number;
  /** Bytes of all delta parts. */
  totalDeltaPartSize: number;
  /** True while metadata is still being scanned. */
  scanning: boolean;
  /** A one-line description: libostree's own when it sets one, else like `ostree pull` prints. */
  status: string;
  /** True on the final snapshot, delivered before the pull's Promise settles. */
  done: boolean;
  /** Milliseconds since the pull started. */
  elapsedMs: number;
}

/** Options for {@link Repo.pull}. */
export interface PullOptions extends CallOptions {
  /** Refs to pull. Default: every ref the remote's summary lists. */
  refs?: string[];
  /** Pull these exact commits for `refs` (same length and order) instead of the refs' heads. */
  commits?: string[];
  /** Parent commits to fetch too: 0 (default) only the head, -1 the whole history. */
  depth?: number;
  /** Write the refs as local refs (a mirror) instead of `remote:ref`. Default false. */
  mirror?: boolean;
  /** Fetch only commit objects, no trees or files. Default false. */
  commitOnly?: boolean;
  /** Fetch from this URL instead of the remote's configured one. */
  url?: string;
  /** Overrides the remote's `gpg-verify` for this pull. */
  gpgVerify?: boolean;
  /** Overrides the remote's `gpg-verify-summary` for this pull. */
  gpgVerifySummary?: boolean;
  /** Retries of a failed request on transient network errors (libostree's default is 5). */
  networkRetries?: number;
  /** Extra HTTP request headers. */
  httpHeaders?: Record<string, string>;
  /** Never use static deltas. */
  disableStaticDeltas?: boolean;
  /** Fail unless static deltas can be used. */
  requireStaticDeltas?: boolean;
  /** Refuse a commit older than the one the ref points at now. Default false. */
  timestampCheck?: boolean;
  /** Give up with `TIMED_OUT` after this many milliseconds in total. Default 0: no overall limit. */
  timeout?: number;
  /**
   * Give up with `TIMED_OUT` when the pull makes no progress for this many milliseconds (a
   * server that accepts and never answers). Default 60000; 0 disables.
   */
  stallTimeout?: number;
  /** Receives coalesced {@link PullProgress} snapshots while the pull runs, and a final one. */
  onProgress?: (progress: PullProgress) => void;
  /** How often libostree samples progress, in milliseconds. Default 100. */
  progressInterval?: number;
  /**
   * Most bytes the whole pull may receive before it is cancelled with `TOO_LARGE` (a mirror
   * that serves an endless or huge object). Default {@link DEFAULT_PULL_MAX_BYTES} (4 GiB);
   * 0 disables.
   */
  maxBytes?: number;
  /**
   * Most bytes that may arrive while no object completes, per object being fetched, before
   * the pull is cancelled with `TOO_LARGE`: a bound on one object's size, measured from the
   * pull's progress (libostree reports no per-object sizes). Default
   * {@link DEFAULT_PULL_MAX_OBJECT_BYTES} (1 GiB); 0 disables.
   */
  maxObjectBytes?: number;
}

/** Default {@link PullOptions.maxBytes}: 4 GiB. */
export const DEFAULT_PULL_MAX_BYTES = 4 * 1024 ** 3;
/** Default {@link PullOptions.maxObjectBytes}: 1 GiB. */
export const DEFAULT_PULL_MAX_OBJECT_BYTES = 1024 ** 3;

/** Options for {@link Repo.pullLocal}. */
export interface PullLocalOptions extends CallOptions {
  /** Refs to pull. Default: every local ref of the source. */
  refs?: string[];
  /** Parent commits to fetch too: 0 (default) only the head, -1 the whole history. */
  depth?: number;
  /** Copy refs as a mirror (the same names). Default false: local refs of the same names. */
  mirror?: boolean;
  /** Fetch only commit objects. */
  commitOnly?: boolean;
  /** Write the refs as `remote:ref` under this configured remote's name instead of local refs. */
  remote?: string;
  /**
   * Verify every object's checksum while copying (a source that may be corrupt or hostile).
   * Default false: objects are trusted. Either way they are hardlinked where the two
   * repositories allow it (same filesystem and compatible modes).
   */
  untrusted?: boolean;
  /** Require GPG signatures (needs keys imported for `remote`). Default false. */
  gpgVerify?: boolean;
  /** Give up with `TIMED_OUT` after this many milliseconds. Default 0: no limit. */
  timeout?: number;
  /** Receives coalesced progress snapshots. */
  onProgress?: (progress: PullProgress) => void;
}

/** What a finished pull reports. */
export interface PullResult {
  /** The pulled refs and the commits they now point at (names as written: `remote:ref` or `ref`). */
  refs: Record<string, string>;
  /** The final progress snapshot: totals of the pull. */
  progress: PullProgress;
}

/** Options for {@link Repo.signCommit}. */
export interface SignOptions extends CallOptions {
  /** The signing key: id or fingerprint. Signing again with the same key adds another signature. */
  keyId: string;
  /** GnuPG home directory holding the secret key. Default: GnuPG's own (`$GNUPGHOME`, `~/.gnupg`). */
  homedir?: string;
}

/** Options for {@link Repo.verifyCommit}: the trusted keys to check against. */
export interface VerifyOptions extends CallOptions {
  /** Use the keys imported for this remote (and the system keyrings). */
  remote?: string;
  /** A directory of `*.gpg` keyrings. */
  keyringDir?: string;
  /** One more keyring file (`pubring.gpg`, or a file of exported keys). */
  keyring?: string;
}

/** One GPG signature of a commit. */
export interface Signature {
  /** The signing key's id: the last 16 hex digits of its fingerprint. */
  keyId: string;
  /** The signing (sub)key's fingerprint. */
  fingerprint: string;
  /** The primary key's fingerprint, or null when the key is missing. */
  primaryFingerprint: string | null;
  /** True when the signature is good and made by a trusted, usable key. */
  valid: boolean;
  /** The signature itself has expired. */
  sigExpired: boolean;
  /** The signing key has expired. */
  keyExpired: boolean;
  /** The signing key has been revoked. */
  keyRevoked: boolean;
  /** The signing key is not among the trusted keys. */
  keyMissing: boolean;
  /** When the signature was made. */
  createdAt: Date;
  /** When the signature expires, or null. */
  expiresAt: Date | null;
  /** When the key expires, or null (also null when the key is missing). */
  keyExpiresAt: Date | null;
  /** Public key algorithm (`EdDSA`, `RSA`, …), null when unknown. */
  pubkeyAlgorithm: string | null;
  /** Hash algorithm (`SHA512`, …), null when unknown. */
  hashAlgorithm: string | null;
  /** Name of the key's primary user id, null when the key is missing. */
  user: string | null;
  /** Email of the key's primary user id, null when unknown. */
  email: string | null;
}

/** Result of {@link Repo.verifyCommit}. */
export interface VerifyResult {
  /** The commit checksum verified. */
  checksum: string;
  /** True when at least one signature is valid. */
  valid: boolean;
  /** Every signature on the commit, valid or not. */
  signatures: Signature[];
}

/** Options for {@link Repo.regenerateSummary}. */
export interface SummaryOptions extends CallOptions {
  /** Sign the summary with these keys (writes `summary.sig`). */
  keyIds?: string[];
  /** GnuPG home directory holding the secret keys. */
  homedir?: string;
}

/** Options for {@link Repo.generateDelta}. */
export interface DeltaOptions extends CallOptions {
  /** The commit (or ref) clients update from; null or omitted makes a from-scratch delta. */
  from?: string | null;
  /** The commit (or ref) clients update to. */
  to: string;
  /** Store parts inside the superblock (fewer requests, for small deltas). Default false. */
  inlineParts?: boolean;
  /** Use bsdiff for modified files. Default true. */
  bsdiff?: boolean;
  /** Largest part, in MiB (libostree's default is 32). */
  maxChunkSizeMiB?: number;
  /**
   * Regenerate the summary afterwards so clients find the delta: true (default), false, or
   * `{ keyIds, homedir }` to sign the new summary.
   */
  summary?: boolean | { keyIds?: string[]; homedir?: string };
}

/**
 * What this module needs from a {@link Repo}: its native handle and its write queue.
 * @internal
 */
export interface RepoAccess {
  readonly native: NativeRepo;
  readonly path: string;
  write<T>(operation: string, signal: AbortSignal | undefined, run: (c: NativeCancellable | undefined) => Promise<T>): Promise<T>;
}

const SCHEMES = ['http:', 'https:', 'file:'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_TIMEOUT = 2 ** 31 - 1;

/** A remote URL: http(s) with a host, or file:// with an absolute path. */
function remoteUrl(name: string, v: unknown): string {
  const s = is.nonEmpty(name, v);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ArgumentError(`${name} is not a valid URL: ${JSON.stringify(s)}`, 'ERR_INVALID_ARG_VALUE');
  }
  if (!SCHEMES.includes(u.protocol)) {
    throw new ArgumentError(`${name} must be an http://, https:// or file:// URL, got ${JSON.stringify(s)}`, 'ERR_INVALID_ARG_VALUE');
  }
  if (u.protocol === 'file:' ? u.pathname === '' || u.pathname === '/' : u.hostname === '') {
    throw new ArgumentError(`${name} has no ${u.protocol === 'file:' ? 'path' : 'host'}: ${JSON.stringify(s)}`, 'ERR_INVALID_ARG_VALUE');
  }
  return s;
}

function remoteOptions(v: unknown): Record<string, string | boolean | string[]> {
  const o = is.options<Record<string, unknown>>('options', v);
  const out: Record<string, string | boolean | string[]> = {};
  for (const [k, val] of Object.entries(o)) {
    if (!/^[A-Za-z0-9][-A-Za-z0-9_.]*$/.test(k)) throw new ArgumentError(`options: ${JSON.stringify(k)} is not a valid config key`, 'ERR_INVALID_ARG_VALUE');
    if (k === 'url') throw new ArgumentError('options.url: set the URL with the url field', 'ERR_INVALID_ARG_VALUE');
    if (val === undefined) continue;
    if (typeof val === 'boolean') out[k] = val;
    else if (Array.isArray(val)) out[k] = is.stringArray(`options.${k}`, val).map((s, i) => noNewline(`options.${k}[${i}]`, s));
    else out[k] = noNewline(`options.${k}`, is.string(`options.${k}`, val));
  }
  return out;
}

function noNewline(name: string, s: string): string {
  if (/[\r\n]/.test(s)) throw new ArgumentError(`${name} must not contain line breaks`, 'ERR_INVALID_ARG_VALUE');
  return s;
}

function refList(name: string, v: unknown): string[] {
  const refs = is.stringArray(name, v).map((r, i) => is.refName(`${name}[${i}]`, r));
  if (refs.length === 0) throw new ArgumentError(`${name} must not be empty (omit it to pull every ref)`, 'ERR_INVALID_ARG_VALUE');
  return refs;
}

function timeoutMs(name: string, v: unknown, fallback: number): number {
  return is.optInteger(name, v, 0, MAX_TIMEOUT) ?? fallback;
}

function callback<T extends (...a: never[]) => unknown>(name: string, v: unknown): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'function') throw new ArgumentError(`${name} must be a function`);
  return v as T;
}

function notFound(message: string, operation: string): OstreeError {
  return new OstreeError(message, { domain: 'g-io-error-quark', gerrorCode: 1, operation });
}

/** Describes a remote for error messages: `remote 'origin' (http://…)` or the URL itself. */
function describeSource(access: RepoAccess, remoteOrUrl: string): string {
  if (remoteOrUrl.includes('://')) return remoteOrUrl;
  const url = access.native.remoteList().find((r) => r.name === remoteOrUrl)?.url;
  return url ? `remote '${remoteOrUrl}' (${url})` : `remote '${remoteOrUrl}'`;
}

// ---- deadlines ----

interface Deadline {
  /** The signal to hand to `cancellable()`: the caller's, or the deadline's. */
  signal: AbortSignal | undefined;
  /** Restarts the stall timer (progress was made). */
  touch(): void;
  /** Aborts the call because of `error` (a throwing progress callback). */
  fail(error: unknown): void;
  /** Maps a rejection to TIMED_OUT / the callback's error when the deadline caused it. */
  rethrow(e: unknown, operation: string): never;
  /** After success: rethrows an error a progress callback threw late (on the final snapshot). */
  check(): void;
  dispose(): void;
}

// Overall and stall timeouts cancel the GCancellable through an internal AbortController, so a
// hung request ends the same way an abort does, then surfaces as TIMED_OUT, not AbortError.
function deadline(user: AbortSignal | undefined, total: number, stall: number): Deadline {
  const ctl = new AbortController();
  let why: { timeout: string } | { error: unknown } | undefined;
  const stop = (reason: typeof why): void => {
    if (why || user?.aborted) return;
    why = reason;
    ctl.abort();
  };
  const overall = total > 0 ? setTimeout(() => stop({ timeout: `no result after ${total} ms` }), total) : undefined;
  overall?.unref();
  let stalled: NodeJS.Timeout | undefined;
  const touch = (): void => {
    if (stall <= 0) return;
    if (stalled) stalled.refresh();
    else {
      stalled = setTimeout(() => stop({ timeout: `no progress for ${stall} ms` }), stall);
      stalled.unref();
    }
  };
  touch();
  const onUser = (): void => ctl.abort();
  if (user) {
    if (user.aborted) ctl.abort();
    else user.addEventListener('abort', onUser, { once: true });
  }
  const usesInternal = user !== undefined || total > 0 || stall > 0;
  return {
    signal: usesInternal ? ctl.signal : undefined,
    touch,
    fail: (error) => stop({ error }),
    rethrow(e, operation) {
      if (user?.aborted) throw new AbortError(`${operation}: aborted`, { cause: user.reason });
      if (why && 'error' in why) throw why.error;
      if (why) throw new OstreeError(`timed out (${why.timeout})`, { domain: 'g-io-error-quark', gerrorCode: 24, operation, cause: e });
      throw e;
    },
    check() {
      if (why && 'error' in why) throw why.error;
    },
    dispose() {
      if (overall) clearTimeout(overall);
      if (stalled) clearTimeout(stalled);
      user?.removeEventListener('abort', onUser);
    },
  };
}

async function withDeadline<T>(
  operation: string,
  user: AbortSignal | undefined,
  total: number,
  stall: number,
  run: (c: NativeCancellable | undefined, d: Deadline) => Promise<T>,
): Promise<T> {
  if (user?.aborted) throw new AbortError(`${operation}: aborted before it started`, { cause: user.reason });
  const d: Deadline = deadline(user, total, stall);
  try {
    const value = await cancellable(operation, d.signal, (c) => run(c, d));
    d.check();
    return value;
  } catch (e) {
    d.rethrow(e, operation);
  } finally {
    d.dispose();
  }
}

// ---- remotes ----

/** @internal */
export async function addRemote(access: RepoAccess, name: string, opts: AddRemoteOptions): Promise<void> {
  is.remoteName('name', name);
  const o = is.options<AddRemoteOptions>('options', opts);
  const url = remoteUrl('url', o.url);
  const ifNotExists = is.bool('ifNotExists', o.ifNotExists, false);
  const replace = is.bool('replace', o.replace, false);
  if (ifNotExists && replace) throw new ArgumentError('ifNotExists and replace exclude each other', 'ERR_INVALID_ARG_VALUE');
  const options = remoteOptions(o.options);
  options['gpg-verify'] = is.bool('gpgVerify', o.gpgVerify, true);
  options['gpg-verify-summary'] = is.bool('gpgVerifySummary', o.gpgVerifySummary, false);
  const mode = replace ? 'replace' : ifNotExists ? 'add-if-not-exists' : 'add';
  await access.write(`add remote '${name}' (${url})`, is.signal(o.signal), (c) => access.native.remoteAdd(name, { url, options, mode }, c));
}

/** @internal */
export function listRemotes(access: RepoAccess): RemoteInfo[] {
  return access.native.remoteList();
}

/** @internal */
export function getRemote(access: RepoAccess, name: string): RemoteInfo {
  is.remoteName('name', name);
  const r = access.native.remoteList().find((x) => x.name === name);
  if (!r) throw notFound(`remote '${name}' is not configured`, `get remote '${name}'`);
  return r;
}

/** @internal */
export async function changeRemote(access: RepoAccess, name: string, changes: ChangeRemoteOptions): Promise<void> {
  is.remoteName('name', name);
  const o = is.options<ChangeRemoteOptions>('changes', changes);
  const url = o.url === undefined ? undefined : remoteUrl('url', o.url);
  const set = remoteOptions(o.options);
  if (o.gpgVerify !== undefined) set['gpg-verify'] = is.bool('gpgVerify', o.gpgVerify, true);
  if (o.gpgVerifySummary !== undefined) set['gpg-verify-summary'] = is.bool('gpgVerifySummary', o.gpgVerifySummary, false);
  const unset = o.unset === undefined ? [] : is.stringArray('unset', o.unset);
  if (unset.includes('url')) throw new ArgumentError('unset: a remote must keep its url', 'ERR_INVALID_ARG_VALUE');
  const op = `change remote '${name}'`;
  // Read and rewrite inside one queued write, so two changes never lose each other's keys.
  await access.write(op, is.signal(o.signal), async (c) => {
    const current = access.native.remoteList().find((x) => x.name === name);
    if (!current) throw notFound(`remote '${name}' is not configured`, op);
    const options: Record<string, string | boolean | string[]> = { ...current.options, ...set };
    for (const k of unset) delete options[k];
    const newUrl = url ?? current.url;
    if (newUrl === null) throw new ArgumentError(`remote '${name}' has no url; pass one`, 'ERR_INVALID_ARG_VALUE');
    await access.native.remoteAdd(name, { url: newUrl, options, mode: 'replace' }, c);
  });
}

/** @internal */
export async function deleteRemote(access: RepoAccess, name: string, opts: DeleteRemoteOptions = {}): Promise<void> {
  is.remoteName('name', name);
  const o = is.options<DeleteRemoteOptions>('options', opts);
  const ifExists = is.bool('ifExists', o.ifExists, false);
  await access.write(`delete remote '${name}'`, is.signal(o.signal), (c) => access.native.remoteDelete(name, { ifExists }, c));
}

/** @internal */
export async function importRemoteKeys(access: RepoAccess, name: string, keys: Uint8Array | string, opts: CallOptions = {}): Promise<number> {
  is.remoteName('name', name);
  const signal = is.signal(is.options<CallOptions>('options', opts).signal);
  let data: Buffer;
  let from: string;
  if (typeof keys === 'string') {
    is.nonEmpty('keys', keys);
    from = keys;
    try {
      data = await readFile(keys);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 1 : 0;
      throw new OstreeError(`cannot read ${keys}: ${(e as Error).message}`, {
        domain: 'g-io-error-quark',
        gerrorCode: code,
        operation: `import GPG keys for remote '${name}'`,
        cause: e,
      });
    }
  } else if (keys instanceof Uint8Array) {
    data = Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength);
    from = 'a buffer';
  } else {
    throw new ArgumentError('keys must be a Buffer/Uint8Array of key data or a path to a key file');
  }
  if (data.length === 0) throw new ArgumentError(`keys: ${from} holds no key data`, 'ERR_INVALID_ARG_VALUE');
  return access.write(`import GPG keys from ${from} for remote '${name}'`, signal, (c) => access.native.remoteGpgImport(name, data, c));
}

/** @internal */
export async function listRemoteRefs(access: RepoAccess, name: string, opts: RemoteFetchOptions = {}): Promise<Record<string, string>> {
  is.remoteName('name', name);
  const o = is.options<RemoteFetchOptions>('options', opts);
  const total = timeoutMs('timeout', o.timeout, 60_000);
  const user = is.signal(o.signal);
  const op = `list refs of ${describeSource(access, name)}`;
  return withDeadline(op, user, total, 0, (c) => access.native.remoteListRefs(name, c));
}

/** @internal */
export async function fetchRemoteSummary(access: RepoAccess, name: string, opts: RemoteFetchOptions = {}): Promise<RemoteSummary> {
  is.remoteName('name', name);
  const o = is.options<RemoteFetchOptions>('options', opts);
  const total = timeoutMs('timeout', o.timeout, 60_000);
  const user = is.signal(o.signal);
  const op = `fetch the summary of ${describeSource(access, name)}`;
  const r = await withDeadline(op, user, total, 0, (c) => access.native.remoteFetchSummary(name, c));
  if (r.summary === null) throw notFound('the remote serves no summary file', op);
  return { summary: r.summary, signatures: r.signatures };
}

// ---- pull ----

function units(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${u[i]}`;
}

/** The line `ostree pull` prints for a snapshot, used when libostree set no status. */
function statusLine(p: NativePullProgress): string {
  if (p.status) return p.status;
  if (p.totalDeltaParts > 0) {
    return `Receiving delta parts: ${p.fetchedDeltaParts}/${p.totalDeltaParts} ${units(p.fetchedDeltaPartSize)}/${units(p.totalDeltaPartSize)}`;
  }
  if (p.scanning || p.requested === 0) return `Receiving metadata objects: ${p.metadataFetched}/(estimating) ${units(p.bytesTransferred)}`;
  const pct = Math.floor((100 * p.fetched) / Math.max(1, p.requested));
  return `Receiving objects: ${pct}% (${p.fetched}/${p.requested}) ${units(p.bytesTransferred)}`;
}

function toProgress(p: NativePullProgress, started: number): PullProgress {
  return { ...p, status: statusLine(p), elapsedMs: Math.round(performance.now() - started) };
}

interface PullPlan {
  native: NativePullOptions;
  operation: string;
  total: number;
  stall: number;
  onProgress: ((p: PullProgress) => void) | undefined;
  /** How pulled refs are named locally: `prefix + ref`. */
  refPrefix: string;
  /** The commits the refs are known to be pulled at (pullLocal resolves them first). */
  expected?: Record<string, string>;
  /** Byte budgets (0: none), see {@link PullOptions.maxBytes}. */
  maxBytes?: number;
  maxObjectBytes?: number;
}

async function runPull(access: RepoAccess, plan: PullPlan, signal: AbortSignal | undefined): Promise<PullResult> {
  const started = performance.now();
  // The byte budgets are enforced on the pull thread (native/pull.cc): at each progress tick,
  // not at the JS thread's pace, which under load saw one snapshot in seconds.
  // A budget needs a cancellable to cancel with, even in a pull without signal or deadlines.
  const watched = signal ?? (plan.maxBytes || plan.maxObjectBytes ? new AbortController().signal : undefined);
  const final = await withDeadline(plan.operation, watched, plan.total, plan.stall, (c, d) =>
    access.native.pull(
      {
        ...plan.native,
        onProgress: (p) => {
          d.touch();
          if (!plan.onProgress) return;
          try {
            plan.onProgress(toProgress(p, started));
          } catch (e) {
            // A throwing callback stops the pull and becomes its rejection.
            d.fail(e);
          }
        },
      },
      c,
    ),
  );
  const names = plan.native.refs;
  const all = await access.native.listRefs(null, { remotes: true });
  const refs: Record<string, string> = {};
  if (names) {
    for (const r of names) {
      const full = plan.refPrefix + r;
      if (all[full] === undefined && plan.refPrefix === '') {
        // libostree 2022.7 skips writing a local ref when resolve_rev's fallback to a remote
        // ref of the same name already yields the pulled commit; write it as it meant to.
        const candidates = new Set(
          Object.entries(all)
            .filter(([k]) => k.endsWith(`:${r}`))
            .map(([, v]) => v),
        );
        const c = plan.expected?.[r] ?? (candidates.size === 1 ? [...candidates][0]! : null);
        if (c !== null) {
          await access.write(`set ref ${r}`, undefined, (cc) => access.native.setRefImmediate(null, r, c, cc));
          all[full] = c;
        }
      }
      if (all[full] !== undefined) refs[full] = all[full]!;
    }
  } else if (plan.refPrefix) {
    for (const [k, v] of Object.entries(all)) if (k.startsWith(plan.refPrefix)) refs[k] = v;
  }
  return { refs, progress: toProgress(final, started) };
}

/** @internal */
export async function pull(access: RepoAccess, remote: string, opts: PullOptions = {}): Promise<PullResult> {
  const isUrl = typeof remote === 'string' && remote.includes('://');
  const source = isUrl ? remoteUrl('remote', remote) : is.remoteName('remote', remote);
  // libostree takes a URL in place of a remote name only for file:// (as pull-local does).
  if (isUrl && !source.startsWith('file:')) {
    throw new ArgumentError(
      `remote: pull from ${source} through a configured remote (addRemote), or its url option; only file:// URLs can stand for a remote`,
      'ERR_INVALID_ARG_VALUE',
    );
  }
  const o = is.options<PullOptions>('options', opts);
  const n: NativePullOptions = { remote: source };
  if (o.refs !== undefined) n.refs = refList('refs', o.refs);
  if (o.commits !== undefined) {
    n.overrideCommitIds = is.stringArray('commits', o.commits).map((c, i) => is.checksum(`commits[${i}]`, c));
    if (!n.refs || n.refs.length !== n.overrideCommitIds.length) {
      throw new ArgumentError('commits needs refs of the same length (one commit per ref)', 'ERR_INVALID_ARG_VALUE');
    }
  }
  if (o.depth !== undefined) n.depth = is.integer('depth', o.depth, -1, 2 ** 31 - 1);
  n.mirror = is.bool('mirror', o.mirror, false);
  n.commitOnly = is.bool('commitOnly', o.commitOnly, false);
  if (o.url !== undefined) n.overrideUrl = remoteUrl('url', o.url);
  if (o.gpgVerify !== undefined) n.gpgVerify = is.bool('gpgVerify', o.gpgVerify, true);
  if (o.gpgVerifySummary !== undefined) n.gpgVerifySummary = is.bool('gpgVerifySummary', o.gpgVerifySummary, false);
  if (o.networkRetries !== undefined) n.networkRetries = is.integer('networkRetries', o.networkRetries, 0, 1000);
  if (o.httpHeaders !== undefined) {
    const h = is.options<Record<string, unknown>>('httpHeaders', o.httpHeaders);
    n.httpHeaders = {};
    for (const [k, v] of Object.entries(h)) {
      if (!HEADER_NAME.test(k)) throw new ArgumentError(`httpHeaders: ${JSON.stringify(k)} is not a valid header name`, 'ERR_INVALID_ARG_VALUE');
      const s = is.string(`httpHeaders.${k}`, v);
      if (/[\r\n]/.test(s)) throw new ArgumentError(`httpHeaders.${k} must not contain line breaks`, 'ERR_INVALID_ARG_VALUE');
      n.httpHeaders[k] = s;
    }
  }
  if (o.disableStaticDeltas !== undefined) n.disableStaticDeltas = is.bool('disableStaticDeltas', o.disableStaticDeltas, false);
  if (o.requireStaticDeltas !== undefined) n.requireStaticDeltas = is.bool('requireStaticDeltas', o.requireStaticDeltas, false);
  if (n.disableStaticDeltas && n.requireStaticDeltas)
    throw new ArgumentError('disableStaticDeltas and requireStaticDeltas exclude each other', 'ERR_INVALID_ARG_VALUE');
  if (o.timestampCheck !== undefined) n.timestampCheck = is.bool('timestampCheck', o.timestampCheck, false);
  n.updateFrequencyMs = is.optInteger('progressInterval', o.progressInterval, 10, 60_000) ?? 100;
  const total = timeoutMs('timeout', o.timeout, 0);
  const stall = timeoutMs('stallTimeout', o.stallTimeout, 60_000);
  const maxBytes = is.optInteger('maxBytes', o.maxBytes, 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_PULL_MAX_BYTES;
  const maxObjectBytes = is.optInteger('maxObjectBytes', o.maxObjectBytes, 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_PULL_MAX_OBJECT_BYTES;
  const onProgress = callback<(p: PullProgress) => void>('onProgress', o.onProgress);
  const signal = is.signal(o.signal);
  const what = n.refs ? n.refs.join(', ') : 'all refs';
  const from = n.overrideUrl ? `${describeSource(access, source)} via ${n.overrideUrl}` : describeSource(access, source);
  const refPrefix = n.mirror || isUrl ? '' : `${source}:`;
  if (maxBytes > 0) n.maxBytes = maxBytes;
  if (maxObjectBytes > 0) n.maxObjectBytes = maxObjectBytes;
  return runPull(access, { native: n, operation: `pull ${what} from ${from}`, total, stall, onProgress, refPrefix, maxBytes, maxObjectBytes }, signal);
}

/** @internal */
export async function pullLocal(access: RepoAccess, sourcePath: string, opts: PullLocalOptions = {}): Promise<PullResult> {
  is.nonEmpty('sourcePath', sourcePath);
  const o = is.options<PullLocalOptions>('options', opts);
  const url = pathToFileURL(resolve(sourcePath)).href;
  const n: NativePullOptions = { remote: url };
  if (o.refs !== undefined) n.refs = refList('refs', o.refs);
  if (o.depth !== undefined) n.depth = is.integer('depth', o.depth, -1, 2 ** 31 - 1);
  n.mirror = is.bool('mirror', o.mirror, false);
  n.commitOnly = is.bool('commitOnly', o.commitOnly, false);
  n.untrusted = is.bool('untrusted', o.untrusted, false);
  const signal = is.signal(o.signal);
  if (o.remote !== undefined) n.overrideRemoteName = is.remoteName('remote', o.remote);
  n.gpgVerify = is.bool('gpgVerify', o.gpgVerify, false);
  if (n.gpgVerify && n.overrideRemoteName === undefined)
    throw new ArgumentError('gpgVerify needs remote: the remote whose imported keys to trust', 'ERR_INVALID_ARG_VALUE');
  n.updateFrequencyMs = 100;
  const total = timeoutMs('timeout', o.timeout, 0);
  const onProgress = callback<(p: PullProgress) => void>('onProgress', o.onProgress);
  const what = n.refs ? n.refs.join(', ') : 'all refs';
  const operation = `pull ${what} from ${sourcePath}`;
  // Resolve the refs in the source first and pull exactly those commits: "all refs" needs a
  // summary a local repository may lack, and the commits make the result deterministic.
  const expected: Record<string, string> = {};
  const src = await cancellable(operation, signal, (c) => native().Repo.open(resolve(sourcePath), {}, c));
  try {
    if (n.refs) {
      for (const r of n.refs) expected[r] = (await cancellable(operation, signal, (c) => src.resolveRev(r, false, c))) as string;
    } else {
      Object.assign(expected, await cancellable(operation, signal, (c) => src.listRefs(null, { remotes: false }, c)));
      n.refs = Object.keys(expected).sort();
    }
  } finally {
    src.close();
  }
  if (n.refs.length === 0) {
    const none: NativePullProgress = {
      fetched: 0,
      requested: 0,
      scannedMetadata: 0,
      metadataFetched: 0,
      outstandingFetches: 0,
      outstandingWrites: 0,
      fetchedDeltaParts: 0,
      totalDeltaParts: 0,
      bytesTransferred: 0,
      fetchedDeltaPartSize: 0,
      totalDeltaPartSize: 0,
      scanning: false,
      status: `${sourcePath} has no refs`,
      done: true,
    };
    return { refs: {}, progress: toProgress(none, performance.now()) };
  }
  n.overrideCommitIds = n.refs.map((r) => expected[r]!);
  const refPrefix = n.overrideRemoteName && !n.mirror ? `${n.overrideRemoteName}:` : '';
  // No stall timeout: a local copy has no network to hang on.
  return runPull(access, { native: n, operation, total, stall: 0, onProgress, refPrefix, expected }, signal);
}

// ---- publishing ----

async function commitChecksum(access: RepoAccess, name: string, rev: string, signal: AbortSignal | undefined): Promise<string> {
  is.rev(name, rev);
  if (is.isChecksum(rev)) return rev;
  const c = await cancellable(`resolve ${rev}`, signal, (cc) => access.native.resolveRev(rev, false, cc));
  return c as string;
}

/** @internal */
export async function signCommit(access: RepoAccess, rev: string, opts: SignOptions): Promise<void> {
  is.rev('rev', rev);
  const o = is.options<SignOptions>('options', opts);
  const keyId = is.nonEmpty('keyId', o.keyId);
  const homedir = o.homedir === undefined ? null : is.nonEmpty('homedir', o.homedir);
  const signal = is.signal(o.signal);
  const checksum = await commitChecksum(access, 'rev', rev, signal);
  await access.write(`sign commit ${checksum} with key ${keyId}`, signal, (c) => access.native.signCommit(checksum, keyId, homedir, c));
}

// libostree fills name and email of a missing key with "[unknown name]" / "[unknown email]".
const known = (x: string | null): string | null => (x === null || /^\[unknown [a-z]+\]$/.test(x) ? null : x);

function toSignature(s: NativeSignature): Signature {
  const date = (t: number): Date | null => (t > 0 ? new Date(t * 1000) : null);
  return {
    keyId: s.keyId,
    fingerprint: s.fingerprint,
    primaryFingerprint: s.primaryFingerprint,
    valid: s.valid,
    sigExpired: s.sigExpired,
    keyExpired: s.keyExpired,
    keyRevoked: s.keyRevoked,
    keyMissing: s.keyMissing,
    createdAt: new Date(s.timestamp * 1000),
    expiresAt: date(s.expiresAt),
    keyExpiresAt: date(s.keyExpiresAt),
    pubkeyAlgorithm: s.pubkeyAlgorithm,
    hashAlgorithm: s.hashAlgorithm,
    user: known(s.user),
    email: known(s.email),
  };
}

/** @internal */
export async function verifyCommit(access: RepoAccess, rev: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  is.rev('rev', rev);
  const o = is.options<VerifyOptions>('options', opts);
  const n: { remote?: string; keyringDir?: string; keyring?: string } = {};
  if (o.remote !== undefined) n.remote = is.remoteName('remote', o.remote);
  if (o.keyringDir !== undefined) n.keyringDir = is.nonEmpty('keyringDir', o.keyringDir);
  if (o.keyring !== undefined) n.keyring = is.nonEmpty('keyring', o.keyring);
  if (n.remote !== undefined && (n.keyringDir !== undefined || n.keyring !== undefined)) {
    throw new ArgumentError('pass either remote or keyringDir/keyring, not both', 'ERR_INVALID_ARG_VALUE');
  }
  const signal = is.signal(o.signal);
  const checksum = await commitChecksum(access, 'rev', rev, signal);
  const against = n.remote ? ` against the keys of remote '${n.remote}'` : n.keyring ? ` against ${n.keyring}` : n.keyringDir ? ` against ${n.keyringDir}` : '';
  const sigs = await cancellable(`verify commit ${checksum}${against}`, signal, (c) => access.native.verifyCommit(checksum, n, c));
  const signatures = sigs.map(toSignature);
  return { checksum, valid: signatures.some((s) => s.valid), signatures };
}

function summaryArgs(v: unknown): { keyIds?: string[]; homedir?: string } {
  const o = is.options<{ keyIds?: string[]; homedir?: string }>('summary', v);
  const out: { keyIds?: string[]; homedir?: string } = {};
  if (o.keyIds !== undefined) out.keyIds = is.stringArray('keyIds', o.keyIds).map((k, i) => is.nonEmpty(`keyIds[${i}]`, k));
  if (o.homedir !== undefined) out.homedir = is.nonEmpty('homedir', o.homedir);
  return out;
}

/** @internal */
export async function regenerateSummary(access: RepoAccess, opts: SummaryOptions = {}): Promise<void> {
  const o = is.options<SummaryOptions>('options', opts);
  const n = summaryArgs({ keyIds: o.keyIds, homedir: o.homedir });
  const signed = n.keyIds?.length ? ` signed with ${n.keyIds.join(', ')}` : '';
  await access.write(`regenerate the summary of ${access.path}${signed}`, is.signal(o.signal), (c) => access.native.regenerateSummary(n, c));
}

/** @internal */
export async function generateDelta(access: RepoAccess, opts: DeltaOptions): Promise<void> {
  const o = is.options<DeltaOptions>('options', opts);
  const signal = is.signal(o.signal);
  const to = await commitChecksum(access, 'to', is.string('to', o.to), signal);
  const from = o.from === undefined || o.from === null ? null : await commitChecksum(access, 'from', o.from, signal);
  const inlineParts = is.bool('inlineParts', o.inlineParts, false);
  const bsdiff = is.bool('bsdiff', o.bsdiff, true);
  const maxChunkSizeMiB = is.optInteger('maxChunkSizeMiB', o.maxChunkSizeMiB, 1, 4096);
  const summary = o.summary === undefined || o.summary === true ? {} : o.summary === false ? null : summaryArgs(o.summary);
  const n = { from, to, inlineParts, bsdiff, ...(maxChunkSizeMiB === undefined ? {} : { maxChunkSizeMiB }) };
  await access.write(`generate a static delta ${from ?? '(from scratch)'} → ${to}`, signal, (c) => access.native.generateDelta(n, c));
  if (summary) await regenerateSummary(access, { ...summary, ...(signal ? { signal } : {}) });
}
