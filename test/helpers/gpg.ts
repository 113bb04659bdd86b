/**
 * Throwaway GnuPG keys: each key lives in its own temporary homedir (passed explicitly, never
 * the user's), and the agent is killed when the key is disposed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A generated signing key. */
export interface GpgKey {
  /** GnuPG home holding the secret key. */
  homedir: string;
  /** Long key id (16 hex digits). */
  keyId: string;
  fingerprint: string;
  /** The armored public key. */
  publicKey: Buffer;
  /** The armored public key, as a file. */
  publicKeyFile: string;
  /** Kills the agent and removes the homedir. */
  dispose(): void;
}

function gpg(homedir: string, args: string[], input?: string): string {
  const r = spawnSync('gpg', ['--homedir', homedir, '--batch', '--no-tty', ...args], {
    encoding: 'utf8',
    input,
    env: { ...process.env, GNUPGHOME: homedir },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`gpg ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Kills every GnuPG daemon of `homedir`. */
export function killAgent(homedir: string): void {
  spawnSync('gpgconf', ['--homedir', homedir, '--kill', 'all'], { env: { ...process.env, GNUPGHOME: homedir } });
}

/** Options of {@link generateKey}. */
export interface KeyOptions {
  /**
   * Run this homedir's gpg at a fixed past time (`20200101T000000`), written to its gpg.conf so
   * that signing through libostree uses it too: with `expire`, makes an already expired key.
   */
  fakedTime?: string;
  /** Expiry as gpg takes it (`1d`, `2y`). Default never. */
  expire?: string;
}

/** Generates an ed25519 signing key (fast, no entropy wait) in a new homedir. */
export function generateKey(name = 'ostree-sysext test', opts: KeyOptions = {}): GpgKey {
  // Short path: the agent's socket path must stay under 108 bytes.
  const homedir = mkdtempSync(join(tmpdir(), 'osx-gpg-'));
  if (opts.fakedTime) writeFileSync(join(homedir, 'gpg.conf'), `faked-system-time ${opts.fakedTime}\n`);
  const uid = `${name} <test@ostree-sysext.invalid>`;
  gpg(homedir, ['--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', opts.expire ?? 'never']);
  const colons = gpg(homedir, ['--with-colons', '--list-keys', uid]);
  const fpr = colons
    .split('\n')
    .find((l) => l.startsWith('fpr:'))
    ?.split(':')[9];
  if (!fpr) throw new Error(`gpg: no fingerprint for the new key:\n${colons}`);
  const publicKey = Buffer.from(gpg(homedir, ['--armor', '--export', fpr]));
  const publicKeyFile = join(homedir, 'public.asc');
  writeFileSync(publicKeyFile, publicKey);
  return {
    homedir,
    keyId: fpr.slice(-16),
    fingerprint: fpr,
    publicKey,
    publicKeyFile,
    dispose() {
      killAgent(homedir);
      rmSync(homedir, { recursive: true, force: true });
    },
  };
}
