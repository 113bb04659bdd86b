import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/binding/repo.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { baseFromDirectory } from '../../lib/extension/base.js';
import { ExtensionError } from '../../lib/extension/errors.js';
import { escapeRefComponent, extensionRef, nameFromExtensionRef, setRef, unescapeRefComponent } from '../../lib/extension/refs.js';
import type { Builder } from '../../lib/extension/builders.js';
import { setExtensions } from '../../lib/extension/set-format.js';
import { DeploymentSet } from '../../lib/sets/deployment-set.js';
import { tempDir } from '../helpers/tmp.js';

const root = tempDir('store-test-');
let n = 0;

function sysextTree(name: string, fields: Record<string, string>, files: Record<string, string> = {}): string {
  const dir = join(root, `tree-${++n}-${name}`);
  mkdirSync(join(dir, 'usr/lib/extension-release.d'), { recursive: true });
  writeFileSync(
    join(dir, 'usr/lib/extension-release.d', `extension-release.${name}`),
    Object.entries(fields)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  for (const [p, content] of Object.entries({ [`usr/share/${name}/data`]: `data of ${name}\n`, ...files })) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), content);
  }
  return dir;
}

function osTree(fields: Record<string, string>): string {
  const dir = join(root, `os-${++n}`);
  mkdirSync(join(dir, 'usr/lib'), { recursive: true });
  writeFileSync(
    join(dir, 'usr/lib/os-release'),
    Object.entries(fields)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<ExtensionError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExtensionError);
  return e as ExtensionError;
}

let repo: Repo;
let store: ExtensionStore;
beforeEach(async () => {
  repo = await Repo.create(join(root, `repo-${++n}`), { mode: 'bare-user-only', disableFsync: true });
  store = new ExtensionStore(repo);
});

describe('ref names', () => {
  it('escapes names reversibly into ref components libostree accepts', async () => {
    const commit = await repo.commit({ tree: osTree({ ID: 'x' }) });
    for (const name of ['foo', 'foo_bar', 'foo-1.2', '.hidden', '-dash', 'ünï', 'a b+c@d', 'x_5f']) {
      const c = escapeRefComponent(name);
      // libostree's own rule for a ref component: [\w\d][-._\w\d]*
      expect(c).toMatch(/^[A-Za-z0-9_][-._A-Za-z0-9_]*$/);
      await repo.setRef(extensionRef(name), commit);
      expect(await repo.resolve(extensionRef(name))).toBe(commit);
      expect(unescapeRefComponent(c)).toBe(name);
      expect(nameFromExtensionRef(extensionRef(name))).toBe(name);
    }
    expect(escapeRefComponent('foo_bar')).toBe('foo_5fbar');
    expect(unescapeRefComponent('bad/ref')).toBeNull();
    expect(unescapeRefComponent('x_zz')).toBeNull();
    expect(setRef('debian')).toBe('ostree-sysext/set/debian');
  });
});

describe('ExtensionStore', () => {
  it('installs a directory, records its origin, and lists it', async () => {
    const dir = sysextTree('tools', { ID: 'debian', VERSION_ID: '12', SYSEXT_VERSION_ID: '1.4' });
    const info = await store.installFromDirectory(dir);
    expect(info.name).toBe('tools');
    expect(info.kind).toBe('sysext');
    expect(info.version).toBe('1.4');
    expect(info.size).toBe('data of tools\n'.length + 'ID=debian\nVERSION_ID=12\nSYSEXT_VERSION_ID=1.4\n'.length);
    expect(info.origin?.builder).toBe('directory');
    expect(info.origin?.context.path).toBe(dir);
    expect(await repo.resolve('ostree-sysext/ext/tools')).toBe(info.commit);
    expect(String(await repo.readFile(info.commit, '/usr/share/tools/data'))).toBe('data of tools\n');
    // The origin is durable: a new handle on the same repo sees it.
    const again = new ExtensionStore(await Repo.open(repo.path));
    expect((await again.get('tools')).origin).toEqual(info.origin);
    expect(await store.names()).toEqual(['tools']);
  });

  it('refuses an invalid tree with its problems and writes nothing', async () => {
    const dir = sysextTree('bad', { ID: 'debian' }, { 'usr/lib/os-release': 'ID=evil\n' });
    const e = await rejection(store.installFromDirectory(dir));
    expect(e.code).toBe('INVALID_EXTENSION');
    expect(e.problems?.length).toBeGreaterThan(0);
    expect(await repo.listRefs()).toEqual({});
    expect(repo.config()['ostree-sysext-origin "bad"']).toBeUndefined();

    const norelease = join(root, 'norelease');
    mkdirSync(join(norelease, 'usr/bin'), { recursive: true });
    writeFileSync(join(norelease, 'usr/bin/x'), 'x');
    expect((await rejection(store.installFromDirectory(norelease))).code).toBe('INVALID_EXTENSION');

    const fifo = sysextTree('esc', { ID: 'debian' });
    execFileSync('mkfifo', [join(fifo, 'usr/share/esc/fifo')]);
    expect((await rejection(store.installFromDirectory(fifo))).code).toBe('INVALID_EXTENSION');
    expect(await repo.listRefs()).toEqual({});
  });

  it('refuses a second install unless replace, keeps history, and reinstalls an older commit', async () => {
    const v1 = await store.installFromDirectory(sysextTree('app', { ID: 'debian', SYSEXT_VERSION_ID: '1' }));
    expect((await rejection(store.installFromDirectory(sysextTree('app', { ID: 'debian', SYSEXT_VERSION_ID: '2' })))).code).toBe('ALREADY_INSTALLED');
    const v2 = await store.installFromDirectory(sysextTree('app', { ID: 'debian', SYSEXT_VERSION_ID: '2' }), { replace: true });
    expect(v2.version).toBe('2');
    expect(v2.commit).not.toBe(v1.commit);
    const history = await store.history('app');
    expect(history.map((c) => c.checksum)).toEqual([v2.commit, v1.commit]);
    const back = await store.reinstall('app', v1.commit);
    expect(back.commit).toBe(v1.commit);
    expect(back.version).toBe('1');
    const other = await repo.commit({ tree: sysextTree('zzz', { ID: 'debian' }), subject: 'unrelated' });
    expect((await rejection(store.reinstall('app', other))).code).toBe('NOT_IN_HISTORY');
  });

  it('installs from a tar archive, validated before any ref exists', async () => {
    const dir = sysextTree('arch', { ID: 'debian', VERSION_ID: '12' });
    const tar = join(root, 'arch.tar');
    execFileSync('tar', ['-C', dir, '-cf', tar, '.']);
    const info = await store.installFromArchive(tar);
    expect(info.name).toBe('arch');
    expect(info.origin?.builder).toBe('archive');
    expect(info.origin?.context.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(String(await repo.readFile(info.commit, '/usr/share/arch/data'))).toBe('data of arch\n');
    expect((await repo.loadCommit(info.commit)).metadata['ostree-sysext.name']).toBe('arch');

    const badDir = sysextTree('barch', { ID: 'debian' }, { 'var/lib/x': 'outside', 'usr/lib/os-release': 'ID=x\n' });
    const badTar = join(root, 'barch.tar');
    execFileSync('tar', ['-C', badDir, '-cf', badTar, '.']);
    expect((await rejection(store.installFromArchive(badTar))).code).toBe('INVALID_EXTENSION');
    expect(Object.keys(await repo.listRefs())).toEqual([extensionRef('arch')]);
  });

  it('refuses an archive whose entries climb out with ../ and installs nothing', async () => {
    const src = join(root, 'evil-src');
    mkdirSync(join(src, 'a/usr/lib/extension-release.d'), { recursive: true });
    writeFileSync(join(src, 'a/usr/lib/extension-release.d/extension-release.evil'), 'ID=debian\n');
    writeFileSync(join(src, 'escape'), 'owned');
    const tar = join(root, 'evil.tar');
    // GNU tar stores the ../ member name as given with -P.
    execFileSync('tar', ['-C', join(src, 'a'), '-P', '-cf', tar, '.', '../escape']);
    const e = await repo
      .transaction((tx) => tx.commit({ archive: tar, parent: null }))
      .then(
        async (c) => {
          // If libostree normalised the path, the file must not be outside the tree.
          const top = (await repo.listDir(c, '/')).map((x) => x.name);
          expect(top).not.toContain('..');
          return store.installFromArchive(tar).then(
            () => null,
            (err: unknown) => err,
          );
        },
        (err: unknown) => err,
      );
    // Either libostree refuses the member, or validation refuses the content outside usr/.
    expect(e).toBeInstanceOf(Error);
    expect(Object.keys(await repo.listRefs())).toEqual([]);
  });

  it('reports compatibility against a base, with systemd reason codes', async () => {
    await store.installFromDirectory(sysextTree('good', { ID: 'debian', VERSION_ID: '12' }));
    await store.installFromDirectory(sysextTree('wrongos', { ID: 'fedora', VERSION_ID: '40' }));
    await store.installFromDirectory(sysextTree('anyos', { ID: '_any' }));
    const base = await baseFromDirectory(osTree({ ID: 'debian', VERSION_ID: '12' }));
    const list = await store.list({ base, compatibility: { systemdVersion: 252 } });
    const by = Object.fromEntries(list.map((e) => [e.name, e]));
    expect(by.good?.state).toBe('compatible');
    expect(by.anyos?.state).toBe('compatible');
    expect(by.wrongos?.state).toBe('incompatible');
    expect(by.wrongos?.reason?.code).toBe('ID_MISMATCH');
    expect(list.map((e) => e.name)).toEqual(['anyos', 'good', 'wrongos']);
  });

  it('removes an extension and prunes its objects, but not while a set uses it', async () => {
    const info = await store.installFromDirectory(sysextTree('gone', { ID: 'debian' }, { 'usr/share/gone/unique': 'only-in-gone-' + Date.now() }));
    const unique = (await repo.stat(info.commit, '/usr/share/gone/unique')).checksum!;
    const objectPath = join(repo.path, 'objects', unique.slice(0, 2), `${unique.slice(2)}.file`);
    expect(existsSync(objectPath)).toBe(true);

    // A deployment set for "testos" that includes it.
    const setTree = join(root, 'settree');
    mkdirSync(setTree, { recursive: true });
    const setCommit = await repo.commit({ tree: setTree, metadata: { 'ostree-sysext.extensions': { gone: info.commit } } });
    await repo.setRef(setRef('testos'), setCommit);
    expect((await store.get('gone')).activeIn).toEqual(['testos']);
    expect((await rejection(store.remove('gone'))).code).toBe('IN_ACTIVE_SET');
    expect(await repo.resolve(extensionRef('gone'))).toBe(info.commit);

    await repo.setRef(setRef('testos'), null);
    await store.remove('gone');
    expect(await repo.resolve(extensionRef('gone'), { allowMissing: true })).toBeNull();
    expect(existsSync(objectPath)).toBe(false);
    expect(repo.config()['ostree-sysext-origin "gone"']).toBeUndefined();
    expect((await repo.fsck()).ok).toBe(true);
    expect((await rejection(store.remove('gone'))).code).toBe('NOT_INSTALLED');
  });

  it('reads a set commit the same way in the store and in DeploymentSet, leaving out entries that are no commit names', async () => {
    const info = await store.installFromDirectory(sysextTree('kept', { ID: 'debian' }));
    const setTree = join(root, 'settree-malformed');
    mkdirSync(setTree, { recursive: true });
    // A set commit written by something else: besides one real member, values of other types.
    const metadata = { 'ostree-sysext.extensions': { kept: info.commit, count: 3, nested: { a: 'b' }, flag: true, junk: 'not-a-checksum' } };
    await repo.setRef(setRef('odd'), await repo.commit({ tree: setTree, metadata }));
    expect(setExtensions((await repo.loadCommit(setRef('odd'))).metadata)).toEqual({ kept: info.commit, junk: 'not-a-checksum' });
    const record = (await DeploymentSet.current(repo, 'odd'))!;
    expect(record.extensions).toEqual({ kept: info.commit, junk: 'not-a-checksum' });
    expect(record.order).toEqual(['junk', 'kept']);
    expect((await store.get('kept')).activeIn).toEqual(['odd']);
    // Only the real commit gets a keep ref; the string that is no checksum is skipped.
    expect(await store.keepSetExtensions()).toMatchObject({ kept: 1, added: 1 });
    // A value that is no name-to-commit map names nothing.
    await repo.setRef(setRef('odd'), await repo.commit({ tree: setTree, metadata: { 'ostree-sysext.extensions': ['kept'] } }));
    expect((await DeploymentSet.current(repo, 'odd'))!.extensions).toEqual({});
    expect((await store.get('kept')).activeIn).toEqual([]);
  });

  it('upgrades through builders: available, none, warn (needs force), veto', async () => {
    const dir = sysextTree('dirext', { ID: 'debian', SYSEXT_VERSION_ID: '1' });
    const first = await store.installFromDirectory(dir);
    let status: 'available' | 'warn' | 'veto' | 'none' = 'warn';
    let version = 1;
    const custom: Builder = {
      name: 'custom',
      async checkUpdate() {
        return { status, message: `custom says ${status}` };
      },
      async build({ name }) {
        version++;
        return { tree: sysextTree(name, { ID: 'debian', SYSEXT_VERSION_ID: String(version) }), context: { version } };
      },
    };
    store.registerBuilder(custom);
    await store.build('custom', {}, { name: 'cust' });

    // Nothing changed in the directory; the custom builder warns.
    let out = await store.upgrade();
    expect(out.map((o) => [o.name, o.result, o.check.status])).toEqual([
      ['cust', 'skipped', 'warn'],
      ['dirext', 'skipped', 'none'],
    ]);
    // Change the directory (content and mtime), force the warning through.
    writeFileSync(join(dir, 'usr/share/dirext/data'), 'changed\n');
    utimesSync(join(dir, 'usr/share/dirext/data'), new Date(), new Date(Date.now() + 5000));
    out = await store.upgrade({ force: true });
    expect(out.map((o) => [o.name, o.result])).toEqual([
      ['cust', 'updated'],
      ['dirext', 'updated'],
    ]);
    expect(String(await repo.readFile(extensionRef('dirext'), '/usr/share/dirext/data'))).toBe('changed\n');
    expect((await store.get('cust')).version).toBe('3');
    expect((await store.get('cust')).origin?.context).toEqual({ version: 3 });
    expect((await store.history('dirext')).at(-1)?.checksum).toBe(first.commit);

    status = 'veto';
    out = await store.upgrade({ force: true, names: ['cust'] });
    expect(out[0]?.result).toBe('vetoed');
    expect((await store.get('cust')).version).toBe('3');
  });

  it('refuses unknown builders and bad arguments with typed errors', async () => {
    expect((await rejection(store.build('nope', {}))).code).toBe('UNKNOWN_BUILDER');
    await expect(store.installFromDirectory(42 as unknown as string)).rejects.toThrow(TypeError);
    expect(() => store.registerBuilder({} as Builder)).toThrow(TypeError);
  });
});
