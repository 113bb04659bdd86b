// Checkouts: ownership modes, every overwrite mode, hardlink policies checked by inode,
// subpaths, whiteouts, and atomicity (a failed checkout leaves nothing behind).
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { OstreeError, Repo, type RepoMode } from '../../lib/index.js';
import { makeTree, snapshotTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-checkout-');
let n = 0;
const fresh = (what: string): string => join(base, `${what}-${++n}`);
/** A fresh empty directory, so a test can see everything a checkout leaves in it. */
const emptyParent = (): string => {
  const d = fresh('parent');
  mkdirSync(d);
  return d;
};
const create = (mode: RepoMode): Promise<Repo> => Repo.create(fresh(`repo-${mode}`), { mode, disableFsync: true });
const objectPath = (repo: Repo, checksum: string): string => join(repo.path, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.file`);
const read = (p: string): string => readFileSync(p, 'utf8');

const A = join(base, 'tree-a');
const B = join(base, 'tree-b');
let bare: Repo;
let buo: Repo;
let a: string;
let b: string;

beforeAll(async () => {
  makeTree(A, { f: 'A', same: 'S', 'sub/x': 'ax', 'sub/deeper/y': 'ay', empty: '', link: { symlink: 'f' } });
  makeTree(B, { f: 'B', same: 'S', g: 'G', 'sub/x': 'bx', '.wh.gone': '' });
  chownSync(join(A, 'f'), 1234, 5678);
  bare = await create('bare');
  buo = await create('bare-user-only');
  a = await bare.commit({ tree: A, ref: 'a' });
  b = await bare.commit({ tree: B, ref: 'b' });
  expect(await buo.commit({ tree: A, ref: 'a' })).not.toBe(a); // canonical metadata differs
  await buo.commit({ tree: B, ref: 'b' });
  return () => {
    bare.close();
    buo.close();
  };
});

describe('ownership modes', () => {
  it('mode none restores owners (root), mode user gives the caller’s; the default as root is none', async () => {
    const none = fresh('none');
    const user = fresh('user');
    const dflt = fresh('default');
    await bare.checkout('a', none, { mode: 'none' });
    await bare.checkout('a', user, { mode: 'user' });
    await bare.checkout('a', dflt);
    expect(lstatSync(join(none, 'f'))).toMatchObject({ uid: 1234, gid: 5678 });
    expect(lstatSync(join(user, 'f'))).toMatchObject({ uid: process.getuid!(), gid: process.getgid!() });
    expect(lstatSync(join(dflt, 'f'))).toMatchObject({ uid: 1234, gid: 5678 });
    expect(read(join(user, 'f'))).toBe('A');
  });
});

describe('overwrite modes', () => {
  const layered = async (overwrite: 'union' | 'add-files'): Promise<string> => {
    const dest = fresh(overwrite);
    await buo.checkout('a', dest, { mode: 'user' });
    writeFileSync(join(dest, 'extra'), 'E');
    await buo.checkout('b', dest, { mode: 'user', overwrite });
    return dest;
  };

  it('none onto an existing directory rejects with EXISTS and leaves it untouched', async () => {
    const dest = fresh('exists');
    mkdirSync(dest);
    writeFileSync(join(dest, 'mine'), 'keep me');
    const e = await buo.checkout('a', dest).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect(e).toMatchObject({ code: 'EXISTS' });
    expect(readdirSync(dest)).toEqual(['mine']);
  });

  it('union replaces existing files, adds new ones, keeps unrelated ones', async () => {
    const dest = await layered('union');
    expect(read(join(dest, 'f'))).toBe('B');
    expect(read(join(dest, 'g'))).toBe('G');
    expect(read(join(dest, 'sub/x'))).toBe('bx');
    expect(read(join(dest, 'sub/deeper/y'))).toBe('ay');
    expect(read(join(dest, 'extra'))).toBe('E');
    expect(existsSync(join(dest, '.wh.gone'))).toBe(true); // whiteouts are plain files unless processed
  });

  it('add-files adds new files and leaves existing ones alone', async () => {
    const dest = await layered('add-files');
    expect(read(join(dest, 'f'))).toBe('A');
    expect(read(join(dest, 'sub/x'))).toBe('ax');
    expect(read(join(dest, 'g'))).toBe('G');
    expect(read(join(dest, 'extra'))).toBe('E');
  });

  it('union-identical accepts identical files and new ones, and fails on a conflicting file', async () => {
    const dest = fresh('union-identical');
    await buo.checkout('a', dest, { mode: 'user', hardlinks: 'require' });
    await buo.checkout('a', dest, { mode: 'user', overwrite: 'union-identical' }); // all identical
    const c = await buo.commit({ tree: makeTreeDir({ same: 'S', 'new-file': 'N' }) });
    await buo.checkout(c, dest, { mode: 'user', overwrite: 'union-identical' });
    expect(read(join(dest, 'new-file'))).toBe('N');
    const e = await buo.checkout('b', dest, { mode: 'user', overwrite: 'union-identical' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect(e).toMatchObject({ code: 'EXISTS' });
    expect(read(join(dest, 'f'))).toBe('A');
  });

  it('union-identical without hardlink checkouts is refused up front (libostree needs inodes to compare)', async () => {
    await expect(buo.checkout('a', fresh('ui'), { overwrite: 'union-identical', hardlinks: 'never' })).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });

  it('processWhiteouts turns .wh.NAME into a deletion of NAME', async () => {
    const dest = fresh('whiteouts');
    await buo.checkout('a', dest, { mode: 'user' });
    writeFileSync(join(dest, 'gone'), 'to be removed');
    await buo.checkout('b', dest, { mode: 'user', overwrite: 'union', processWhiteouts: true });
    expect(existsSync(join(dest, 'gone'))).toBe(false);
    expect(existsSync(join(dest, '.wh.gone'))).toBe(false);
    expect(read(join(dest, 'g'))).toBe('G');
  });
});

function makeTreeDir(spec: Record<string, string>): string {
  const d = fresh('tree');
  makeTree(d, spec);
  return d;
}

describe('hardlinks', () => {
  it('bare-user-only + user: allow and require link to the repo object; never copies', async () => {
    const fsum = (await buo.stat('a', '/f')).checksum!;
    const obj = lstatSync(objectPath(buo, fsum));
    for (const hardlinks of ['allow', 'require'] as const) {
      const dest = fresh(`hl-${hardlinks}`);
      await buo.checkout('a', dest, { mode: 'user', hardlinks });
      const st = lstatSync(join(dest, 'f'));
      expect(st.ino).toBe(obj.ino);
      expect(st.nlink).toBeGreaterThanOrEqual(2);
      expect(lstatSync(join(dest, 'empty')).nlink).toBe(1); // empty files are always copied
    }
    const dest = fresh('hl-never');
    await buo.checkout('a', dest, { mode: 'user', hardlinks: 'never' });
    const st = lstatSync(join(dest, 'f'));
    expect(st.ino).not.toBe(obj.ino);
    expect(st.nlink).toBe(1);
    expect(read(join(dest, 'f'))).toBe('A');
  });

  it('require fails where a link is impossible (bare repo, mode user), leaving nothing behind', async () => {
    const parent = emptyParent();
    const dest = join(parent, 'co');
    const e = await bare.checkout('a', dest, { mode: 'user', hardlinks: 'require' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect(readdirSync(parent)).toEqual([]);
    // allow falls back to copies there.
    await bare.checkout('a', dest, { mode: 'user', hardlinks: 'allow' });
    expect(lstatSync(join(dest, 'f')).nlink).toBe(1);
  });
});

describe('subpath', () => {
  it('checks out only that directory, as the destination’s root', async () => {
    const dest = fresh('subpath');
    await buo.checkout('a', dest, { mode: 'user', subpath: '/sub' });
    expect(snapshotTree(dest)).toEqual(snapshotTree(join(A, 'sub')));
  });

  it('a missing subpath rejects with NOT_FOUND and leaves nothing behind', async () => {
    const parent = emptyParent();
    await expect(buo.checkout('a', join(parent, 'co'), { subpath: '/nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe('atomicity', () => {
  it('appears complete or not at all: missing commit, missing parent directory', async () => {
    const parent = emptyParent();
    await expect(buo.checkout('no/such/ref', join(parent, 'co'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(buo.checkout('f'.repeat(64), join(parent, 'co'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(readdirSync(parent)).toEqual([]);
    await expect(buo.checkout('a', join(parent, 'missing', 'co'))).rejects.toBeInstanceOf(OstreeError);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('a successful checkout leaves exactly the destination', async () => {
    const parent = emptyParent();
    await buo.checkout('a', join(parent, 'co'));
    expect(readdirSync(parent)).toEqual(['co']);
    expect(read(join(parent, 'co', 'sub/deeper/y'))).toBe('ay');
  });

  it('checks out by checksum and by ref alike', async () => {
    const [x, y] = [fresh('by-ref'), fresh('by-sum')];
    await bare.checkout('b', x, { mode: 'none' });
    await bare.checkout(b, y, { mode: 'none' });
    expect(snapshotTree(x, { owners: true })).toEqual(snapshotTree(y, { owners: true }));
  });
});
