// Signature enforcement end to end: a vendor repository (archive mode) served by a real nginx,
// a client sysroot repository with the vendor's remote (gpg-verify=true) and key imported.
// A signed ref installs; an unsigned commit, a commit signed by another key, a tampered
// object and a tampered summary (gpg-verify-summary) are refused with typed errors, leave no
// `ostree-sysext/ext/*` ref behind, and never become part of an applied set.
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applySet } from '../../lib/sets/activate.js';
import { baseFromDeployment } from '../../lib/extension/base.js';
import { DeploymentSet } from '../../lib/sets/deployment-set.js';
import { OstreeError } from '../../lib/binding/errors.js';
import { ExtensionError } from '../../lib/extension/errors.js';
import { Repo } from '../../lib/binding/repo.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { Sysroot } from '../../lib/binding/sysroot.js';
import { makeTestSysroot, makeTree } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('signatures-');
const vendorPath = join(dir, 'vendor');
const EXT_PREFIX = 'ostree-sysext/ext';
// What a refused install may answer: a signature error, or a checksum/format error.
const REFUSED = /^(GPG_[A-Z_]+|CORRUPT|INVALID_DATA)$/;

let vendorKey: GpgKey;
let otherKey: GpgKey;
let nginx: NginxServer;
let vendor: Repo;
let sysroot: Sysroot;
let client: Repo;
let store: ExtensionStore;

const extTree = (name: string, extra = ''): string => {
  const p = join(dir, 'trees', name);
  makeTree(p, {
    [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=_any\n',
    // Unique content per extension, so its objects are not shared with another ref.
    [`usr/share/${name}/data`]: `${name} ${extra} ${Math.random()}\n`,
  });
  return p;
};

let clock = Math.floor(Date.now() / 1000);
/**
 * Gives summary and summary.sig a new mtime: nginx's ETag is mtime+size, and libostree
 * revalidates its cached summary with it, so two summaries of the same size written in the
 * same second would look unchanged (304) to the client.
 */
function touchSummary(): void {
  clock += 10;
  for (const f of ['summary', 'summary.sig']) {
    const p = join(vendorPath, f);
    if (existsSync(p)) utimesSync(p, clock, clock);
  }
}

/** Commits `name` to the vendor repo under `ext/<name>`, signed by `key` (unsigned when null). */
async function publish(name: string, key: GpgKey | null): Promise<string> {
  const c = await vendor.commit({ tree: extTree(name), ref: `ext/${name}`, subject: name });
  if (key) await vendor.signCommit(c, { keyId: key.keyId, homedir: key.homedir });
  await vendor.regenerateSummary({ keyIds: [vendorKey.keyId], homedir: vendorKey.homedir });
  touchSummary();
  return c;
}

async function extRefs(): Promise<Record<string, string>> {
  return client.listRefs({ prefix: EXT_PREFIX, remotes: false });
}

/** Installs and expects a typed refusal; the extension refs do not change. */
async function expectRefused(remote: string, ref: string): Promise<OstreeError> {
  const before = await extRefs();
  const e = await store.installFromRemote(remote, ref).catch((x: unknown) => x);
  expect(e, String(e)).toBeInstanceOf(OstreeError);
  const err = e as OstreeError;
  expect(err.code, err.message).toMatch(REFUSED);
  expect(await extRefs()).toEqual(before);
  expect(Object.keys(await extRefs()).some((r) => r.endsWith(ref.split('/').pop()!))).toBe(false);
  process.stdout.write(`signatures: ${remote}:${ref} refused with ${err.code} (${err.message.slice(0, 120)})\n`);
  return err;
}

/** Flips bytes in the middle of a file, keeping its size. */
function corrupt(path: string): void {
  const buf = readFileSync(path);
  const at = Math.floor(buf.length / 2);
  for (let i = at; i < Math.min(buf.length, at + 8); i++) buf[i] = buf[i]! ^ 0xff;
  chmodSync(path, 0o644);
  writeFileSync(path, buf);
}

/** The `.filez` objects of the vendor repo (archive mode content objects). */
function fileObjects(): Set<string> {
  const out = new Set<string>();
  const objs = join(vendorPath, 'objects');
  for (const d of readdirSync(objs)) for (const f of readdirSync(join(objs, d))) if (f.endsWith('.filez')) out.add(join(objs, d, f));
  return out;
}

describeAsRoot('signature enforcement end to end (nginx)', () => {
  beforeAll(async () => {
    vendorKey = generateKey('Vendor');
    otherKey = generateKey('Mallory');
    vendor = await Repo.create(vendorPath, { mode: 'archive' });
    nginx = await startNginx({ root: vendorPath });
    const s = makeTestSysroot(join(dir, 'sysroot'), { osname: 'testos', deployments: 1 });
    sysroot = await Sysroot.load(s.path);
    client = await sysroot.repo();
    store = new ExtensionStore(client);
    await client.addRemote('vendor', { url: nginx.url, gpgVerify: true });
    await client.addRemote('vendor-sum', { url: nginx.url, gpgVerify: true, gpgVerifySummary: true });
    expect(await client.importRemoteKeys('vendor', vendorKey.publicKey)).toBe(1);
    expect(await client.importRemoteKeys('vendor-sum', vendorKey.publicKey)).toBe(1);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    vendor?.close();
    await nginx?.stop();
    vendorKey?.dispose();
    otherKey?.dispose();
  });

  it('installs a ref signed by the vendor key', async () => {
    const c = await publish('good', vendorKey);
    const info = await store.installFromRemote('vendor', 'ext/good');
    expect(info.name).toBe('good');
    expect(info.commit).toBe(c);
    expect(Object.keys(await extRefs())).toEqual([`${EXT_PREFIX}/good`]);
    // The signed summary verifies too.
    const c2 = await publish('good2', vendorKey);
    expect((await store.installFromRemote('vendor-sum', 'ext/good2')).commit).toBe(c2);
  });

  it('refuses an unsigned commit', async () => {
    await publish('unsigned', null);
    const e = await expectRefused('vendor', 'ext/unsigned');
    expect(e.code).toBe('GPG_NO_SIGNATURE');
  });

  it('refuses a commit signed by another key', async () => {
    await publish('mallory', otherKey);
    const e = await expectRefused('vendor', 'ext/mallory');
    expect(e.code).toMatch(/^GPG_(MISSING_KEY|INVALID_SIGNATURE|NO_SIGNATURE)$/);
  });

  it('refuses tampered content (an object file modified on the server)', async () => {
    const before = fileObjects();
    await publish('tampered', vendorKey);
    const fresh = [...fileObjects()].filter((f) => !before.has(f));
    expect(fresh.length).toBeGreaterThan(0);
    for (const f of fresh) corrupt(f);
    const e = await expectRefused('vendor', 'ext/tampered');
    expect(e.code).toMatch(/^(CORRUPT|INVALID_DATA)$/);
    // The corrupt object was not stored in the client repo.
    expect((await client.fsck()).ok).toBe(true);
  });

  it('refuses swapped content (a valid object of another file under this checksum)', async () => {
    const before = fileObjects();
    await publish('swapped', vendorKey);
    const fresh = [...fileObjects()].filter((f) => !before.has(f));
    const donor = [...before][0]!;
    for (const f of fresh) {
      chmodSync(f, 0o644);
      copyFileSync(donor, f);
    }
    const e = await expectRefused('vendor', 'ext/swapped');
    expect(e.code).toMatch(/^(CORRUPT|INVALID_DATA)$/);
    expect((await client.fsck()).ok).toBe(true);
  });

  it('refuses a tampered commit object (signature no longer matches)', async () => {
    const c = await publish('tampcommit', vendorKey);
    const file = join(vendorPath, 'objects', c.slice(0, 2), `${c.slice(2)}.commit`);
    const saved = join(dir, 'tampcommit.saved');
    copyFileSync(file, saved);
    corrupt(file);
    await expectRefused('vendor', 'ext/tampcommit');
    // The publisher's tools refuse the damaged commit too (the summary is built from every
    // ref's commit), so the server is repaired before the next test publishes again.
    await expect(vendor.regenerateSummary({ keyIds: [vendorKey.keyId], homedir: vendorKey.homedir })).rejects.toMatchObject({ code: 'CORRUPT' });
    chmodSync(file, 0o644);
    copyFileSync(saved, file);
  });

  it('refuses a tampered summary with gpg-verify-summary', async () => {
    await publish('sumtest', vendorKey);
    const summary = join(vendorPath, 'summary');
    const saved = join(dir, 'summary.saved');
    copyFileSync(summary, saved);
    try {
      corrupt(summary);
      touchSummary();
      const e = await expectRefused('vendor-sum', 'ext/sumtest');
      expect(e.code).toMatch(/^(GPG_[A-Z_]+|CORRUPT|INVALID_DATA)$/);
      // A summary re-signed by another key is refused too.
      copyFileSync(saved, summary);
      await vendor.regenerateSummary({ keyIds: [otherKey.keyId], homedir: otherKey.homedir });
      touchSummary();
      await expectRefused('vendor-sum', 'ext/sumtest');
      // And an unsigned one.
      await vendor.regenerateSummary();
      touchSummary();
      await expectRefused('vendor-sum', 'ext/sumtest');
    } finally {
      await vendor.regenerateSummary({ keyIds: [vendorKey.keyId], homedir: vendorKey.homedir });
      touchSummary();
    }
    // With a good summary again, it installs.
    expect((await store.installFromRemote('vendor-sum', 'ext/sumtest')).name).toBe('sumtest');
  });

  it('no refused extension becomes part of an applied set', async () => {
    expect(Object.keys(await extRefs()).sort()).toEqual(['good', 'good2', 'sumtest'].map((n) => `${EXT_PREFIX}/${n}`));
    const base = await baseFromDeployment(sysroot, sysroot.deployments()[0]!);
    for (const bad of ['unsigned', 'mallory', 'tampered', 'swapped', 'tampcommit']) {
      const e = await new DeploymentSet({ repo: store.repo, osname: 'testos', base })
        .add('good')
        .add(bad)
        .commit()
        .catch((x: unknown) => x);
      expect(e, bad).toBeInstanceOf(Error);
      expect(e instanceof ExtensionError || e instanceof OstreeError, String(e)).toBe(true);
    }
    const set = (await new DeploymentSet({ repo: store.repo, osname: 'testos', base }).add('good').add('good2').commit()).record;
    const r = await applySet({ sysroot, repo: store.repo, osname: 'testos', set: set.commit, wait: true });
    const runExt = join(sysroot.path, 'run', 'extensions');
    const staged = resolve(join(sysroot.path, 'run'), readlinkSync(runExt));
    expect(statSync(staged).isDirectory()).toBe(true);
    expect(readdirSync(staged).sort()).toEqual(['good', 'good2']);
    expect(readdirSync(join(r.checkout, 'staged')).sort()).toEqual(['good', 'good2']);
    expect((await client.fsck()).ok).toBe(true);
  });
});
