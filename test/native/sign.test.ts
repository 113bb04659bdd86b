// Publisher side through the binding: GPG-signing commits, verifying who signed them (valid,
// missing, expired and revoked keys), signed summaries and static deltas, checked against
// the ostree CLI's own view of the repository.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import { Repo } from '../../lib/binding/repo.js';
import { makeTree } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { ostreeRepo } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-sign-');
let n = 0;
const keys: GpgKey[] = [];
let alice: GpgKey;
let bob: GpgKey;

function exportKeyring(key: GpgKey, file: string): string {
  const r = spawnSync('gpg', ['--homedir', key.homedir, '--batch', '--yes', '--export', '-o', file, key.fingerprint]);
  if (r.status !== 0) throw new Error(`gpg --export: ${r.stderr}`);
  return file;
}

async function repoWithCommit(mode: 'archive' | 'bare-user-only' = 'archive'): Promise<{ repo: Repo; commit: string }> {
  const path = join(base, `repo-${++n}`);
  const repo = await Repo.create(path, { mode, disableFsync: true });
  makeTree(join(path + '-tree'), { 'usr/share/x': `x ${n}\n` });
  const commit = await repo.commit({ tree: path + '-tree', ref: 'os/main', subject: `commit ${n}` });
  return { repo, commit };
}

beforeAll(() => {
  alice = generateKey('Alice');
  bob = generateKey('Bob');
  keys.push(alice, bob);
});
afterAll(() => keys.forEach((k) => k.dispose()));

describe('signing and verifying commits', () => {
  it('signs a commit and reports who signed it, as plain objects', async () => {
    const { repo, commit } = await repoWithCommit();
    const before = Math.floor(Date.now() / 1000);
    await repo.signCommit('os/main', { keyId: alice.keyId, homedir: alice.homedir });
    const v = await repo.verifyCommit('os/main', { keyring: exportKeyring(alice, join(base, 'alice.gpg')) });
    expect(v.checksum).toBe(commit);
    expect(v.valid).toBe(true);
    expect(v.signatures).toHaveLength(1);
    const s = v.signatures[0]!;
    expect(s).toMatchObject({
      keyId: alice.keyId,
      fingerprint: alice.fingerprint,
      primaryFingerprint: alice.fingerprint,
      valid: true,
      sigExpired: false,
      keyExpired: false,
      keyRevoked: false,
      keyMissing: false,
      expiresAt: null,
      keyExpiresAt: null,
      pubkeyAlgorithm: 'EdDSA',
      user: 'Alice',
      email: 'test@ostree-sysext.invalid',
    });
    expect(s.createdAt.getTime() / 1000).toBeGreaterThanOrEqual(before - 1);
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
    // The CLI sees the same signature in the commit's detached metadata.
    expect(ostreeRepo(repo.path, ['show', '--print-detached-metadata-key=ostree.gpgsigs', commit])).toMatch(/^\[<?\[byte 0x/);
  });

  it('verifies against a keyring directory and against a remote’s imported keys', async () => {
    const { repo, commit } = await repoWithCommit();
    await repo.signCommit(commit, { keyId: alice.fingerprint, homedir: alice.homedir });
    const dir = join(base, `keyring-dir-${n}`);
    mkdirSync(dir, { recursive: true });
    exportKeyring(alice, join(dir, 'alice.gpg'));
    expect((await repo.verifyCommit(commit, { keyringDir: dir })).valid).toBe(true);
    await repo.addRemote('origin', { url: 'http://example.invalid/repo' });
    await repo.importRemoteKeys('origin', alice.publicKey);
    expect((await repo.verifyCommit(commit, { remote: 'origin' })).signatures[0]!.keyId).toBe(alice.keyId);
  });

  it('keeps every signature; a key not trusted shows as keyMissing and not valid', async () => {
    const { repo, commit } = await repoWithCommit();
    await repo.signCommit(commit, { keyId: alice.keyId, homedir: alice.homedir });
    await repo.signCommit(commit, { keyId: bob.keyId, homedir: bob.homedir });
    const v = await repo.verifyCommit(commit, { keyring: exportKeyring(alice, join(base, `alice-${n}.gpg`)) });
    expect(v.valid).toBe(true);
    const byKey = Object.fromEntries(v.signatures.map((s) => [s.keyId, s]));
    expect(byKey[alice.keyId]).toMatchObject({ valid: true, keyMissing: false });
    expect(byKey[bob.keyId]).toMatchObject({ valid: false, keyMissing: true, user: null });
    const onlyBob = await repo.verifyCommit(commit, { keyring: exportKeyring(bob, join(base, `bob-${n}.gpg`)) });
    expect(onlyBob.signatures.filter((s) => s.valid).map((s) => s.keyId)).toEqual([bob.keyId]);
  });

  it('signing again with the same key adds a second signature (libostree 2022.7 does not deduplicate)', async () => {
    const { repo, commit } = await repoWithCommit();
    await repo.signCommit(commit, { keyId: alice.keyId, homedir: alice.homedir });
    await repo.signCommit(commit, { keyId: alice.keyId, homedir: alice.homedir });
    const v = await repo.verifyCommit(commit, { keyring: exportKeyring(alice, join(base, `alice-${n}.gpg`)) });
    expect(v.signatures.map((s) => [s.keyId, s.valid])).toEqual([
      [alice.keyId, true],
      [alice.keyId, true],
    ]);
  });

  it('rejects an unsigned commit with GPG_NO_SIGNATURE', async () => {
    const { repo } = await repoWithCommit();
    const e = await repo.verifyCommit('os/main', { keyring: exportKeyring(alice, join(base, `alice-${n}.gpg`)) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect((e as OstreeError).code).toBe('GPG_NO_SIGNATURE');
  });

  it('reports a signing key that is not in the homedir as a typed error', async () => {
    const { repo, commit } = await repoWithCommit();
    const e = await repo.signCommit(commit, { keyId: bob.fingerprint, homedir: alice.homedir }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect((e as OstreeError).message).toContain(bob.fingerprint);
    expect((await repo.loadCommit(commit)).detachedMetadata).toBeNull();
  });

  it('reports an expired key (keyExpired) and a revoked key (keyRevoked), both not valid', async () => {
    const { repo, commit } = await repoWithCommit();
    // A key that expired in 2020: generated and used at a faked time set in its gpg.conf.
    const old = generateKey('Old', { fakedTime: '20200101T000000', expire: '1d' });
    keys.push(old);
    await repo.signCommit(commit, { keyId: old.keyId, homedir: old.homedir });
    const expired = await repo.verifyCommit(commit, { keyring: exportKeyring(old, join(base, 'old.gpg')) });
    expect(expired.valid).toBe(false);
    expect(expired.signatures[0]).toMatchObject({ keyId: old.keyId, keyExpired: true, valid: false });
    expect(expired.signatures[0]!.keyExpiresAt?.toISOString()).toBe('2020-01-02T00:00:00.000Z');

    const { repo: repo2, commit: commit2 } = await repoWithCommit();
    const gone = generateKey('Revoked');
    keys.push(gone);
    await repo2.signCommit(commit2, { keyId: gone.keyId, homedir: gone.homedir });
    // gpg stores a revocation certificate at key creation; importing it revokes the key.
    const cert = readFileSync(join(gone.homedir, 'openpgp-revocs.d', `${gone.fingerprint}.rev`), 'utf8').replace(/^:-----/m, '-----');
    const imp = spawnSync('gpg', ['--homedir', gone.homedir, '--batch', '--import'], { input: cert });
    expect(imp.status).toBe(0);
    const revoked = await repo2.verifyCommit(commit2, { keyring: exportKeyring(gone, join(base, 'revoked.gpg')) });
    expect(revoked.signatures[0]).toMatchObject({ keyId: gone.keyId, keyRevoked: true, valid: false });
    expect(revoked.valid).toBe(false);
  });

  it('validates arguments first', async () => {
    const { repo, commit } = await repoWithCommit();
    await expect(repo.signCommit(commit, { keyId: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(repo.verifyCommit(commit, { remote: 'origin', keyring: '/x' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(repo.verifyCommit('not a rev!')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(repo.generateDelta({ to: commit, maxChunkSizeMiB: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(repo.signCommit('os/missing', { keyId: alice.keyId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('summary and static deltas', () => {
  it('regenerates a signed summary the CLI reads', async () => {
    const { repo, commit } = await repoWithCommit();
    await repo.regenerateSummary({ keyIds: [alice.keyId], homedir: alice.homedir });
    expect(existsSync(join(repo.path, 'summary'))).toBe(true);
    expect(existsSync(join(repo.path, 'summary.sig'))).toBe(true);
    const view = ostreeRepo(repo.path, ['summary', '--view']);
    expect(view).toContain('* os/main');
    expect(view).toContain(commit);
    // An unsigned regeneration drops the stale signature instead of leaving a mismatched one.
    await repo.regenerateSummary();
    expect(existsSync(join(repo.path, 'summary.sig'))).toBe(false);
  });

  it('generates from-scratch and from→to deltas and lists them in the summary', async () => {
    const { repo, commit: first } = await repoWithCommit();
    makeTree(join(base, 'tree-v2'), { 'usr/share/x': 'x v2\n', 'usr/share/y': 'new\n' });
    const second = await repo.commit({ tree: join(base, 'tree-v2'), ref: 'os/main', subject: 'v2' });
    await repo.generateDelta({ to: first, summary: false });
    await repo.generateDelta({ from: 'os/main^', to: 'os/main', summary: { keyIds: [alice.keyId], homedir: alice.homedir } });
    const list = ostreeRepo(repo.path, ['static-delta', 'list'])
      .split('\n')
      .filter((l) => l.trim() !== '');
    expect(list.sort()).toEqual([`${first}`, `${first}-${second}`].sort());
    const view = ostreeRepo(repo.path, ['summary', '--view']);
    expect(view).toContain('Static Deltas');
    expect(view).toContain(`${first}-${second}`);
    expect(existsSync(join(repo.path, 'summary.sig'))).toBe(true);
    expect(ostreeRepo(repo.path, ['static-delta', 'show', `${first}-${second}`])).toMatch(/Delta: /);
  });
});
