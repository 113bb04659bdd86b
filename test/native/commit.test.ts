// Commits through the binding: round trips in every repo mode, commit options, archive
// import, devino-cache recommits and transaction semantics, all on real repositories.
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DevInoCache, OstreeError, Repo, variant, type RepoMode } from '../../lib/index.js';
import { makeTree, readXattrs, snapshotTree, type SnapshotEntry, type TreeSpec } from '../helpers/fixtures.js';
import { run } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-commit-');
let n = 0;
const fresh = (what: string): string => join(base, `${what}-${++n}`);
const create = (mode: RepoMode = 'bare-user-only'): Promise<Repo> => Repo.create(fresh(`repo-${mode}`), { mode, disableFsync: true });

const UID = process.getuid!();
const GID = process.getgid!();

const SOURCE: TreeSpec = {
  'regular.txt': 'hello world\n',
  'exec.sh': { file: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'group-exec': { file: 'g', mode: 0o750 },
  'private.key': { file: 'secret', mode: 0o600 },
  'empty-file': '',
  'setuid-tool': { file: 'suid', mode: 0o4755 },
  'owned-by-1234': 'owned\n',
  'links/relative': { symlink: '../regular.txt' },
  'links/absolute': { symlink: '/usr/lib/os-release' },
  'links/dangling': { symlink: 'does/not/exist' },
  'links/to-dir': { symlink: '../nested' },
  'empty-dir': { dir: true },
  'private-dir': { dir: true, mode: 0o700 },
  'nested/a/b/c/deep.txt': 'deep\n',
  'ünïcödé/日本語 файл ✓.txt': 'unicode name\n',
  'large/random.bin': randomBytes(3 * 1024 * 1024 + 17),
  'large/zeros.bin': Buffer.alloc(1024 * 1024),
  'xattrs/file': { file: 'x', xattrs: { 'user.test': 'value', 'user.bin': Buffer.from([0, 1, 2, 255]) } },
  'xattrs/dir': { dir: true, xattrs: { 'user.dir': 'd' } },
};

const src = join(base, 'src');
let srcSnap: Record<string, SnapshotEntry>;

beforeAll(() => {
  makeTree(src, SOURCE);
  chownSync(join(src, 'owned-by-1234'), 1234, 5678);
  srcSnap = snapshotTree(src, { owners: true });
});

/** What a checkout that ignores ownership (mode user, or a bare-user-only repo) must contain. */
function asUserCheckout(snap: Record<string, SnapshotEntry>): Record<string, SnapshotEntry> {
  const out: Record<string, SnapshotEntry> = {};
  for (const [p, e] of Object.entries(snap)) {
    const c = { ...e, uid: UID, gid: GID };
    if (c.mode !== undefined) c.mode &= ~0o7000; // setuid/setgid/sticky are never restored
    out[p] = c;
  }
  return out;
}

function userXattrs(dir: string): Record<string, Record<string, Buffer>> {
  const x = readXattrs([join(dir, 'xattrs/file'), join(dir, 'xattrs/dir')]);
  for (const attrs of Object.values(x)) delete attrs['user.ostreemeta']; // bare-user's own metadata on hardlinked objects
  return { file: x[join(dir, 'xattrs/file')]!, dir: x[join(dir, 'xattrs/dir')]! };
}

describe('round trip: commit, check out, compare byte for byte', () => {
  const cases: Array<{ repo: RepoMode; checkout: 'none' | 'user'; exact: boolean }> = [
    { repo: 'bare', checkout: 'none', exact: true },
    { repo: 'bare', checkout: 'user', exact: false },
    { repo: 'bare-user', checkout: 'user', exact: false },
    { repo: 'bare-user', checkout: 'none', exact: true },
    { repo: 'bare-user-only', checkout: 'user', exact: false },
    { repo: 'archive', checkout: 'none', exact: true },
    { repo: 'archive', checkout: 'user', exact: false },
  ];
  for (const c of cases) {
    it(`${c.repo} repo, checkout mode ${c.checkout}: ${c.exact ? 'everything incl. owners, setuid and xattrs' : 'content, modes, links, dirs'}`, async () => {
      const repo = await create(c.repo);
      const commit = await repo.commit({ tree: src, ref: 'rt', subject: 'round trip' });
      const dest = fresh('co');
      await repo.checkout(commit, dest, { mode: c.checkout });
      const got = snapshotTree(dest, { owners: true });
      if (c.exact) {
        expect(got).toEqual(srcSnap);
        expect(userXattrs(dest)).toEqual({
          file: { 'user.test': Buffer.from('value'), 'user.bin': Buffer.from([0, 1, 2, 255]) },
          dir: { 'user.dir': Buffer.from('d') },
        });
      } else {
        expect(got).toEqual(asUserCheckout(srcSnap));
        expect(userXattrs(dest)).toEqual({ file: {}, dir: {} });
      }
      repo.close();
    });
  }

  it('bare-user-only stores canonical metadata (no owner, no setuid, no xattrs); bare keeps all of it', async () => {
    const buo = await create('bare-user-only');
    const bare = await create('bare');
    const a = await buo.commit({ tree: src });
    const b = await bare.commit({ tree: src });
    const ownedA = await buo.stat(a, '/owned-by-1234');
    const ownedB = await bare.stat(b, '/owned-by-1234');
    expect([ownedA.uid, ownedA.gid]).toEqual([0, 0]);
    expect([ownedB.uid, ownedB.gid]).toEqual([1234, 5678]);
    expect((await buo.stat(a, '/setuid-tool')).mode).toBe(0o100755);
    expect((await bare.stat(b, '/setuid-tool')).mode).toBe(0o104755);
    expect((await bare.stat(b, '/private.key')).mode).toBe(0o100600);
    // Same content, different stored metadata: different content objects.
    expect((await buo.stat(a, '/owned-by-1234')).checksum).not.toBe(ownedB.checksum);
    buo.close();
    bare.close();
  });
});

describe('commit options', () => {
  const tree = join(base, 'small');
  beforeAll(() =>
    makeTree(tree, { 'a.txt': 'a\n', 'bin/tool': { file: 'tool', mode: 0o4750 }, 'skip-me/x': 'x', 'skip-me/y/z': 'z', 'keep/skip-me': 'not skipped' }),
  );

  it('subject, body and metadata of every value kind survive', async () => {
    const repo = await create();
    const metadata = {
      str: 'text',
      empty: '',
      bool: true,
      no: false,
      int: 42,
      neg: -7,
      float: 1.5,
      big: 2n ** 62n,
      smallBig: 5n,
      buf: Buffer.from([0, 1, 2, 255]),
      bytes: new Uint8Array([9, 8]),
      strs: ['a', 'b'],
      mixed: [1, 'two', true],
      nested: { a: { b: [1, 2], c: 'deep', d: { e: true } } },
      u32: variant('u', 4_000_000_000),
      t64: variant('t', 2n ** 64n - 1n),
      byte: variant('y', 255),
      i16: variant('n', -300),
      i32: variant('i', -2_000_000_000),
      dbl: variant('d', 3),
      objpath: variant('o', '/org/example/Thing'),
      sig: variant('g', 'a{sv}'),
      boxed: variant('v', 'inner'),
      emptyArr: [],
      emptyObj: {},
    };
    const c = await repo.commit({ tree, subject: 'the subject', body: 'line 1\nline 2', metadata, version: '1.2.3' });
    const got = await repo.loadCommit(c);
    expect(got.subject).toBe('the subject');
    expect(got.body).toBe('line 1\nline 2');
    expect(got.version).toBe('1.2.3');
    expect(got.metadata).toEqual({
      str: 'text',
      empty: '',
      bool: true,
      no: false,
      int: 42,
      neg: -7,
      float: 1.5,
      big: 2n ** 62n,
      smallBig: 5,
      buf: Buffer.from([0, 1, 2, 255]),
      bytes: Buffer.from([9, 8]),
      strs: ['a', 'b'],
      mixed: [1, 'two', true],
      nested: { a: { b: [1, 2], c: 'deep', d: { e: true } } },
      u32: 4_000_000_000,
      t64: 2n ** 64n - 1n,
      byte: 255,
      i16: -300,
      i32: -2_000_000_000,
      dbl: 3,
      objpath: '/org/example/Thing',
      sig: 'a{sv}',
      boxed: 'inner',
      emptyArr: [],
      emptyObj: {},
      version: '1.2.3',
    });
    expect(typeof got.metadata.big).toBe('bigint');
    expect(Buffer.isBuffer(got.metadata.buf)).toBe(true);
    repo.close();
  });

  it('typed values out of range are RangeErrors and leave no ref behind', async () => {
    const repo = await create();
    await expect(repo.commit({ tree, ref: 'r', metadata: { x: variant('u', -1) } })).rejects.toBeInstanceOf(RangeError);
    await expect(repo.commit({ tree, ref: 'r', metadata: { x: variant('y', 256) } })).rejects.toBeInstanceOf(RangeError);
    expect(await repo.resolve('r', { allowMissing: true })).toBeNull();
    expect((await repo.fsck()).ok).toBe(true);
    repo.close();
  });

  it('timestamp as Date or seconds', async () => {
    const repo = await create();
    const d = new Date('2021-02-03T04:05:06Z');
    const a = await repo.commit({ tree, timestamp: d });
    const b = await repo.commit({ tree, timestamp: 1_000_000_000 });
    expect((await repo.loadCommit(a)).timestamp.toISOString()).toBe('2021-02-03T04:05:06.000Z');
    expect((await repo.loadCommit(b)).timestamp.getTime()).toBe(1_000_000_000_000);
    const before = Math.floor(Date.now() / 1000);
    const now = await repo.commit({ tree });
    const t = (await repo.loadCommit(now)).timestamp.getTime() / 1000;
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    repo.close();
  });

  it('parent: defaults to the ref’s commit; null makes a root commit; a ref or checksum is used as given', async () => {
    const repo = await create();
    const first = await repo.commit({ tree, ref: 'main', subject: '1' });
    const second = await repo.commit({ tree, ref: 'main', subject: '2' });
    expect((await repo.loadCommit(first)).parent).toBeNull();
    expect((await repo.loadCommit(second)).parent).toBe(first);
    const orphan = await repo.commit({ tree, ref: 'main', parent: null, subject: 'root' });
    expect((await repo.loadCommit(orphan)).parent).toBeNull();
    expect(await repo.resolve('main')).toBe(orphan);
    const byRef = await repo.commit({ tree, parent: 'main' });
    expect((await repo.loadCommit(byRef)).parent).toBe(orphan);
    const byChecksum = await repo.commit({ tree, parent: first });
    expect((await repo.loadCommit(byChecksum)).parent).toBe(first);
    // No ref: no parent, even though other refs exist.
    expect((await repo.loadCommit(await repo.commit({ tree }))).parent).toBeNull();
    await expect(repo.commit({ tree, parent: 'no/such/ref' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    repo.close();
  });

  it('skip leaves out a path with everything below it, and only that path', async () => {
    const repo = await create();
    const c = await repo.commit({ tree, skip: ['skip-me', '/bin/tool'] });
    const { results } = await repo.query(c, [
      { op: 'stat', path: '/skip-me', optional: true },
      { op: 'stat', path: '/skip-me/y/z', optional: true },
      { op: 'stat', path: '/bin/tool', optional: true },
      { op: 'read', path: '/keep/skip-me' },
      { op: 'list', path: '/bin' },
    ]);
    expect(results.slice(0, 3)).toEqual([null, null, null]);
    expect(results[3]).toEqual(Buffer.from('not skipped'));
    expect(results[4]).toEqual([]);
    repo.close();
  });

  it('owner overrides uid/gid of every entry (bare), and a checkout restores them', async () => {
    const repo = await create('bare');
    const c = await repo.commit({ tree, owner: { uid: 4321, gid: 8765 } });
    for (const p of ['/a.txt', '/bin/tool', '/bin', '/skip-me/y']) {
      const e = await repo.stat(c, p);
      expect([p, e.uid, e.gid]).toEqual([p, 4321, 8765]);
    }
    const dest = fresh('co-owner');
    await repo.checkout(c, dest, { mode: 'none' });
    const snap = snapshotTree(dest, { owners: true });
    expect(snap['a.txt']).toMatchObject({ uid: 4321, gid: 8765 });
    expect(snap['bin/tool']).toMatchObject({ uid: 4321, gid: 8765, mode: 0o4750 });
    repo.close();
  });

  it('canonicalPermissions (bare): uid/gid 0, no setuid, mode & 0755', async () => {
    const t = fresh('canon');
    makeTree(t, { 'world-writable': { file: 'w', mode: 0o666 }, suid: { file: 's', mode: 0o4755 }, owned: 'o' });
    chownSync(join(t, 'owned'), 99, 98);
    const repo = await create('bare');
    const c = await repo.commit({ tree: t, canonicalPermissions: true });
    const without = await repo.commit({ tree: t });
    expect(await repo.stat(c, '/world-writable')).toMatchObject({ mode: 0o100644, uid: 0, gid: 0 });
    expect(await repo.stat(c, '/suid')).toMatchObject({ mode: 0o100755 });
    expect(await repo.stat(c, '/owned')).toMatchObject({ uid: 0, gid: 0 });
    expect(await repo.stat(without, '/owned')).toMatchObject({ uid: 99, gid: 98 });
    expect(await repo.stat(without, '/suid')).toMatchObject({ mode: 0o104755 });
    repo.close();
  });

  it('skipXattrs drops extended attributes (bare)', async () => {
    const repo = await create('bare');
    const a = await repo.commit({ tree: src });
    const b = await repo.commit({ tree: src, skipXattrs: true });
    const [ca, cb] = [fresh('co-x'), fresh('co-nox')];
    await repo.checkout(a, ca, { mode: 'none' });
    await repo.checkout(b, cb, { mode: 'none' });
    expect(userXattrs(ca).file['user.test']).toEqual(Buffer.from('value'));
    expect(userXattrs(cb)).toEqual({ file: {}, dir: {} });
    repo.close();
  });
});

describe('devino cache: re-committing a hardlink checkout', () => {
  for (const [mode, co] of [
    ['bare', 'none'],
    ['bare-user-only', 'user'],
  ] as const) {
    it(`${mode}: same checksum, and file contents are not read again with the cache`, async () => {
      // 512 files of 4 KiB: re-reading them costs 2 MiB of read(), which /proc/self/io counts.
      const t = fresh('many');
      const spec: Record<string, string> = {};
      for (let i = 0; i < 512; i++) spec[`d${i % 16}/f${i}`] = `${i}:`.padEnd(4096, String.fromCharCode(97 + (i % 26)));
      makeTree(t, spec);
      const repo = await create(mode);
      const c = await repo.commit({ tree: t, ref: 'x', timestamp: 1_600_000_000 });
      const cache = new DevInoCache();
      const dest = fresh('co-devino');
      await repo.checkout(c, dest, { mode: co, hardlinks: 'require', devinoCache: cache });
      const rchar = () => Number(/rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

      let r0 = rchar();
      const withCache = await repo.commit({ tree: dest, timestamp: 1_600_000_000, devinoCache: cache });
      const readWith = rchar() - r0;
      r0 = rchar();
      const without = await repo.commit({ tree: dest, timestamp: 1_600_000_000 });
      const readWithout = rchar() - r0;
      console.log(`devino ${mode}: re-commit of 512 × 4 KiB read ${readWith} bytes with the cache, ${readWithout} without`);
      expect(withCache).toBe(c);
      expect(without).toBe(c);
      expect(readWithout).toBeGreaterThanOrEqual(512 * 4096);
      expect(readWith).toBeLessThan((512 * 4096) / 4);
      repo.close();
    });
  }

  it('skip, owner and canonicalPermissions still apply with a cache (bare)', async () => {
    const t = fresh('devino-opts');
    makeTree(t, { keep: 'k', drop: 'd', 'sub/suid': { file: 's', mode: 0o4755 } });
    const repo = await create('bare');
    const c = await repo.commit({ tree: t });
    const cache = new DevInoCache();
    const dest = fresh('co-devino-opts');
    await repo.checkout(c, dest, { mode: 'none', devinoCache: cache });
    const skipped = await repo.commit({ tree: dest, devinoCache: cache, skip: ['/drop'] });
    expect((await repo.listDir(skipped, '/')).map((e) => e.name).sort()).toEqual(['keep', 'sub']);
    const owned = await repo.commit({ tree: dest, devinoCache: cache, owner: { uid: 7, gid: 8 } });
    expect(await repo.stat(owned, '/keep')).toMatchObject({ uid: 7, gid: 8 });
    const canon = await repo.commit({ tree: dest, devinoCache: cache, canonicalPermissions: true });
    expect((await repo.stat(canon, '/sub/suid')).mode).toBe(0o100755);
    repo.close();
  });
});

describe('archive import', () => {
  it('a tar made by tar -cf commits to the same tree (content, modes, links, owners)', async () => {
    const t = fresh('tar-src');
    makeTree(t, {
      'usr/bin/tool': { file: '#!/bin/sh\n', mode: 0o755 },
      'usr/lib/data.bin': randomBytes(200_000),
      'usr/lib/link': { symlink: '../bin/tool' },
      'usr/share/empty': { dir: true },
      'etc/conf': { file: 'c', mode: 0o600 },
    });
    chownSync(join(t, 'etc/conf'), 55, 66);
    const tar = join(base, `tree-${++n}.tar`);
    run('tar', ['-cf', tar, '-C', t, '.']);
    const repo = await create('bare');
    const fromTar = await repo.commit({ archive: tar, ref: 'tar', subject: 'from tar' });
    const fromDir = await repo.commit({ tree: t });
    expect((await repo.loadCommit('tar')).subject).toBe('from tar');
    expect((await repo.loadCommit(fromTar)).contentChecksum).toBe((await repo.loadCommit(fromDir)).contentChecksum);
    const dest = fresh('co-tar');
    await repo.checkout('tar', dest, { mode: 'none' });
    const want = snapshotTree(t, { owners: true });
    const got = snapshotTree(dest, { owners: true });
    delete want['.'];
    delete got['.'];
    expect(got).toEqual(want);
    repo.close();
  });

  it('a missing archive rejects (libarchive says only "Failed to open", so the code is FAILED) and moves no ref', async () => {
    const repo = await create();
    const missing = join(base, 'nope.tar');
    const e = (await repo.commit({ archive: missing, ref: 'x' }).catch((x: unknown) => x)) as OstreeError;
    expect(e).toBeInstanceOf(OstreeError);
    expect(e.message).toContain(missing);
    expect(await repo.listRefs()).toEqual({});
    repo.close();
  });
});

describe('transactions', () => {
  const t1 = join(base, 'tx1');
  const t2 = join(base, 'tx2');
  beforeAll(() => {
    makeTree(t1, { f: 'one' });
    makeTree(t2, { f: 'two' });
  });

  it('two commits and a ref become visible together, when the callback returns', async () => {
    const repo = await create();
    const other = await Repo.open(repo.path);
    const [a, b] = await repo.transaction(async (tx) => {
      const a = await tx.commit({ tree: t1, subject: 'a' });
      const b = await tx.commit({ tree: t2, subject: 'b', parent: a });
      tx.setRef('pair', b);
      // Not yet visible to another handle.
      expect(await other.resolve('pair', { allowMissing: true })).toBeNull();
      expect(await other.listRefs()).toEqual({});
      return [a, b] as const;
    });
    expect(await other.resolve('pair')).toBe(b);
    const log = await other.log('pair');
    expect(log.commits.map((c) => c.checksum)).toEqual([b, a]);
    expect((await other.readFile('pair', '/f')).toString()).toBe('two');
    other.close();
    repo.close();
  });

  it('a throwing callback aborts: no ref moves, fsck is clean, the next transaction works', async () => {
    const repo = await create();
    const c0 = await repo.commit({ tree: t1, ref: 'main' });
    const boom = new Error('boom');
    let inside: string | undefined;
    await expect(
      repo.transaction(async (tx) => {
        inside = await tx.commit({ tree: t2, ref: 'main' });
        tx.setRef('other', inside);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(inside).toMatch(/^[0-9a-f]{64}$/);
    expect(await repo.listRefs()).toEqual({ main: c0 });
    const fsck = await repo.fsck();
    expect(fsck).toMatchObject({ ok: true, missing: [], corrupt: [] });
    const next = await repo.transaction(async (tx) => tx.commit({ tree: t2, ref: 'main' }));
    expect(await repo.resolve('main')).toBe(next);
    expect((await repo.loadCommit(next)).parent).toBe(c0);
    repo.close();
  });

  it('a failing commit inside aborts the same way', async () => {
    const repo = await create();
    const c0 = await repo.commit({ tree: t1, ref: 'main' });
    await expect(
      repo.transaction(async (tx) => {
        await tx.commit({ tree: t2, ref: 'main' });
        await tx.commit({ tree: join(base, 'does-not-exist'), ref: 'main' });
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await repo.resolve('main')).toBe(c0);
    expect((await repo.fsck()).ok).toBe(true);
    repo.close();
  });

  it('writes through the repo inside the callback reject with TRANSACTION_IN_PROGRESS instead of deadlocking', async () => {
    const repo = await create();
    const c0 = await repo.commit({ tree: t1, ref: 'main' });
    const deadline = <T>(p: Promise<T>): Promise<T> =>
      Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('deadlock: still pending after 5 s')), 5000))]);
    const seen: unknown[] = [];
    await repo.transaction(async (tx) => {
      await tx.commit({ tree: t2 });
      const attempts: Array<() => Promise<unknown>> = [
        () => repo.setRef('main', c0),
        () => repo.commit({ tree: t2 }),
        () => repo.transaction(async () => undefined),
        () => repo.setConfig('core', 'x', 'y'),
        () => repo.prune(),
      ];
      for (const attempt of attempts) {
        seen.push(await deadline(attempt()).catch((e: unknown) => e));
      }
    });
    expect(seen).toHaveLength(5);
    for (const e of seen) {
      expect(e).toBeInstanceOf(OstreeError);
      expect((e as OstreeError).code).toBe('TRANSACTION_IN_PROGRESS');
    }
    // The handle still works afterwards.
    await repo.setRef('after', c0);
    expect(await repo.resolve('after')).toBe(c0);
    repo.close();
  });

  it('the Transaction object is dead once the callback returned', async () => {
    const repo = await create();
    let saved: import('../../lib/index.js').Transaction | undefined;
    await repo.transaction(async (tx) => {
      saved = tx;
    });
    await expect(saved!.commit({ tree: t1 })).rejects.toBeInstanceOf(OstreeError);
    expect(() => saved!.setRef('x', 'a'.repeat(64))).toThrow(OstreeError);
    repo.close();
  });

  it('concurrent commits on one handle are serialised, all land', async () => {
    const repo = await create();
    const dirs = Array.from({ length: 8 }, (_, i) => {
      const d = fresh(`conc-${i}`);
      mkdirSync(d);
      makeTree(d, { f: `content ${i}` });
      return d;
    });
    const commits = await Promise.all(dirs.map((d, i) => repo.commit({ tree: d, ref: `c/${i}` })));
    expect(new Set(commits).size).toBe(8);
    const refs = await repo.listRefs();
    for (let i = 0; i < 8; i++) expect(refs[`c/${i}`]).toBe(commits[i]);
    expect((await repo.fsck()).ok).toBe(true);
    repo.close();
  });
});

describe('history and detached metadata', () => {
  const t = join(base, 'hist');
  beforeAll(() => makeTree(t, { f: 'x' }));

  it('loadCommit returns every field', async () => {
    const repo = await create();
    const parent = await repo.commit({ tree: t, ref: 'h' });
    const c = await repo.commit({ tree: t, ref: 'h', subject: 'S', body: 'B', version: '9', timestamp: 1_234_567_890, metadata: { k: 'v' } });
    const got = await repo.loadCommit('h');
    expect(got).toEqual({
      checksum: c,
      subject: 'S',
      body: 'B',
      timestamp: new Date(1_234_567_890_000),
      parent,
      version: '9',
      contentChecksum: expect.stringMatching(/^[0-9a-f]{64}$/),
      metadata: { k: 'v', version: '9' },
      detachedMetadata: null,
      partial: false,
    });
    expect(await repo.loadCommit(c)).toEqual(got);
    repo.close();
  });

  it('log walks parents newest first, honours maxCount, and ^ ancestry', async () => {
    const repo = await create();
    const chain: string[] = [];
    for (let i = 0; i < 5; i++) chain.push(await repo.commit({ tree: t, ref: 'h', subject: `c${i}` }));
    const all = await repo.log('h');
    expect(all.truncated).toBe(false);
    expect(all.commits.map((c) => c.checksum)).toEqual([...chain].reverse());
    expect(all.commits.map((c) => c.subject)).toEqual(['c4', 'c3', 'c2', 'c1', 'c0']);
    const two = await repo.log('h', { maxCount: 2 });
    expect(two.commits.map((c) => c.subject)).toEqual(['c4', 'c3']);
    expect((await repo.log(chain[1]!)).commits.map((c) => c.subject)).toEqual(['c1', 'c0']);
    expect((await repo.loadCommit('h^^')).checksum).toBe(chain[2]);
    repo.close();
  });

  it('log reports truncated when an older parent is missing', async () => {
    const repo = await create('bare-user-only');
    const a = await repo.commit({ tree: t, ref: 'h' });
    await repo.commit({ tree: t, ref: 'h' });
    const c = await repo.commit({ tree: t, ref: 'h' });
    const { rmSync } = await import('node:fs');
    rmSync(join(repo.path, 'objects', a.slice(0, 2), `${a.slice(2)}.commit`));
    const log = await repo.log('h');
    expect(log.commits).toHaveLength(2);
    expect(log.commits[0]!.checksum).toBe(c);
    expect(log.truncated).toBe(true);
    repo.close();
  });

  it('detached metadata is written, read back with the commit, and removed with null', async () => {
    const repo = await create();
    const c = await repo.commit({ tree: t, ref: 'h' });
    await repo.writeDetachedMetadata(c, { sig: Buffer.from([1, 2, 3]), note: 'n', n: variant('u', 7) });
    expect((await repo.loadCommit('h')).detachedMetadata).toEqual({ sig: Buffer.from([1, 2, 3]), note: 'n', n: 7 });
    // The commit itself is unchanged.
    expect(await repo.resolve('h')).toBe(c);
    await repo.writeDetachedMetadata(c, null);
    expect((await repo.loadCommit(c)).detachedMetadata).toBeNull();
    repo.close();
  });
});
