// Repository handles: create/open in every mode, refs, config (checked with the ostree CLI),
// prune and fsck against real damage on disk.
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { OstreeError, Repo, type RepoMode } from '../../lib/index.js';
import { makeTree } from '../helpers/fixtures.js';
import { ostree, ostreeRepo } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-repo-');
let n = 0;
const fresh = (what: string): string => join(base, `${what}-${++n}`);
const create = (mode: RepoMode = 'bare-user-only'): Promise<Repo> => Repo.create(fresh(`repo-${mode}`), { mode, disableFsync: true });

const tree = (files: Record<string, string>): string => {
  const d = fresh('tree');
  makeTree(d, files);
  return d;
};

/** Path of a loose object in a bare-family repo. */
const objectPath = (repo: Repo, checksum: string, ext: string): string => join(repo.path, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${ext}`);

describe('create and open', () => {
  for (const mode of ['bare', 'bare-user', 'bare-user-only', 'archive'] as const) {
    it(`creates a ${mode} repository the CLI recognises, and reopens it`, async () => {
      const path = fresh(`create-${mode}`);
      const repo = await Repo.create(path, { mode });
      expect(repo.mode).toBe(mode);
      expect(repo.path).toBe(path);
      expect(repo.closed).toBe(false);
      // libostree writes archive repos with the legacy name archive-z2.
      expect(ostreeRepo(path, ['config', 'get', 'core.mode']).trim()).toBe(mode === 'archive' ? 'archive-z2' : mode);
      repo.close();
      expect(repo.closed).toBe(true);
      const again = await Repo.open(path);
      expect(again.mode).toBe(mode);
      again.close();
    });
  }

  it('defaults to bare-user-only', async () => {
    const repo = await Repo.create(fresh('default'), { disableFsync: true });
    expect(repo.mode).toBe('bare-user-only');
    repo.close();
  });

  it('opens a repository the CLI made', async () => {
    const path = fresh('cli-made');
    ostree(['init', `--repo=${path}`, '--mode=archive']);
    const repo = await Repo.open(path);
    expect(repo.mode).toBe('archive');
    expect(await repo.listRefs()).toEqual({});
    repo.close();
  });
});

describe('refs', () => {
  let repo: Repo;
  let c1: string;
  let c2: string;
  beforeAll(async () => {
    repo = await create();
    c1 = await repo.commit({ tree: tree({ f: '1' }) });
    c2 = await repo.commit({ tree: tree({ f: '2' }) });
    await repo.setRef('main', c1);
    await repo.setRef('ostree-sysext/ext/foo', c1);
    await repo.setRef('ostree-sysext/ext/bar', c2);
    await repo.setRef('ostree-sysext/other', c2);
    await repo.setRef('stable', c2, { remote: 'origin' });
    return () => repo.close();
  });

  it('listRefs lists local and remote refs with full names', async () => {
    expect(await repo.listRefs()).toEqual({
      main: c1,
      'ostree-sysext/ext/foo': c1,
      'ostree-sysext/ext/bar': c2,
      'ostree-sysext/other': c2,
      'origin:stable': c2,
    });
    expect(await repo.listRefs({ remotes: false })).toEqual({
      main: c1,
      'ostree-sysext/ext/foo': c1,
      'ostree-sysext/ext/bar': c2,
      'ostree-sysext/other': c2,
    });
  });

  it('listRefs with a prefix keeps only refs under that path', async () => {
    expect(await repo.listRefs({ prefix: 'ostree-sysext/ext' })).toEqual({ 'ostree-sysext/ext/foo': c1, 'ostree-sysext/ext/bar': c2 });
    expect(await repo.listRefs({ prefix: 'ostree-sysext/ext/foo' })).toEqual({ 'ostree-sysext/ext/foo': c1 });
    expect(await repo.listRefs({ prefix: 'nothing/here' })).toEqual({});
  });

  it('the CLI sees the same refs', () => {
    const lines = ostreeRepo(repo.path, ['refs']).trim().split('\n').sort();
    expect(lines).toEqual(['main', 'origin:stable', 'ostree-sysext/ext/bar', 'ostree-sysext/ext/foo', 'ostree-sysext/other'].sort());
    expect(ostreeRepo(repo.path, ['rev-parse', 'origin:stable']).trim()).toBe(c2);
    expect(ostreeRepo(repo.path, ['rev-parse', 'main']).trim()).toBe(c1);
  });

  it('resolve: refs, remote refs and checksums; missing is NOT_FOUND, or null with allowMissing', async () => {
    expect(await repo.resolve('main')).toBe(c1);
    expect(await repo.resolve('origin:stable')).toBe(c2);
    expect(await repo.resolve(c2)).toBe(c2);
    expect(await repo.resolve('no/such/ref', { allowMissing: true })).toBeNull();
    const e = await repo.resolve('no/such/ref').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OstreeError);
    expect(e).toMatchObject({ name: 'OstreeError', code: 'NOT_FOUND', domain: 'g-io-error-quark', gerrorCode: 1 });
    expect((e as Error).message).toContain('no/such/ref');
  });

  it('setRef moves and creates refs, null deletes; deleteRef deletes and refuses a missing ref', async () => {
    await repo.setRef('moving', c1);
    expect(await repo.resolve('moving')).toBe(c1);
    await repo.setRef('moving', c2);
    expect(await repo.resolve('moving')).toBe(c2);
    expect(ostreeRepo(repo.path, ['rev-parse', 'moving']).trim()).toBe(c2);
    await repo.setRef('moving', null);
    expect(await repo.resolve('moving', { allowMissing: true })).toBeNull();
    await repo.setRef('doomed', c1);
    await repo.deleteRef('doomed');
    expect(ostree([`--repo=${repo.path}`, 'rev-parse', 'doomed']).status).not.toBe(0);
    await expect(repo.deleteRef('doomed')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await repo.deleteRef('stable', { remote: 'origin' });
    expect(await repo.resolve('origin:stable', { allowMissing: true })).toBeNull();
  });
});

describe('refs whose names look like checksum prefixes', () => {
  it('a ref named "b" wins over a commit whose checksum starts with b (libostree alone picks the commit)', async () => {
    const repo = await create();
    const t = tree({ f: 'the ref' });
    // The ref's own commits must not start with b, or the prefix would be ambiguous.
    const notB = async (make: (i: number) => Promise<string>): Promise<string> => {
      for (let i = 0; ; i++) {
        const c = await make(i);
        if (!c.startsWith('b')) return c;
      }
    };
    const parent = await notB((i) => repo.commit({ tree: t, ref: 'b', parent: null, subject: 'parent', timestamp: 2_000_000 + i }));
    const refCommit = await notB((i) => repo.commit({ tree: t, ref: 'b', parent, subject: 'ref', timestamp: 3_000_000 + i }));
    let clash: string | undefined;
    for (let i = 0; i < 500 && !clash; i++) {
      const c = await repo.commit({ tree: tree({ f: `orphan ${i}` }), timestamp: 1_000_000 + i });
      if (c.startsWith('b')) clash = c;
    }
    expect(clash).toBeDefined();
    expect(ostreeRepo(repo.path, ['rev-parse', 'b']).trim()).toBe(clash); // the CLI's (libostree's) reading
    expect(await repo.resolve('b')).toBe(refCommit);
    expect((await repo.loadCommit('b')).subject).toBe('ref');
    expect((await repo.loadCommit('b^')).checksum).toBe(parent);
    expect((await repo.log('b')).commits.map((c) => c.checksum)).toEqual([refCommit, parent]);
    expect((await repo.readFile('b', '/f')).toString()).toBe('the ref');
    const dest = fresh('co-b');
    await repo.checkout('b', dest);
    expect(readFileSync(join(dest, 'f'), 'utf8')).toBe('the ref');
    // Without such a ref, a unique prefix still resolves as libostree does.
    await repo.deleteRef('b');
    expect(await repo.resolve('b')).toBe(clash);
    repo.close();
  });
});

describe('resolving ref files as libostree does', () => {
  it('answers exactly as `ostree rev-parse` on hand-written ref files, aliases and fallbacks', async () => {
    const repo = await create('bare');
    const c1 = await repo.commit({ tree: tree({ f: 'one' }), ref: 'main', subject: 'one' });
    const c2 = await repo.commit({ tree: tree({ f: 'two' }), subject: 'two' });
    const heads = join(repo.path, 'refs', 'heads');
    const write = (name: string, text: string): void => {
      mkdirSync(join(heads, name, '..'), { recursive: true });
      writeFileSync(join(heads, name), text);
    };
    // What a ref file can hold: libostree strips trailing whitespace, then wants a checksum.
    write('plain', `${c2}\n`);
    write('no-newline', c2);
    write('spaces', `${c2}  \t\n\n`);
    write('crlf', `${c2}\r\n`);
    write('leading-space', ` ${c2}\n`);
    write('uppercase', `${c2.toUpperCase()}\n`);
    write('short', `${c2.slice(0, 63)}\n`);
    write('long', `${c2}0\n`);
    write('two-lines', `${c2}\n${c1}\n`);
    write('trailing-junk', `${c2}x\n`);
    write('huge', `${c2}${' '.repeat(200)}\n`);
    write('empty', '');
    write('dir/inner', `${c1}\n`);
    write('a.b/c-d_e', `${c2}\n`);
    symlinkSync('plain', join(heads, 'alias'));
    symlinkSync('nowhere', join(heads, 'dangling'));
    // A name found only among a remote's refs (libostree's fallback after refs/heads/).
    mkdirSync(join(repo.path, 'refs', 'remotes', 'origin'), { recursive: true });
    writeFileSync(join(repo.path, 'refs', 'remotes', 'origin', 'only-remote'), `${c1}\n`);
    const names = [
      'main',
      'plain',
      'no-newline',
      'spaces',
      'crlf',
      'leading-space',
      'uppercase',
      'short',
      'long',
      'two-lines',
      'trailing-junk',
      'huge',
      'empty',
      'dir',
      'dir/inner',
      'a.b/c-d_e',
      'alias',
      'dangling',
      'only-remote',
      'missing',
      'origin:only-remote',
      'main^',
      'plain^',
    ];
    let answered = 0;
    for (const name of names) {
      const cli = ostree(['rev-parse', `--repo=${repo.path}`, name]);
      // One intended difference: `rev-parse` (ostree_repo_resolve_rev) falls back to a remote's
      // ref of the same name; the library (resolve_rev_ext) never does: a remote ref is `remote:ref`.
      const want = name === 'only-remote' ? 'error' : cli.status === 0 ? cli.stdout.trim() : 'error';
      if (name === 'only-remote') expect(cli.status).toBe(0);
      const sync = ((): string => {
        try {
          return repo.resolveSync(name);
        } catch {
          return 'error';
        }
      })();
      const viaAsync = await repo.resolve(name).catch(() => 'error');
      expect({ name, sync, async: viaAsync }).toEqual({ name, sync: want, async: want });
      if (want !== 'error') answered++;
    }
    // The inputs above are not all refusals: most resolve.
    expect(answered).toBeGreaterThanOrEqual(10);
    repo.close();
  });
});

describe('config', () => {
  it('reads, writes and deletes keys and sections; the CLI agrees', async () => {
    const repo = await create();
    expect(repo.config().core).toMatchObject({ mode: 'bare-user-only', repo_version: '1' });
    await repo.setConfig('ostree-sysext', 'text', 'hello world');
    await repo.setConfig('ostree-sysext', 'number', 5);
    await repo.setConfig('ostree-sysext', 'flag', true);
    await repo.setConfig('core', 'min-free-space-percent', '0');
    const get = (k: string) => ostree([`--repo=${repo.path}`, 'config', 'get', k]);
    expect(get('ostree-sysext.text').stdout.trim()).toBe('hello world');
    expect(get('ostree-sysext.number').stdout.trim()).toBe('5');
    expect(get('ostree-sysext.flag').stdout.trim()).toBe('true');
    expect(get('core.min-free-space-percent').stdout.trim()).toBe('0');
    expect(repo.config()['ostree-sysext']).toEqual({ text: 'hello world', number: '5', flag: 'true' });

    await repo.deleteConfig('ostree-sysext', 'number');
    expect(get('ostree-sysext.number').status).not.toBe(0);
    expect(get('ostree-sysext.text').stdout.trim()).toBe('hello world');
    expect(repo.config()['ostree-sysext']).toEqual({ text: 'hello world', flag: 'true' });

    await repo.deleteConfig('ostree-sysext');
    expect(get('ostree-sysext.text').status).not.toBe(0);
    expect(repo.config()['ostree-sysext']).toBeUndefined();
    expect(readFileSync(join(repo.path, 'config'), 'utf8')).not.toContain('ostree-sysext');
    // The mode is untouched by all this.
    expect(get('core.mode').stdout.trim()).toBe('bare-user-only');
    repo.close();
  });

  it('sees a value the CLI wrote when opened afterwards', async () => {
    const repo = await create();
    ostreeRepo(repo.path, ['config', 'set', 'ostree-sysext.from-cli', 'yes']);
    const again = await Repo.open(repo.path);
    expect(again.config()['ostree-sysext']).toEqual({ 'from-cli': 'yes' });
    again.close();
    repo.close();
  });

  it('refuses values with newlines (they would inject keys)', async () => {
    const repo = await create();
    await expect(repo.setConfig('s', 'k', 'a\n[core]\nmode=archive')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(repo.config().s).toBeUndefined();
    repo.close();
  });
});

describe('prune', () => {
  it('depth keeps only that much history of each ref', async () => {
    const repo = await create();
    const chain: string[] = [];
    for (let i = 0; i < 3; i++) chain.push(await repo.commit({ tree: tree({ f: `unique ${i}` }), ref: 'main' }));
    const oldFile = (await repo.stat(chain[0]!, '/f')).checksum!;
    expect(existsSync(objectPath(repo, oldFile, 'file'))).toBe(true);
    const r = await repo.prune({ depth: 1 });
    expect(r.objectsPruned).toBeGreaterThan(0);
    expect(r.bytesFreed).toBeGreaterThan(0);
    await expect(repo.loadCommit(chain[0]!)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(existsSync(objectPath(repo, oldFile, 'file'))).toBe(false);
    expect((await repo.loadCommit(chain[1]!)).checksum).toBe(chain[1]);
    expect((await repo.readFile('main', '/f')).toString()).toBe('unique 2');
    const log = await repo.log('main');
    expect(log.commits).toHaveLength(2);
    expect(log.truncated).toBe(true);
    expect((await repo.fsck()).ok).toBe(true);
    repo.close();
  });

  it('the objects of a deleted ref disappear (refsOnly, the default); without refsOnly every commit is a root', async () => {
    const repo = await create();
    const keep = await repo.commit({ tree: tree({ f: 'keep' }), ref: 'keep' });
    const gone = await repo.commit({ tree: tree({ f: 'gone', g: 'also gone' }), ref: 'gone' });
    const files = [(await repo.stat(gone, '/f')).checksum!, (await repo.stat(gone, '/g')).checksum!];
    await repo.deleteRef('gone');

    const counted = await repo.prune({ noPrune: true });
    expect(counted.objectsPruned).toBeGreaterThan(0);
    expect(existsSync(objectPath(repo, gone, 'commit'))).toBe(true); // noPrune only counts

    const notRefsOnly = await repo.prune({ refsOnly: false });
    expect(notRefsOnly.objectsPruned).toBe(0);
    expect(existsSync(objectPath(repo, gone, 'commit'))).toBe(true);

    const r = await repo.prune();
    expect(r.objectsPruned).toBe(counted.objectsPruned);
    expect(existsSync(objectPath(repo, gone, 'commit'))).toBe(false);
    for (const f of files) expect(existsSync(objectPath(repo, f, 'file'))).toBe(false);
    expect((await repo.readFile('keep', '/f')).toString()).toBe('keep');
    expect(await repo.resolve('keep')).toBe(keep);
    expect(ostree([`--repo=${repo.path}`, 'fsck']).status).toBe(0);
    repo.close();
  });
});

describe('fsck', () => {
  it('a clean repository is ok, and counts what it checked', async () => {
    const repo = await create();
    await repo.commit({ tree: tree({ a: 'a', b: 'b' }), ref: 'one' });
    await repo.commit({ tree: tree({ c: 'c' }), ref: 'two' });
    const r = await repo.fsck();
    expect(r).toMatchObject({ ok: true, commitsChecked: 2, partialCommits: 0, missing: [], corrupt: [] });
    // 2 commits, 2 dirtrees, 1 dirmeta (shared), 3 files.
    expect(r.objectsChecked).toBe(8);
    repo.close();
  });

  it('reports an overwritten file object as corrupt and a deleted one as missing; the CLI agrees', async () => {
    const repo = await create('bare-user-only');
    const c = await repo.commit({ tree: tree({ good: 'good content', bad: 'original content', lost: 'lost content' }), ref: 'r' });
    const bad = (await repo.stat(c, '/bad')).checksum!;
    const lost = (await repo.stat(c, '/lost')).checksum!;
    const badPath = objectPath(repo, bad, 'file');
    const bytes = readFileSync(badPath);
    bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(badPath, bytes);
    rmSync(objectPath(repo, lost, 'file'));

    const r = await repo.fsck();
    expect(r.ok).toBe(false);
    expect(r.corrupt.map((p) => [p.checksum, p.objectType])).toEqual([[bad, 'file']]);
    expect(r.missing.map((p) => [p.checksum, p.objectType])).toEqual([[lost, 'file']]);
    expect(r.corrupt[0]!.message).toMatch(/corrupted|checksum|mismatch/i);
    expect(ostree([`--repo=${repo.path}`, 'fsck']).status).not.toBe(0);
    repo.close();
  });

  for (const damage of ['truncated', 'overwritten'] as const) {
    it(`a ${damage} commit object gives CORRUPT on every read path instead of crashing the process`, async () => {
      const repo = await create('bare-user-only');
      const c = await repo.commit({ tree: tree({ x: 'xxxxxxxx' }), ref: 'r' });
      const commitPath = objectPath(repo, c, 'commit');
      const bytes = readFileSync(commitPath);
      writeFileSync(commitPath, damage === 'truncated' ? bytes.subarray(0, 10) : Buffer.alloc(bytes.length, 7));
      const again = await Repo.open(repo.path);
      for (const attempt of [
        () => again.loadCommit('r'),
        () => again.log('r'),
        () => again.readFile('r', '/x'),
        () => again.stat(c, '/'),
        () => again.checkout(c, fresh('co-corrupt')),
      ]) {
        const e = await attempt().then(
          (v) => v,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(OstreeError);
        expect((e as OstreeError).code).toBe('CORRUPT');
        expect((e as OstreeError).message).toContain(c);
      }
      const f = await again.fsck();
      expect(f.ok).toBe(false);
      expect(f.corrupt.map((p) => [p.checksum, p.objectType])).toEqual([[c, 'commit']]);
      again.close();
      repo.close();
    });
  }
});
