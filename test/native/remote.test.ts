// Remote configuration through the binding: add/list/get/change/delete with options, GPG
// key import, and the two reads that pull no content (remote refs, summary), from file://
// and from a real nginx. Every error is checked for its stable code.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import { Repo } from '../../lib/binding/repo.js';
import { makeTree } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { ostreeRepo } from '../helpers/ostree-cli.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-remote-');
let n = 0;
const fresh = (): Promise<Repo> => Repo.create(join(base, `repo-${++n}`), { disableFsync: true });

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as { code?: string }).code;
  }
  throw new Error('expected a rejection');
}

let key: GpgKey;
let server: Repo;
let serverPath: string;
let commit: string;

beforeAll(async () => {
  key = generateKey('remote test');
  serverPath = join(base, 'server');
  server = await Repo.create(serverPath, { mode: 'archive', disableFsync: true });
  makeTree(join(base, 'tree'), { 'usr/lib/a.txt': 'a\n', 'usr/lib/b.txt': 'b\n' });
  commit = await server.commit({ tree: join(base, 'tree'), ref: 'os/main', subject: 'one' });
  await server.setRef('os/other', commit);
  await server.signCommit(commit, { keyId: key.keyId, homedir: key.homedir });
  await server.regenerateSummary({ keyIds: [key.keyId], homedir: key.homedir });
});

afterAll(() => key?.dispose());

describe('remote configuration', () => {
  it('adds a remote with options and reads them back', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', {
      url: 'https://example.com/repo',
      gpgVerifySummary: true,
      options: { branches: ['os/main', 'os/other'], 'tls-permissive': true, proxy: 'http://proxy:3128' },
    });
    expect(repo.getRemote('origin')).toEqual({
      name: 'origin',
      url: 'https://example.com/repo',
      gpgVerify: true,
      gpgVerifySummary: true,
      options: {
        'gpg-verify': 'true',
        'gpg-verify-summary': 'true',
        branches: 'os/main;os/other;',
        'tls-permissive': 'true',
        proxy: 'http://proxy:3128',
      },
    });
    // Written where the CLI finds it.
    expect(ostreeRepo(repo.path, ['remote', 'show-url', 'origin']).trim()).toBe('https://example.com/repo');
    expect(ostreeRepo(repo.path, ['config', 'get', 'remote "origin".branches']).trim()).toBe('os/main;os/other;');
  });

  it('lists remotes sorted by name, including ones the CLI added', async () => {
    const repo = await fresh();
    await repo.addRemote('zeta', { url: 'http://z.example/repo', gpgVerify: false });
    ostreeRepo(repo.path, ['remote', 'add', '--no-gpg-verify', 'alpha', 'http://a.example/repo']);
    const reopened = await Repo.open(repo.path);
    expect(reopened.remotes().map((r) => [r.name, r.url, r.gpgVerify])).toEqual([
      ['alpha', 'http://a.example/repo', false],
      ['zeta', 'http://z.example/repo', false],
    ]);
  });

  it('refuses a duplicate with EXISTS, and ifNotExists / replace change that', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: 'http://one.example/repo' });
    const e = await repo.addRemote('origin', { url: 'http://two.example/repo' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect((e as OstreeError).code).toBe('EXISTS');
    expect((e as OstreeError).message).toContain("add remote 'origin' (http://two.example/repo)");
    await repo.addRemote('origin', { url: 'http://two.example/repo', ifNotExists: true });
    expect(repo.getRemote('origin').url).toBe('http://one.example/repo');
    await repo.addRemote('origin', { url: 'http://three.example/repo', replace: true, gpgVerify: false });
    expect(repo.getRemote('origin')).toMatchObject({ url: 'http://three.example/repo', gpgVerify: false });
  });

  it('changes some settings and keeps the others', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: 'http://one.example/repo', options: { branches: ['a'], proxy: 'http://p:1' } });
    await repo.changeRemote('origin', { url: 'http://moved.example/repo', gpgVerify: false, unset: ['proxy'] });
    const r = repo.getRemote('origin');
    expect(r.url).toBe('http://moved.example/repo');
    expect(r.gpgVerify).toBe(false);
    expect(r.options.branches).toBe('a;');
    expect(r.options.proxy).toBeUndefined();
    expect(await codeOf(repo.changeRemote('nope', { gpgVerify: false }))).toBe('NOT_FOUND');
  });

  it('deletes a remote and its keyring; NOT_FOUND unless ifExists', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: 'http://one.example/repo' });
    await repo.importRemoteKeys('origin', key.publicKey);
    expect(existsSync(join(repo.path, 'origin.trustedkeys.gpg'))).toBe(true);
    await repo.deleteRemote('origin');
    expect(repo.remotes()).toEqual([]);
    expect(existsSync(join(repo.path, 'origin.trustedkeys.gpg'))).toBe(false);
    expect(await codeOf(repo.deleteRemote('origin'))).toBe('NOT_FOUND');
    await repo.deleteRemote('origin', { ifExists: true });
    expect(await codeOf(() => repo.getRemote('origin'))).toBe('NOT_FOUND');
  });

  it('validates arguments before anything reaches native code', async () => {
    const repo = await fresh();
    repo.close();
    // On a closed handle a native call would fail with CLOSED: a TypeError proves lib/ refused first.
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => repo.addRemote('origin', { url: 'not a url' }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.addRemote('origin', { url: 'ftp://example.com/repo' }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.addRemote('origin', { url: 'file:///' }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.addRemote('bad name', { url: 'http://example.com' }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.addRemote('origin', { url: 'http://example.com', options: { branches: [1] as unknown as string[] } }), 'ERR_INVALID_ARG_TYPE'],
      [() => repo.addRemote('origin', { url: 'http://example.com', options: { proxy: 'a\nb' } }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.addRemote('origin', { url: 'http://example.com', ifNotExists: true, replace: true }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.importRemoteKeys('origin', Buffer.alloc(0)), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.importRemoteKeys('origin', 42 as unknown as string), 'ERR_INVALID_ARG_TYPE'],
      [() => repo.pull('origin', { refs: ['../x'] }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.pull('origin', { httpHeaders: { 'X-A': 'a\r\nInjected: 1' } }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.pull('origin', { depth: 1.5 }), 'ERR_INVALID_ARG_TYPE'],
      [() => repo.pull('origin', { timeout: -1 }), 'ERR_OUT_OF_RANGE'],
      [() => repo.pull('origin', { commits: ['a'.repeat(64)] }), 'ERR_INVALID_ARG_VALUE'],
      [() => repo.pull('origin', { onProgress: 'x' as unknown as () => void }), 'ERR_INVALID_ARG_TYPE'],
      [() => repo.pull('gopher://example.com/repo'), 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [call, code] of cases) {
      const e = await call().catch((x: unknown) => x);
      expect(e, String(call)).not.toBeInstanceOf(OstreeError);
      expect((e as { code?: string }).code, String(call)).toBe(code);
    }
    expect(await codeOf(repo.addRemote('origin', { url: 'http://example.com' }))).toBe('CLOSED');
  });
});

describe('GPG keys for a remote', () => {
  it('imports keys from a Buffer and from a file; the keys then verify commits', async () => {
    const repo = await fresh();
    await repo.addRemote('a', { url: `file://${serverPath}` });
    await repo.addRemote('b', { url: `file://${serverPath}` });
    expect(await repo.importRemoteKeys('a', key.publicKey)).toBe(1);
    expect(await repo.importRemoteKeys('b', key.publicKeyFile)).toBe(1);
    await repo.pullLocal(serverPath, { refs: ['os/main'] });
    for (const remote of ['a', 'b']) {
      const v = await repo.verifyCommit(commit, { remote });
      expect(v.valid).toBe(true);
      expect(v.signatures.map((s) => s.keyId)).toEqual([key.keyId]);
    }
  });

  it('reports a missing key file as NOT_FOUND and junk key data as a typed error', async () => {
    const repo = await fresh();
    await repo.addRemote('a', { url: `file://${serverPath}` });
    const missing = await repo.importRemoteKeys('a', join(base, 'no-such.asc')).catch((x: unknown) => x);
    expect((missing as OstreeError).code).toBe('NOT_FOUND');
    expect((missing as OstreeError).message).toContain('no-such.asc');
    const junk = join(base, 'junk.asc');
    writeFileSync(junk, 'this is not a key\n');
    const e = await repo.importRemoteKeys('a', junk).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect(await codeOf(repo.importRemoteKeys('no-such-remote', key.publicKey))).toBe('NOT_FOUND');
  });
});

describe('remote refs and summary without pulling (file://)', () => {
  it('lists the refs of the summary and fetches summary + signature; nothing is pulled', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `file://${serverPath}` });
    expect(await repo.listRemoteRefs('origin')).toEqual({ 'os/main': commit, 'os/other': commit });
    const s = await repo.fetchRemoteSummary('origin');
    expect(s.summary.equals(readFileSync(join(serverPath, 'summary')))).toBe(true);
    expect(s.signatures?.equals(readFileSync(join(serverPath, 'summary.sig')))).toBe(true);
    expect(await repo.listRefs()).toEqual({});
    expect(await codeOf(repo.listRemoteRefs('missing-remote'))).toBe('NOT_FOUND');
  });

  it('reports a repository without summary', async () => {
    const bare = await Repo.create(join(base, 'nosummary'), { mode: 'archive', disableFsync: true });
    const repo = await fresh();
    await repo.addRemote('origin', { url: `file://${bare.path}`, gpgVerify: false });
    const e = await repo.fetchRemoteSummary('origin').catch((x: unknown) => x);
    expect((e as OstreeError).code).toBe('NOT_FOUND');
    expect((e as OstreeError).message).toContain(`remote 'origin' (file://${bare.path})`);
  });
});

describeAsRoot('remote refs and summary over HTTP (nginx)', () => {
  let nginx: NginxServer;
  beforeAll(async () => {
    nginx = await startNginx({ root: base });
  });
  afterAll(() => nginx?.stop());

  it('lists refs and fetches the signed summary from nginx, verifying it', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/server`, gpgVerifySummary: true });
    await repo.importRemoteKeys('origin', key.publicKey);
    expect(await repo.listRemoteRefs('origin')).toEqual({ 'os/main': commit, 'os/other': commit });
    const s = await repo.fetchRemoteSummary('origin');
    expect(s.summary.equals(readFileSync(join(serverPath, 'summary')))).toBe(true);
    expect(s.signatures).not.toBeNull();
  });

  it('refuses the refs of a summary signed by an unknown key', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/server`, gpgVerifySummary: true });
    const e = await repo.listRemoteRefs('origin').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect((e as OstreeError).code).toMatch(/^GPG_/);
  });
});
