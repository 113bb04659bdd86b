/**
 * Remotes: add, change and delete them, import their GPG keys, read their refs and summary.
 * Every argument is validated before anything reaches native code; failures are
 * {@link OstreeError}s whose message names the remote or URL.
 * @module
 */
import { readFile } from 'node:fs/promises';
import * as is from './args.js';
import { ArgumentError, OstreeError } from './errors.js';
import type { CallOptions } from './signal.js';
import { timeoutMs, withDeadline } from './deadline.js';
import { repoMethods, type RepoAccess } from './repo-access.js';

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

const SCHEMES = ['http:', 'https:', 'file:'];

/** @internal A remote URL: http(s) with a host, or file:// with an absolute path. */
export function remoteUrl(name: string, v: unknown): string {
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

/** @internal A NOT_FOUND error for `operation`. */
export function notFound(message: string, operation: string): OstreeError {
  return new OstreeError(message, { domain: 'g-io-error-quark', gerrorCode: 1, operation });
}

/** @internal Describes a remote for error messages: `remote 'origin' (http://…)` or the URL itself. */
export function describeSource(access: RepoAccess, remoteOrUrl: string): string {
  if (remoteOrUrl.includes('://')) return remoteOrUrl;
  const url = access.native.remoteList().find((r) => r.name === remoteOrUrl)?.url;
  return url ? `remote '${remoteOrUrl}' (${url})` : `remote '${remoteOrUrl}'`;
}

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

/**
 * {@link Repo}'s remote methods: configure remotes, import their keys, read their summaries (lib/binding/remote.ts).
 */
export interface RemoteMethods {
  /**
   * Adds a remote. GPG verification is on unless `gpgVerify: false`; import its keys with
   * {@link Repo.importRemoteKeys}. Rejects with `EXISTS` when the name is taken.
   * @example
   * ```ts
   * await repo.addRemote('origin', { url: 'https://example.com/repo', gpgVerifySummary: true });
   * await repo.importRemoteKeys('origin', '/usr/share/keys/example.asc');
   * ```
   */
  addRemote(name: string, opts: AddRemoteOptions): Promise<void>;

  /** Every configured remote (repo config and remotes.d), sorted by name. */
  remotes(): RemoteInfo[];

  /** One remote's URL and options; throws `NOT_FOUND` when it is not configured. */
  getRemote(name: string): RemoteInfo;

  /** Changes some of a remote's settings, keeping the others; `unset` removes keys. */
  changeRemote(name: string, changes: ChangeRemoteOptions): Promise<void>;

  /** Deletes a remote and its imported keys; `NOT_FOUND` unless `ifExists`. */
  deleteRemote(name: string, opts?: DeleteRemoteOptions): Promise<void>;

  /** Imports GPG public keys (key data, armored or binary, or a path to a key file) for a remote; returns how many. */
  importRemoteKeys(name: string, keys: Uint8Array | string, opts?: CallOptions): Promise<number>;

  /** The refs a remote's summary lists (`ref → checksum`), without pulling anything. */
  listRemoteRefs(name: string, opts?: RemoteFetchOptions): Promise<Record<string, string>>;

  /** Downloads a remote's summary and its signatures, without pulling anything. */
  fetchRemoteSummary(name: string, opts?: RemoteFetchOptions): Promise<RemoteSummary>;
}

/** @internal The RemoteMethods methods, attached to {@link Repo}'s prototype by lib/binding/repo.ts. */
export const remoteMethods = repoMethods<RemoteMethods>({
  addRemote: addRemote,
  remotes: listRemotes,
  getRemote: getRemote,
  changeRemote: changeRemote,
  deleteRemote: deleteRemote,
  importRemoteKeys: importRemoteKeys,
  listRemoteRefs: listRemoteRefs,
  fetchRemoteSummary: fetchRemoteSummary,
});
