// The overlay engine's API and the storage of overlay content (whiteouts, opaque directories),
// checked against the real ostree CLI. The merged view itself is compared with the real
// systemd-sysext in test/e2e/overlay-systemd.test.ts.
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ambiguousNames, baseFromDirectory, ExtensionStore, fileConflictPlugin, mergeOffline, Overlay, Repo, type Base } from '../../lib/index.js';
import { makeTree } from '../helpers/fixtures.js';
import { isRoot } from '../helpers/root.js';
import { removeTree, tempDir } from '../helpers/tmp.js';

let dir: string;
let base: Base;
const rel = (name: string) => ({ [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=testos\n' });

function ostree(repo: string, ...args: string[]): string {
  return execFileSync('ostree', [`--repo=${repo}`, ...args], { encoding: 'utf8' });
}

beforeAll(async () => {
  dir = tempDir('overlay-');
  makeTree(join(dir, 'base'), {
    'usr/lib/os-release': 'ID=testos\n',
    'usr/share/a/one': 'base one\n',
    'usr/share/a/two': 'base two\n',
    'usr/share/dir/keep': 'base keep\n',
    'usr/share/file': 'base file\n',
    'usr/bin/tool': 'same\n',
  });
  base = await baseFromDirectory(join(dir, 'base'));
});
afterAll(() => removeTree(dir));

async function install(repo: Repo, name: string, spec: Parameters<typeof makeTree>[1], post?: (root: string) => void): Promise<string> {
  const src = join(dir, `src-${repo.mode}-${name}`);
  makeTree(src, { ...rel(name), ...spec });
  post?.(src);
  const store = new ExtensionStore(repo);
  return (await store.installFromDirectory(src)).commit;
}

describe('Overlay', () => {
  it('reads the merged view, reports every kind of conflict with its winner, and walks in one call', async () => {
    const repo = await Repo.create(join(dir, 'r1'), { mode: 'bare-user' });
    try {
      const a = await install(repo, 'a', { 'usr/share/a/one': 'from a\n', 'usr/share/dir': 'a file over a directory\n', 'usr/bin/tool': 'same\n' });
      const b = await install(repo, 'b', { 'usr/share/file/inside': 'b dir over a file\n' });
      const view = await Overlay.open(
        base,
        [
          { name: 'a', commit: a, kind: 'sysext' },
          { name: 'b', commit: b, kind: 'sysext' },
        ],
        { repo },
      );
      try {
        expect(String(await view.readFile('usr/share/a/one'))).toBe('from a\n');
        expect(String(await view.readFile('usr/share/a/two'))).toBe('base two\n');
        expect(await view.stat('usr/share/dir')).toMatchObject({ type: 'file', layer: 'a' });
        expect(await view.stat('usr/share/dir/keep')).toBeNull();
        expect(await view.list('usr/share/file')).toEqual([expect.objectContaining({ name: 'inside', layer: 'b' })]);
        // The mounted hierarchy root is systemd's own directory.
        expect(await view.stat('usr')).toMatchObject({ type: 'dir', mode: 0o755, uid: 0, gid: 0, layer: 'systemd-sysext' });
        const conflicts = await view.conflicts();
        expect(conflicts.map((c) => [c.path, c.kind, c.providers.join(','), c.winner])).toEqual([
          ['usr/share/a/one', 'content', 'base,a', 'a'],
          ['usr/share/dir', 'type', 'base,a', 'a'],
          ['usr/share/file', 'type', 'base,b', 'b'],
        ]);
        const all = (await view.walk('usr'))!.map((e) => e.path);
        expect(all).toContain('usr/share/file/inside');
        expect(all).not.toContain('usr/share/dir/keep');
        expect(all.indexOf('usr/share')).toBeLessThan(all.indexOf('usr/share/a/one'));
      } finally {
        view.close();
      }
      await expect(Overlay.open(base, [{ name: 'x', commit: 'f'.repeat(64), kind: 'sysext' }], { repo }).then((v) => v.stat('usr'))).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    } finally {
      repo.close();
    }
  });

  it("shows the hierarchy roots as the target systemd makes them: 0755 before 256, the base's permission bits from 256", async () => {
    const repo = await Repo.create(join(dir, 'r-mode'), { mode: 'bare-user' });
    const src = join(dir, 'base-modes');
    try {
      makeTree(src, { 'usr/lib/os-release': 'ID=testos\n', 'usr/share/x': 'x\n', 'opt/keep': 'k\n', 'var/x': 'v\n' });
      chmodSync(join(src, 'usr'), 0o1750); // sticky: systemd keeps only st_mode & 0777
      chmodSync(join(src, 'opt'), 0o700);
      const b = await baseFromDirectory(src);
      const c = await install(repo, 'm', { 'usr/share/m': 'm\n', 'opt/app/f': 'f\n' });
      const layers = [{ name: 'm', commit: c, kind: 'sysext' as const }];
      const modes = async (opts: Parameters<typeof Overlay.open>[2]) => {
        const v = await Overlay.open(b, layers, { repo, ...opts });
        try {
          return await Promise.all(['usr', 'opt'].map(async (p) => (await v.stat(p))!));
        } finally {
          v.close();
        }
      };
      for (const old of [
        {},
        { systemdVersion: 252 },
        { systemdVersion: 255 },
        { systemd: { version: 257, fullVersion: null, idLike: true, hostHierarchyMode: false } },
      ]) {
        expect(
          (await modes(old)).map((e) => [e.mode, e.uid, e.gid, e.layer]),
          JSON.stringify(old),
        ).toEqual([
          [0o755, 0, 0, 'systemd-sysext'],
          [0o755, 0, 0, 'systemd-sysext'],
        ]);
      }
      for (const recent of [{ systemdVersion: 256 }, { systemdVersion: 262 }, { systemd: { version: 257, fullVersion: null, idLike: false } as never }]) {
        expect(
          (await modes(recent)).map((e) => [e.mode, e.uid, e.gid, e.layer]),
          JSON.stringify(recent),
        ).toEqual([
          [0o750, 0, 0, 'systemd-sysext'],
          [0o700, 0, 0, 'systemd-sysext'],
        ]);
      }
      // The offline merge writes the same roots (a directory and a commit).
      const out = join(dir, 'merged-modes');
      await mergeOffline({ repo, base: b, extensions: layers, directory: out, systemdVersion: 257 });
      expect([lstatSync(join(out, 'usr')).mode & 0o7777, lstatSync(join(out, 'opt')).mode & 0o7777]).toEqual([0o750, 0o700]);
      const r = await mergeOffline({ repo, base: b, extensions: layers, commit: {}, systemdVersion: 257 });
      const co = join(dir, 'merged-modes-co');
      await repo.checkout(r.commit!, co, { mode: 'user' });
      expect([lstatSync(join(co, 'usr')).mode & 0o7777, lstatSync(join(co, 'opt')).mode & 0o7777]).toEqual([0o750, 0o700]);
      await expect(
        Overlay.open(b, layers, { repo, systemd: { version: 257, fullVersion: null, idLike: false, hostHierarchyMode: 1 as never } }),
      ).rejects.toThrow(/hostHierarchyMode must be a boolean/);
    } finally {
      repo.close();
    }
  });

  it('reports a hierarchy an extension takes no part in, and a missing one on an immutable root', async () => {
    const repo = await Repo.create(join(dir, 'r2'), { mode: 'bare-user' });
    try {
      const c = await install(repo, 'o', { 'opt/app/f': 'x\n', 'usr/share/o': 'o\n' });
      const writable = await Overlay.open(base, [{ name: 'o', commit: c, kind: 'sysext' }], { repo });
      expect((await writable.stat('opt/app/f'))?.layer).toBe('o');
      writable.close();
      const immutable = await Overlay.open(base, [{ name: 'o', commit: c, kind: 'sysext' }], { repo, createMissingHierarchies: false });
      expect(await immutable.stat('opt')).toBeNull();
      expect((await immutable.mounts()).skipped).toEqual([{ extension: 'o', hierarchy: 'opt', reason: 'the base has no opt and its root is immutable' }]);
      immutable.close();
    } finally {
      repo.close();
    }
  });
});

describe("systemd's choice of extensions in an offline merge", () => {
  it('skips what systemd would not merge (with the reason), or refuses, or includes on request', async () => {
    const repo = await Repo.create(join(dir, 'r4'), { mode: 'bare-user' });
    try {
      const good = await install(repo, 'good', { 'usr/share/good': 'g\n' });
      const otherSrc = join(dir, 'src-other');
      makeTree(otherSrc, { 'usr/lib/extension-release.d/extension-release.other': 'ID=fedora\n', 'usr/share/other': 'o\n' });
      const other = (await new ExtensionStore(repo).installFromDirectory(otherSrc)).commit;
      const exts = [
        { name: 'good', commit: good, kind: 'sysext' as const },
        { name: 'other', commit: other, kind: 'sysext' as const },
      ];
      const r = await mergeOffline({ repo, base, extensions: exts, directory: join(dir, 'choice-skip') });
      expect(r.order).toEqual(['good']);
      expect(r.skipped).toEqual([{ name: 'other', code: 'ID_MISMATCH', reason: expect.stringMatching(/fedora/) }]);
      expect(() => lstatSync(join(dir, 'choice-skip', 'usr/share/other'))).toThrow(/ENOENT/);
      const refused = await mergeOffline({ repo, base, extensions: exts, directory: join(dir, 'choice-refuse'), incompatible: 'refuse' }).catch(
        (e: unknown) => e,
      );
      expect(refused).toMatchObject({ code: 'INCOMPATIBLE' });
      expect(() => lstatSync(join(dir, 'choice-refuse'))).toThrow(/ENOENT/);
      const all = await mergeOffline({ repo, base, extensions: exts, directory: join(dir, 'choice-include'), incompatible: 'include' });
      expect(all.order).toEqual(['good', 'other']);
      expect(lstatSync(join(dir, 'choice-include', 'usr/share/other')).isFile()).toBe(true);
    } finally {
      repo.close();
    }
  });
});

describe('names systemd cannot order', () => {
  it('are reported by mergeOffline and as a warning vote, never decided silently', async () => {
    expect(ambiguousNames(['a1', 'a_1', 'b', 'foo-01', 'foo-1'])).toEqual([
      ['a1', 'a_1'],
      ['foo-01', 'foo-1'],
    ]);
    const repo = await Repo.create(join(dir, 'r3'), { mode: 'bare-user' });
    try {
      const a1 = await install(repo, 'a1', { 'usr/share/who': 'a1\n' });
      const a_1 = await install(repo, 'a_1', { 'usr/share/who': 'a_1\n' });
      const exts = [
        { name: 'a1', commit: a1, kind: 'sysext' as const },
        { name: 'a_1', commit: a_1, kind: 'sysext' as const },
      ];
      const r = await mergeOffline({ repo, base, extensions: exts, directory: join(dir, 'amb') });
      expect(r.ambiguous).toEqual([['a1', 'a_1']]);
      const vote = await fileConflictPlugin.checkCompatible!({
        osname: 'x',
        base,
        repo,
        systemdVersion: 252,
        extensions: exts.map((e) => ({ ...e, release: { ID: 'testos' }, reader: null as never })),
      });
      expect(vote.verdict).toBe('warn');
      expect(vote.message).toMatch(/no fixed order between a1 and a_1/);
      expect(vote.details).toContainEqual({ kind: 'ambiguous-order', names: ['a1', 'a_1'] });
    } finally {
      repo.close();
    }
  });
});

describe.runIf(isRoot)('whiteouts and opaque directories in the repository (root: device nodes, trusted xattrs)', () => {
  for (const mode of ['bare', 'bare-user-only'] as const) {
    it(`are stored losslessly in a ${mode} repository, readable by the ostree CLI, and hide what is below`, async () => {
      const path = join(dir, `wh-${mode}`);
      const repo = await Repo.create(path, { mode });
      try {
        const commit = await install(repo, 'w', { 'usr/share/a/.keep': '', 'usr/share/dir/mine': 'mine\n' }, (src) => {
          execFileSync('mknod', [join(src, 'usr/share/a/one'), 'c', '0', '0']);
          execFileSync('mknod', [join(src, 'usr/share/file'), 'c', '0', '0']);
          execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(src, 'usr/share/dir')]);
        });
        const listing = ostree(path, 'ls', '-R', commit, '/usr/share');
        expect(listing).toMatch(/\.ostree-wh\.one/);
        expect(listing).toMatch(/\.ostree-wh\.file/);
        if (mode === 'bare') expect(ostree(path, 'ls', '-X', commit, '/usr/share/dir')).toMatch(/trusted\.overlay\.opaque/);
        else expect(listing).toMatch(/\.ostree-sysext-opaque/);
        // The CLI's own passthrough checkout turns the markers back into whiteouts; so does ours.
        execFileSync('ostree', [`--repo=${path}`, 'checkout', '--process-passthrough-whiteouts', commit, join(dir, `co-cli-${mode}`)]);
        await repo.checkout(commit, join(dir, `co-lib-${mode}`), { processPassthroughWhiteouts: true });
        for (const co of [`co-cli-${mode}`, `co-lib-${mode}`]) {
          const st = lstatSync(join(dir, co, 'usr/share/a/one'));
          expect(st.isCharacterDevice() && st.rdev === 0).toBe(true);
        }
        // The merged view hides what the whiteouts and the opaque directory hide.
        const view = await Overlay.open(base, [{ name: 'w', commit, kind: 'sysext' }], { repo });
        try {
          expect(await view.stat('usr/share/a/one')).toBeNull();
          expect(await view.stat('usr/share/file')).toBeNull();
          expect((await view.list('usr/share/a'))!.map((e) => e.name)).toEqual(['.keep', 'two']);
          expect((await view.list('usr/share/dir'))!.map((e) => e.name)).toEqual(['mine']);
          expect(await view.xattrs('usr/share/dir')).toEqual({});
        } finally {
          view.close();
        }
        const out = join(dir, `merged-${mode}`);
        await mergeOffline({ repo, base, extensions: [{ name: 'w', commit, kind: 'sysext' }], directory: out });
        expect(() => lstatSync(join(out, 'usr/share/a/one'))).toThrow(/ENOENT/);
        expect(() => lstatSync(join(out, 'usr/share/dir/keep'))).toThrow(/ENOENT/);
      } finally {
        repo.close();
      }
    });
  }

  it('reports what bare-user-only cannot store at install, path by path', async () => {
    const repo = await Repo.create(join(dir, 'lossy'), { mode: 'bare-user-only' });
    try {
      const src = join(dir, 'lossy-src');
      makeTree(src, { ...rel('l'), 'usr/bin/suid': { file: 'x', mode: 0o4755 }, 'usr/share/t': { file: 't', xattrs: { 'user.tag': 'v' } } });
      mkdirSync(join(src, 'usr/share/owned'));
      execFileSync('chown', ['1000:1000', join(src, 'usr/share/owned')]);
      const r = await new ExtensionStore(repo).installFromDirectory(src);
      expect(r.unrepresentable?.map((u) => u.path).sort()).toEqual(['usr/bin/suid', 'usr/share/owned', 'usr/share/t']);
      expect(r.unrepresentable?.find((u) => u.path === 'usr/bin/suid')?.lost).toBe('mode 4755 stored as 0755');
    } finally {
      repo.close();
    }
  });
});
