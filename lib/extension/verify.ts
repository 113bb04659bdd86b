/**
 * Signature checks of installed extensions: which keys each one is checked against, and when a
 * missing signature is a failure — the policy `ostree-sysext verify` prints.
 * @module
 */
import { resolve } from 'node:path';
import * as is from '../binding/args.js';
import { isOstreeError } from '../binding/errors.js';
import type { CallOptions, FsckResult } from '../binding/repo.js';
import type { Signature } from '../binding/sign.js';
import type { ExtensionStore } from './store.js';

/** Options of {@link verifyExtensions}. */
export interface VerifyExtensionsOptions extends CallOptions {
  /** Check every extension against this remote's keys (signatures then required). */
  remote?: string;
  /** Trusted keys (an exported keyring file) for extensions not pulled from a remote (signatures then required). */
  keyring?: string;
  /** Also check every object of the repository (default true). */
  fsck?: boolean;
}

/** One extension's signature check. */
export interface ExtensionVerification {
  name: string;
  commit: string;
  /** `valid`: a valid signature; `unsigned`: none, and none is required; `invalid`: a required signature is missing or none is valid. */
  status: 'valid' | 'unsigned' | 'invalid';
  /** Whether the commit carries any signature. */
  signed: boolean;
  valid: boolean;
  /** What it was checked against: `remote NAME`, a keyring path, or null (nothing to check against). */
  against: string | null;
  /** The remote it was pulled from, when it was. */
  pulledFrom: string | null;
  /** Who signed, or why no signature passed. */
  message: string;
  signatures: Signature[];
}

/** What {@link verifyExtensions} found. */
export interface VerifyExtensionsResult {
  extensions: ExtensionVerification[];
  /** The repository check, or null when `fsck: false`. */
  fsck: FsckResult | null;
  /** No `invalid` extension and (when run) a clean fsck. */
  ok: boolean;
}

/**
 * Checks the GPG signatures of installed extensions (default: all). Those pulled from a remote
 * are checked against that remote's keys, and need a valid signature when the remote requires
 * one (`gpg-verify`, on by default); others against `keyring` or `remote` when given (then a
 * signature is required), else they are reported as unsigned local builds. Then, unless
 * `fsck: false`, checks every object of the repository.
 * @example
 * ```ts
 * const { ok, extensions } = await verifyExtensions(store, [], { keyring: '/etc/vendor.gpg' });
 * for (const e of extensions) console.log(e.name, e.status, e.message);
 * ```
 */
export async function verifyExtensions(
  store: ExtensionStore,
  names: readonly string[] = [],
  opts: VerifyExtensionsOptions = {},
): Promise<VerifyExtensionsResult> {
  const o = is.options<VerifyExtensionsOptions>('options', opts);
  const signal = is.signal(o.signal);
  const given = o.remote === undefined ? undefined : is.remoteName('remote', o.remote);
  const keyring = o.keyring === undefined ? undefined : resolve(is.nonEmpty('keyring', o.keyring));
  const list = names.length > 0 ? is.stringArray('names', [...names]) : await store.names(signal ? { signal } : {});
  const extensions: ExtensionVerification[] = [];
  for (const name of list) {
    const e = await store.get(name, signal ? { signal } : {});
    const pulledFrom = e.origin?.builder === 'remote' && typeof e.origin.context.remote === 'string' ? e.origin.context.remote : null;
    const remote = given ?? (keyring ? undefined : (pulledFrom ?? undefined));
    // Signatures are required when asked for, or when the remote it came from requires them.
    let required = given !== undefined || keyring !== undefined;
    if (!required && remote !== undefined) required = store.repo.remotes().find((r) => r.name === remote)?.gpgVerify ?? true;
    let signed = true;
    let valid = false;
    let signatures: Signature[] = [];
    let message: string;
    try {
      const r = await store.repo.verifyCommit(e.commit, { ...(signal ? { signal } : {}), ...(remote ? { remote } : keyring ? { keyring } : {}) });
      valid = r.valid;
      signatures = r.signatures;
      message = r.valid
        ? `valid signature by ${r.signatures
            .filter((s) => s.valid)
            .map((s) => s.user ?? s.keyId)
            .join(', ')}`
        : `no valid signature (${r.signatures.map((s) => `${s.keyId}${s.keyMissing ? ' unknown key' : s.keyExpired ? ' expired key' : s.keyRevoked ? ' revoked key' : ' bad'}`).join(', ')})`;
    } catch (err) {
      if (!isOstreeError(err) || !err.code.startsWith('GPG_')) throw err;
      signed = err.code !== 'GPG_NO_SIGNATURE';
      message = signed ? err.message.split('\n')[0]! : 'unsigned';
    }
    const status = valid ? 'valid' : !signed && !required ? 'unsigned' : 'invalid';
    extensions.push({
      name,
      commit: e.commit,
      status,
      signed,
      valid,
      against: remote ? `remote ${remote}` : (keyring ?? null),
      pulledFrom,
      message,
      signatures,
    });
  }
  const fsck = o.fsck === false ? null : await store.repo.fsck(signal ? { signal } : {});
  return { extensions, fsck, ok: extensions.every((x) => x.status !== 'invalid') && (fsck?.ok ?? true) };
}
