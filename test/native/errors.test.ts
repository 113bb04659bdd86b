// Error paths: typed OstreeErrors for missing things, AbortError mid-operation (and a clean
// repo afterwards), argument checks before any native code runs, and closed handles.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortError, DevInoCache, OstreeError, Repo, Sysroot, codeFromGError, variant } from '../../lib/index.js';
import { makeManyFiles, makeTree } from '../helpers/fixtures.js';
import { run } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-errors-');
let n = 0;
const fresh = (what: string): string => join(base, `${what}-${++n}`);
const small = join(base, 'small');
const CSUM = 'a'.repeat(64);

beforeAll(() => makeTree(small, { f: 'x', 'd/g': 'y' }));

describe('missing things are typed OstreeErrors', () => {
  it('opening a path without a repository: NOT_FOUND', async () => {
    for (const p of [join(base, 'nothing-here'), base]) {
      const e = await Repo.open(p).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OstreeError);
      expect(e).toMatchObject({ name: 'OstreeError', code: 'NOT_FOUND', domain: 'g-io-error-quark' });
      expect((e as Error).message).toContain(p);
    }
  });

  it('a missing ref or commit: NOT_FOUND everywhere', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    const codes = await Promise.all(
      [
        () => repo.resolve('missing'),
        () => repo.loadCommit('missing'),
        () => repo.loadCommit(CSUM),
        () => repo.log('missing'),
        () => repo.readFile('missing', '/f'),
        () => repo.checkout('missing', fresh('co')),
        () => repo.checkout(CSUM, fresh('co')),
        () => repo.deleteRef('missing'),
      ].map((f) =>
        f().then(
          () => 'resolved',
          (e: unknown) => (e instanceof OstreeError ? e.code : String(e)),
        ),
      ),
    );
    expect(codes).toEqual(Array(8).fill('NOT_FOUND'));
    repo.close();
  });

  it('checkout onto an existing directory: EXISTS', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    await repo.commit({ tree: small, ref: 'r' });
    const dest = fresh('existing');
    mkdirSync(dest);
    await expect(repo.checkout('r', dest)).rejects.toMatchObject({ name: 'OstreeError', code: 'EXISTS' });
    repo.close();
  });

  it('errors carry domain, numeric code, the libostree message and what was being done', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    const e = (await repo.resolve('some/ref').catch((x: unknown) => x)) as OstreeError;
    expect(e.domain).toBe('g-io-error-quark');
    expect(e.gerrorCode).toBe(1);
    expect(e.operation).toBe('resolve some/ref');
    expect(e.message.startsWith('resolve some/ref: ')).toBe(true);
    expect(e.gerrorMessage).toMatch(/some\/ref/);
    expect(e.stack).toBeTruthy();
    repo.close();
  });
});

describe('AbortSignal', () => {
  const FILES = 10_000;
  let many: string;
  beforeAll(() => {
    many = makeManyFiles(fresh('many'), FILES);
  });

  const countFileObjects = async (repo: Repo): Promise<number> => {
    let count = 0;
    for (const d of await readdir(join(repo.path, 'objects')))
      count += (await readdir(join(repo.path, 'objects', d))).filter((f) => f.endsWith('.file')).length;
    return count;
  };

  it('aborting a 10,000-file commit midway rejects with AbortError; fsck is clean; a retry succeeds', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    const before = await repo.commit({ tree: small, ref: 'main' });
    const ac = new AbortController();
    const reason = new Error('stop now');
    const started = performance.now();
    const pending = repo.commit({ tree: many, ref: 'main', signal: ac.signal });
    // Abort once the commit is visibly under way: objects land in objects/ (fsync is off).
    while ((await countFileObjects(repo)) < 200) {
      if (performance.now() - started > 20_000) throw new Error('the commit never started writing objects');
      await new Promise((r) => setTimeout(r, 5));
    }
    const abortedAt = performance.now();
    ac.abort(reason);
    const e = await pending.then(
      () => new Error('the commit finished before the abort took effect'),
      (x: unknown) => x,
    );
    const latency = performance.now() - abortedAt;
    expect(e).toBeInstanceOf(AbortError);
    expect(e).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    const written = await countFileObjects(repo);
    console.log(`commit abort: ${written} of ${FILES} file objects written, rejected ${latency.toFixed(0)} ms after abort()`);
    expect(written).toBeLessThan(FILES);
    expect(latency).toBeLessThan(2000);
    expect(await repo.resolve('main')).toBe(before);
    expect(await repo.fsck()).toMatchObject({ ok: true, missing: [], corrupt: [] });
    expect(run('ostree', [`--repo=${repo.path}`, 'fsck']).length).toBeGreaterThan(0);

    const retried = await repo.commit({ tree: many, ref: 'main' });
    expect(await repo.resolve('main')).toBe(retried);
    expect((await repo.readFile('main', '/d099/f09999')).toString()).toBe('file 9999\n');
    expect((await repo.fsck()).ok).toBe(true);
    repo.close();
  });

  it('aborting a 10,000-file checkout midway rejects with AbortError and leaves nothing behind; a retry succeeds', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    const c = await repo.commit({ tree: many, ref: 'many' });
    const parent = fresh('parent');
    mkdirSync(parent);
    const dest = join(parent, 'co');
    const ac = new AbortController();
    const pending = repo.checkout(c, dest, { mode: 'user', hardlinks: 'never', signal: ac.signal });
    // Abort once the temporary checkout directory has some content.
    const started = performance.now();
    for (;;) {
      const tmp = readdirSync(parent).find((e) => e.startsWith('.co.tmp-'));
      if (tmp && existsSync(join(parent, tmp, 'd001'))) break;
      if (performance.now() - started > 20_000) throw new Error('the checkout never started');
      await new Promise((r) => setTimeout(r, 2));
    }
    ac.abort();
    const e = await pending.then(
      () => new Error('the checkout finished before the abort took effect'),
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(AbortError);
    expect((e as Error).name).toBe('AbortError');
    expect(readdirSync(parent)).toEqual([]);
    expect((await repo.fsck()).ok).toBe(true);

    await repo.checkout(c, dest, { mode: 'user' });
    expect(readdirSync(parent)).toEqual(['co']);
    expect(readdirSync(join(dest, 'd099'))).toHaveLength(100);
    repo.close();
  });

  it('an already-aborted signal rejects before any work, with the reason as cause', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    const ac = new AbortController();
    ac.abort('why');
    for (const attempt of [
      () => repo.commit({ tree: small, ref: 'x', signal: ac.signal }),
      () => repo.resolve('x', { signal: ac.signal }),
      () => repo.fsck({ signal: ac.signal }),
      () => repo.checkout(CSUM, fresh('co'), { signal: ac.signal }),
      () => Repo.open(repo.path, { signal: ac.signal }),
      () => repo.transaction(async () => undefined, { signal: ac.signal }),
    ]) {
      const e = await attempt().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(AbortError);
      expect(e).toMatchObject({ name: 'AbortError', cause: 'why' });
    }
    expect(await repo.listRefs()).toEqual({});
    repo.close();
  });

  it('a signal aborted after the call finished changes nothing', async () => {
    const repo = await Repo.create(fresh('repo'), { disableFsync: true });
    const ac = new AbortController();
    const c = await repo.commit({ tree: small, ref: 'x', signal: ac.signal });
    ac.abort();
    expect(await repo.resolve('x')).toBe(c);
    repo.close();
  });
});

describe('argument checks happen in TypeScript, before native code', () => {
  // A closed handle proves it: had the call reached native code, it would fail with CLOSED.
  let repo: Repo;
  let c: string;
  beforeAll(async () => {
    repo = await Repo.create(fresh('repo'), { disableFsync: true });
    c = await repo.commit({ tree: small, ref: 'r' });
    repo.close();
  });

  const TYPE = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
  const VALUE = { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' };
  const RANGE = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };
  type Want = typeof TYPE | typeof VALUE | typeof RANGE;
  const bad = (): Record<string, [() => unknown, Want]> => {
    const any = repo as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const dest = join(base, 'never-created');
    return {
      'Repo.create(number)': [() => Repo.create(123 as never), TYPE],
      'Repo.create("")': [() => Repo.create(''), VALUE],
      'Repo.create(NUL)': [() => Repo.create('/tmp/a\0b'), VALUE],
      'Repo.create(mode: bogus)': [() => Repo.create(fresh('x'), { mode: 'bogus' as never }), VALUE],
      'Repo.create(mode: 5)': [() => Repo.create(fresh('x'), { mode: 5 as never }), TYPE],
      'Repo.create(disableFsync: "yes")': [() => Repo.create(fresh('x'), { disableFsync: 'yes' as never }), TYPE],
      'Repo.create(options: string)': [() => Repo.create(fresh('x'), 'bare' as never), TYPE],
      'Repo.open(null)': [() => Repo.open(null as never), TYPE],
      'Repo.open(signal: {})': [() => Repo.open(base, { signal: {} as never }), TYPE],
      'setConfig(number section)': [() => repo.setConfig(1 as never, 'k', 'v'), TYPE],
      'setConfig(object value)': [() => repo.setConfig('s', 'k', {} as never), TYPE],
      'setConfig(newline value)': [() => repo.setConfig('s', 'k', 'a\nb'), VALUE],
      'setConfig(empty section)': [() => repo.setConfig('', 'k', 'v'), VALUE],
      'deleteConfig(number)': [() => repo.deleteConfig(5 as never), TYPE],
      'listRefs(prefix: 5)': [() => repo.listRefs({ prefix: 5 as never }), TYPE],
      'listRefs(remotes: "no")': [() => repo.listRefs({ remotes: 'no' as never }), TYPE],
      'listRefs("x")': [() => any.listRefs!('x'), TYPE],
      'resolve(5)': [() => repo.resolve(5 as never), TYPE],
      'resolve(bad ref)': [() => repo.resolve('bad ref!'), VALUE],
      'resolve(../x)': [() => repo.resolve('../x'), VALUE],
      'resolve(NUL)': [() => repo.resolve('a\0b'), VALUE],
      'resolve(allowMissing: 1)': [() => repo.resolve('x', { allowMissing: 1 as never }), TYPE],
      'setRef(bad name)': [() => repo.setRef('bad name', c), VALUE],
      'setRef(bad checksum)': [() => repo.setRef('ok', 'abc'), VALUE],
      'setRef(uppercase checksum)': [() => repo.setRef('ok', c.toUpperCase()), VALUE],
      'setRef(number ref)': [() => repo.setRef(5 as never, c), TYPE],
      'setRef(number checksum)': [() => repo.setRef('ok', 5 as never), TYPE],
      'setRef(bad remote)': [() => repo.setRef('ok', c, { remote: 'bad/remote' }), VALUE],
      'deleteRef(object)': [() => repo.deleteRef({} as never), TYPE],
      'loadCommit(5)': [() => repo.loadCommit(5 as never), TYPE],
      'log(maxCount: 0)': [() => repo.log('r', { maxCount: 0 }), RANGE],
      'log(maxCount: 1.5)': [() => repo.log('r', { maxCount: 1.5 }), TYPE],
      'log(maxCount: huge)': [() => repo.log('r', { maxCount: 10_000_000 }), RANGE],
      'writeDetachedMetadata(bad checksum)': [() => repo.writeDetachedMetadata('abc', {}), VALUE],
      'writeDetachedMetadata(string)': [() => repo.writeDetachedMetadata(c, 'x' as never), TYPE],
      'writeDetachedMetadata(function value)': [() => repo.writeDetachedMetadata(c, { f: (() => 1) as never }), TYPE],
      'query(not an array)': [() => repo.query('r', 'x' as never), TYPE],
      'query(op: bogus)': [() => repo.query('r', [{ op: 'bogus' as never, path: '/' }]), VALUE],
      'query(null op)': [() => repo.query('r', [null as never]), TYPE],
      'query(path: 5)': [() => repo.query('r', [{ op: 'read', path: 5 as never }]), TYPE],
      'query(path ..)': [() => repo.query('r', [{ op: 'read', path: '/../etc/shadow' }]), VALUE],
      'query(maxBytes: 0)': [() => repo.query('r', [{ op: 'read', path: '/f', maxBytes: 0 }]), RANGE],
      'query(maxBytes: 1.5)': [() => repo.query('r', [{ op: 'read', path: '/f', maxBytes: 1.5 }]), TYPE],
      'query(optional: "yes")': [() => repo.query('r', [{ op: 'stat', path: '/', optional: 'yes' as never }]), TYPE],
      'stat(path: 5)': [() => repo.stat('r', 5 as never), TYPE],
      'listDir(path: {})': [() => repo.listDir('r', {} as never), TYPE],
      'readFile(maxBytes: -5)': [() => repo.readFile('r', '/f', { maxBytes: -5 }), RANGE],
      'readLink(NUL)': [() => repo.readLink('r', '/a\0'), VALUE],
      'transaction(not a function)': [() => repo.transaction('x' as never), TYPE],
      'transaction(signal: "x")': [() => repo.transaction(async () => 1, { signal: 'x' as never }), TYPE],
      'commit({})': [() => repo.commit({}), TYPE],
      'commit(null)': [() => repo.commit(null as never), TYPE],
      'commit(tree: 5)': [() => repo.commit({ tree: 5 as never }), TYPE],
      'commit(tree and archive)': [() => repo.commit({ tree: small, archive: small }), TYPE],
      'commit(subject: 5)': [() => repo.commit({ tree: small, subject: 5 as never }), TYPE],
      'commit(body: NUL)': [() => repo.commit({ tree: small, body: 'a\0' }), VALUE],
      'commit(timestamp: -1)': [() => repo.commit({ tree: small, timestamp: -1 }), RANGE],
      'commit(timestamp: 1.5)': [() => repo.commit({ tree: small, timestamp: 1.5 }), TYPE],
      'commit(timestamp: "now")': [() => repo.commit({ tree: small, timestamp: 'now' as never }), TYPE],
      'commit(timestamp: invalid Date)': [() => repo.commit({ tree: small, timestamp: new Date('nope') }), TYPE],
      'commit(parent: 5)': [() => repo.commit({ tree: small, parent: 5 as never }), TYPE],
      'commit(parent: bad ref)': [() => repo.commit({ tree: small, parent: 'bad ref' }), VALUE],
      'commit(ref: bad ref)': [() => repo.commit({ tree: small, ref: 'bad ref' }), VALUE],
      'commit(skip: "x")': [() => repo.commit({ tree: small, skip: 'x' as never }), TYPE],
      'commit(skip: [..])': [() => repo.commit({ tree: small, skip: ['../x'] }), VALUE],
      'commit(owner uid -1)': [() => repo.commit({ tree: small, owner: { uid: -1, gid: 0 } }), RANGE],
      'commit(owner uid 2^32)': [() => repo.commit({ tree: small, owner: { uid: 2 ** 32, gid: 0 } }), RANGE],
      'commit(owner uid "0")': [() => repo.commit({ tree: small, owner: { uid: '0' as never, gid: 0 } }), TYPE],
      'commit(canonicalPermissions: "yes")': [() => repo.commit({ tree: small, canonicalPermissions: 'yes' as never }), TYPE],
      'commit(devinoCache: {})': [() => repo.commit({ tree: small, devinoCache: {} as never }), TYPE],
      'commit(metadata: "x")': [() => repo.commit({ tree: small, metadata: 'x' as never }), TYPE],
      'commit(metadata function)': [() => repo.commit({ tree: small, metadata: { f: (() => 1) as never } }), TYPE],
      'commit(metadata null)': [() => repo.commit({ tree: small, metadata: { n: null as never } }), TYPE],
      'commit(metadata symbol)': [() => repo.commit({ tree: small, metadata: { s: Symbol('s') as never } }), TYPE],
      'commit(metadata Date)': [() => repo.commit({ tree: small, metadata: { d: new Date() as never } }), TYPE],
      'commit(metadata Map)': [() => repo.commit({ tree: small, metadata: { m: new Map() as never } }), TYPE],
      'commit(metadata nested bad)': [() => repo.commit({ tree: small, metadata: { a: { b: [1, undefined as never] } } }), TYPE],
      'commit(metadata NUL string)': [() => repo.commit({ tree: small, metadata: { s: 'a\0b' } }), VALUE],
      'commit(metadata huge bigint)': [() => repo.commit({ tree: small, metadata: { b: 2n ** 64n } }), RANGE],
      'commit(variant u -1)': [() => repo.commit({ tree: small, metadata: { u: variant('u', -1) } }), RANGE],
      'commit(variant y 256)': [() => repo.commit({ tree: small, metadata: { y: variant('y', 256) } }), RANGE],
      'commit(variant u "1")': [() => repo.commit({ tree: small, metadata: { u: variant('u', '1') } }), TYPE],
      'commit(variant bogus type)': [() => repo.commit({ tree: small, metadata: { z: variant('zz' as never, 1) } }), VALUE],
      'commit(variant o bad path)': [() => repo.commit({ tree: small, metadata: { o: variant('o', 'not/a/path') } }), VALUE],
      'checkout(rev: 5)': [() => repo.checkout(5 as never, dest), TYPE],
      'checkout(dest: 5)': [() => repo.checkout('r', 5 as never), TYPE],
      'checkout(dest: "")': [() => repo.checkout('r', ''), VALUE],
      'checkout(mode: root)': [() => repo.checkout('r', dest, { mode: 'root' as never }), VALUE],
      'checkout(overwrite: 1)': [() => repo.checkout('r', dest, { overwrite: 1 as never }), TYPE],
      'checkout(hardlinks: sometimes)': [() => repo.checkout('r', dest, { hardlinks: 'sometimes' as never }), VALUE],
      'checkout(subpath: ..)': [() => repo.checkout('r', dest, { subpath: '../x' }), VALUE],
      'checkout(devinoCache: Map)': [() => repo.checkout('r', dest, { devinoCache: new Map() as never }), TYPE],
      'checkout(processWhiteouts: 1)': [() => repo.checkout('r', dest, { processWhiteouts: 1 as never }), TYPE],
      'prune(depth: -2)': [() => repo.prune({ depth: -2 }), RANGE],
      'prune(depth: "all")': [() => repo.prune({ depth: 'all' as never }), TYPE],
      'prune(refsOnly: 1)': [() => repo.prune({ refsOnly: 1 as never }), TYPE],
      'fsck(signal: 1)': [() => repo.fsck({ signal: 1 as never }), TYPE],
      'Sysroot.load(5)': [() => Sysroot.load(5 as never), TYPE],
      'Sysroot.load(signal: 5)': [() => Sysroot.load('/', { signal: 5 as never }), TYPE],
    };
  };

  it('every public method rejects bad arguments with a precise TypeError/RangeError', async () => {
    const failures: string[] = [];
    for (const [what, [call, want]] of Object.entries(bad())) {
      let got: unknown;
      try {
        got = await call();
        failures.push(`${what}: resolved`);
        continue;
      } catch (e) {
        got = e;
      }
      const e = got as { name?: string; code?: string; message?: string };
      if (e.name !== want.name || e.code !== want.code) failures.push(`${what}: got ${e.name} ${e.code} (${e.message}), want ${want.name} ${want.code}`);
    }
    expect(failures).toEqual([]);
    expect(existsSync(join(base, 'never-created'))).toBe(false);
  });

  it('bad arguments inside a transaction callback are refused before native code too', async () => {
    const live = await Repo.open(repo.path, { disableFsync: true });
    await live.transaction(async (tx) => {
      expect(() => tx.setRef('bad ref', c)).toThrow(expect.objectContaining(VALUE));
      expect(() => tx.setRef('ok', 'abc')).toThrow(expect.objectContaining(VALUE));
      await expect(tx.commit({ tree: 5 as never })).rejects.toMatchObject(TYPE);
      await expect(tx.commit({ tree: small, metadata: { f: (() => 1) as never } })).rejects.toMatchObject(TYPE);
    });
    live.close();
  });

  it('a DevInoCache can be made without a repo', () => {
    expect(new DevInoCache()).toBeInstanceOf(DevInoCache);
  });
});

describe('closed handles', () => {
  it('every operation on a closed repo fails with CLOSED; path and closed still work', async () => {
    const path = fresh('repo');
    const repo = await Repo.create(path, { disableFsync: true });
    const c = await repo.commit({ tree: small, ref: 'r' });
    repo.close();
    repo.close(); // idempotent
    expect(repo.closed).toBe(true);
    expect(repo.path).toBe(path);
    expect(() => repo.config()).toThrow(expect.objectContaining({ name: 'OstreeError', code: 'CLOSED' }));
    const calls: Array<() => Promise<unknown>> = [
      () => repo.listRefs(),
      () => repo.resolve('r'),
      () => repo.setRef('x', c),
      () => repo.deleteRef('r'),
      () => repo.loadCommit(c),
      () => repo.log(c),
      () => repo.writeDetachedMetadata(c, { a: 'b' }),
      () => repo.query(c, [{ op: 'stat', path: '/' }]),
      () => repo.readFile(c, '/f'),
      () => repo.commit({ tree: small }),
      () => repo.transaction(async () => 1),
      () => repo.checkout(c, fresh('co')),
      () => repo.prune(),
      () => repo.fsck(),
      () => repo.setConfig('a', 'b', 'c'),
      () => repo.deleteConfig('a'),
    ];
    for (const call of calls) {
      const e = await call().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OstreeError);
      expect((e as OstreeError).code).toBe('CLOSED');
    }
    // Nothing happened on disk: another handle sees the same single ref.
    const other = await Repo.open(path);
    expect(await other.listRefs()).toEqual({ r: c });
    other.close();
  });
});

// The messages below are libostree's real ones for a pull from a closed port and from a
// server that accepts but never answers: 2022.7 (this machine, Debian 12) and 2025.2 (Debian 13
// chroot, curl 8.14), recorded 2026-12-02. The live pull test (pull-refusals) checks the
// installed libostree's own message; these keep the other versions' wording mapped.
describe('error codes stay right across libostree wordings', () => {
  const prefix = "pull x from remote 'o' (http://127.0.0.1:9/repo): While fetching http://127.0.0.1:9/repo/summary.sig: ";
  it('a refused connection is CONNECTION_REFUSED whether libostree says FAILED or TIMED_OUT', () => {
    expect(codeFromGError('g-io-error-quark', 0, `${prefix}[7] Couldn't connect to server`)).toBe('CONNECTION_REFUSED');
    expect(codeFromGError('g-io-error-quark', 24, `${prefix}[7] Could not connect to server`)).toBe('CONNECTION_REFUSED');
  });
  it('a real timeout stays TIMED_OUT, also when the message names the connect step', () => {
    expect(codeFromGError('g-io-error-quark', 24, `${prefix}[28] Timeout was reached`)).toBe('TIMED_OUT');
    expect(codeFromGError('g-io-error-quark', 24, `${prefix}[28] Failed to connect to 10.255.255.1 port 80 after 10002 ms: Timeout was reached`)).toBe(
      'TIMED_OUT',
    );
    expect(codeFromGError('g-io-error-quark', 24, `${prefix}[28] Connection timed out after 10001 milliseconds`)).toBe('TIMED_OUT');
  });
});
