// What a pull refuses, and how it fails: with gpg-verify on, an unsigned commit, a commit
// signed by an unknown key, tampered objects and a tampered summary are refused with typed
// errors and leave no ref; unreachable servers, HTTP 404/500, a truncated object and a
// server that never answers each fail with a typed error within a bounded time.
import { cpSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import { Repo } from '../../lib/binding/repo.js';
import { makeManyFiles } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { freePort, startNginx, type NginxServer } from '../helpers/nginx.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-pull-refusals-');
const www = join(base, 'www');
let n = 0;

/** Every object file of one kind under an archive repository. */
function objects(repo: string, suffix: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(repo, 'objects'))) {
    for (const f of readdirSync(join(repo, 'objects', d))) if (f.endsWith(suffix)) out.push(join(repo, 'objects', d, f));
  }
  return out.sort();
}

interface Outcome {
  error: OstreeError;
  ms: number;
}

describeAsRoot('pull refusals and failures', () => {
  let nginx: NginxServer;
  let trusted: GpgKey;
  let stranger: GpgKey;
  let hang: Server;
  let hangPort = 0;
  const hangSockets = new Set<Socket>();

  /** A fresh client with remote `origin` → `url`, trusting `trusted`'s key. */
  async function client(url: string, opts: { gpgVerify?: boolean; gpgVerifySummary?: boolean } = {}): Promise<Repo> {
    const repo = await Repo.create(join(base, `client-${++n}`), { disableFsync: true });
    await repo.addRemote('origin', { url, gpgVerify: opts.gpgVerify ?? true, gpgVerifySummary: opts.gpgVerifySummary ?? false });
    await repo.importRemoteKeys('origin', trusted.publicKey);
    return repo;
  }

  /** Pulls `main` and returns the rejection; fails the test if the pull succeeds. */
  async function refused(repo: Repo, opts: Parameters<Repo['pull']>[1] = {}): Promise<Outcome> {
    const t0 = performance.now();
    const e = await repo.pull('origin', { refs: ['main'], ...opts }).then(
      () => new Error('the pull succeeded'),
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(OstreeError);
    return { error: e as OstreeError, ms: performance.now() - t0 };
  }

  /** No ref points at what was refused, and the repository is consistent. */
  async function untouched(repo: Repo): Promise<void> {
    expect(await repo.listRefs()).toEqual({});
    expect((await repo.fsck()).ok).toBe(true);
  }

  beforeAll(async () => {
    trusted = generateKey('Trusted publisher');
    stranger = generateKey('Stranger');
    mkdirSync(www);
    const publish = async (name: string, sign: GpgKey | null): Promise<string> => {
      const repo = await Repo.create(join(www, name), { mode: 'archive', disableFsync: true });
      const commit = await repo.commit({ tree: makeManyFiles(join(base, `tree-${name}`), 40), ref: 'main', subject: name });
      if (sign) {
        await repo.signCommit(commit, { keyId: sign.keyId, homedir: sign.homedir });
        await repo.regenerateSummary({ keyIds: [sign.keyId], homedir: sign.homedir });
      } else {
        await repo.regenerateSummary();
      }
      return commit;
    };
    await publish('good', trusted);
    await publish('unsigned', null);
    await publish('stranger', stranger);
    // Copies of the good repository with one thing broken each.
    cpSync(join(www, 'good'), join(www, 'tampered-dirtree'), { recursive: true });
    const dirtree = objects(join(www, 'tampered-dirtree'), '.dirtree')[0]!;
    const bytes = readFileSync(dirtree);
    bytes[bytes.length >> 1] ^= 0x20;
    writeFileSync(dirtree, bytes);
    cpSync(join(www, 'good'), join(www, 'truncated'), { recursive: true });
    const filez = objects(join(www, 'truncated'), '.filez')[0]!;
    truncateSync(filez, statSync(filez).size >> 1);
    cpSync(join(www, 'good'), join(www, 'tampered-summary'), { recursive: true });
    const summary = readFileSync(join(www, 'tampered-summary', 'summary'));
    summary[summary.length >> 1] ^= 0x01;
    writeFileSync(join(www, 'tampered-summary', 'summary'), summary);

    nginx = await startNginx({ root: www, locations: 'location /broken/ { return 500; }' });
    // Accepts connections and never answers.
    hang = createServer((s) => {
      hangSockets.add(s);
      s.resume(); // read requests (and the client's EOF), never answer
      s.on('close', () => hangSockets.delete(s));
      s.on('error', () => undefined);
    });
    await new Promise<void>((res) => hang.listen(0, '127.0.0.1', res));
    hangPort = (hang.address() as { port: number }).port;
  });

  afterAll(async () => {
    await nginx?.stop();
    for (const s of hangSockets) s.destroy();
    hang?.close();
    trusted?.dispose();
    stranger?.dispose();
  });

  it('accepts the correctly signed repository (the control for the refusals below)', async () => {
    const repo = await client(`${nginx.url}/good`, { gpgVerifySummary: true });
    const r = await repo.pull('origin', { refs: ['main'] });
    expect(Object.keys(r.refs)).toEqual(['origin:main']);
    expect((await repo.verifyCommit('origin:main', { remote: 'origin' })).valid).toBe(true);
  });

  it('refuses an unsigned commit: GPG_NO_SIGNATURE', async () => {
    const repo = await client(`${nginx.url}/unsigned`);
    const { error } = await refused(repo);
    expect(error.code, error.message).toBe('GPG_NO_SIGNATURE');
    expect(error.message).toContain(`pull main from remote 'origin' (${nginx.url}/unsigned)`);
    await untouched(repo);
  });

  it('refuses a commit signed by an unknown key: GPG_MISSING_KEY, naming the key', async () => {
    const repo = await client(`${nginx.url}/stranger`);
    const { error } = await refused(repo);
    expect(error.code, error.message).toBe('GPG_MISSING_KEY');
    expect(error.message).toContain(stranger.keyId);
    await untouched(repo);
  });

  it('refuses a tampered object: CORRUPT, with the expected and actual checksums', async () => {
    const repo = await client(`${nginx.url}/tampered-dirtree`);
    const { error } = await refused(repo);
    expect(error.code, error.message).toBe('CORRUPT');
    expect(error.message).toMatch(/checksum expected='[0-9a-f]{64}' actual='[0-9a-f]{64}'/);
    await untouched(repo);
  });

  it('refuses a tampered summary when gpg-verify-summary is on: a GPG error', async () => {
    const repo = await client(`${nginx.url}/tampered-summary`, { gpgVerifySummary: true });
    const { error } = await refused(repo);
    expect(error.code, error.message).toBe('GPG_INVALID_SIGNATURE');
    await untouched(repo);
    // The same summary through listRemoteRefs is refused too.
    await expect(repo.listRemoteRefs('origin')).rejects.toMatchObject({ code: 'GPG_INVALID_SIGNATURE' });
  });

  it('refuses a truncated object: CORRUPT, quickly', async () => {
    const repo = await client(`${nginx.url}/truncated`, { gpgVerify: false });
    const { error, ms } = await refused(repo);
    expect(error.code, error.message).toBe('CORRUPT');
    expect(ms).toBeLessThan(5000);
    await untouched(repo);
  });

  it('reports HTTP 404 as NOT_FOUND and HTTP 500 as HTTP_ERROR, quickly', async () => {
    const missing = await client(`${nginx.url}/no-such-repo`, { gpgVerify: false });
    const a = await refused(missing);
    expect(a.error.code).toBe('NOT_FOUND');
    expect(a.error.message).toContain('404');
    expect(a.ms).toBeLessThan(5000);
    const noRef = await client(`${nginx.url}/good`);
    const b = await noRef.pull('origin', { refs: ['no/such/ref'] }).catch((x: unknown) => x);
    expect((b as OstreeError).code).toBe('NOT_FOUND');
    expect((b as OstreeError).message).toContain('no/such/ref');
    const broken = await client(`${nginx.url}/broken`, { gpgVerify: false });
    const c = await refused(broken, { networkRetries: 1 });
    expect(c.error.code).toBe('HTTP_ERROR');
    expect(c.error.message).toContain('500');
    expect(c.ms).toBeLessThan(5000);
    await untouched(broken);
  });

  it('reports a closed port as CONNECTION_REFUSED and an unresolvable host as HOST_NOT_FOUND, quickly', async () => {
    const refusedRepo = await client(`http://127.0.0.1:${await freePort()}/repo`, { gpgVerify: false });
    const a = await refused(refusedRepo, { networkRetries: 0 });
    expect(a.error.code).toBe('CONNECTION_REFUSED');
    expect(a.ms).toBeLessThan(5000);
    const nowhere = await client('http://no-such-host.invalid/repo', { gpgVerify: false });
    const b = await refused(nowhere, { networkRetries: 0, timeout: 10_000 });
    expect(['HOST_NOT_FOUND', 'TIMED_OUT']).toContain(b.error.code);
    expect(b.ms).toBeLessThan(11_000);
  });

  it('gives up on a server that never answers: TIMED_OUT after the stall timeout, and its connections are closed', async () => {
    const repo = await client(`http://127.0.0.1:${hangPort}/repo`, { gpgVerify: false });
    const { error, ms } = await refused(repo, { stallTimeout: 700 });
    expect(error.code, error.message).toBe('TIMED_OUT');
    expect(error.message).toContain(`pull main from remote 'origin' (http://127.0.0.1:${hangPort}/repo): timed out (no progress for 700 ms)`);
    expect(ms).toBeGreaterThanOrEqual(650);
    expect(ms).toBeLessThan(700 + 1500);
    // The stuck request was really stopped: the server sees every connection closed.
    const deadline = Date.now() + 2000;
    while (hangSockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(hangSockets.size).toBe(0);
    await untouched(repo);
  });

  it('bounds a hanging pull by the overall timeout and by an abort, each within a second of it', async () => {
    const repo = await client(`http://127.0.0.1:${hangPort}/repo`, { gpgVerify: false });
    const a = await refused(repo, { timeout: 500, stallTimeout: 0 });
    expect(a.error.code).toBe('TIMED_OUT');
    expect(a.error.message).toContain('no result after 500 ms');
    expect(a.ms).toBeLessThan(500 + 1000);

    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 300);
    const e = await repo.pull('origin', { refs: ['main'], signal: ac.signal, stallTimeout: 0 }).catch((x: unknown) => x);
    expect((e as Error).name).toBe('AbortError');
    expect(performance.now() - t0).toBeLessThan(300 + 1000);
  });

  it('bounds listRemoteRefs and fetchRemoteSummary on a server that never answers', async () => {
    const repo = await client(`http://127.0.0.1:${hangPort}/repo`, { gpgVerify: false });
    for (const call of [() => repo.listRemoteRefs('origin', { timeout: 400 }), () => repo.fetchRemoteSummary('origin', { timeout: 400 })]) {
      const t0 = performance.now();
      const e = (await call().catch((x: unknown) => x)) as OstreeError;
      expect(e.code).toBe('TIMED_OUT');
      expect(performance.now() - t0).toBeLessThan(400 + 1000);
    }
  });
});
