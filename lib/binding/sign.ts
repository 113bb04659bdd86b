/**
 * Publishing: GPG signatures on commits (sign, verify), the summary file, static deltas.
 * @module
 */
import type { NativeSignature } from './native-contract.js';
import * as is from './args.js';
import { ArgumentError } from './errors.js';
import { cancellable, type CallOptions } from './signal.js';
import { repoMethods, type RepoAccess } from './repo-access.js';

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
/**
 * {@link Repo}'s publishing methods: GPG signatures, the summary, static deltas (lib/binding/sign.ts).
 */
export interface PublishMethods {
  /** Adds a GPG signature to a commit (detached metadata). */
  signCommit(rev: string, opts: SignOptions): Promise<void>;

  /** Checks a commit's GPG signatures; rejects with `GPG_NO_SIGNATURE` when it has none. */
  verifyCommit(rev: string, opts?: VerifyOptions): Promise<VerifyResult>;

  /** Rewrites the summary file (refs and static deltas), signed when `keyIds` are given. */
  regenerateSummary(opts?: SummaryOptions): Promise<void>;

  /** Generates a static delta (`from` → `to`, or from scratch) and by default regenerates the summary. */
  generateDelta(opts: DeltaOptions): Promise<void>;
}

/** @internal The PublishMethods methods, attached to {@link Repo}'s prototype by lib/binding/repo.ts. */
export const publishMethods = repoMethods<PublishMethods>({
  signCommit: signCommit,
  verifyCommit: verifyCommit,
  regenerateSummary: regenerateSummary,
  generateDelta: generateDelta,
});
