// Reading inside a commit without checking it out: stat, listDir, readFile, readLink and
// batched queries, in bare-user-only and archive repos.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { OstreeError, Repo } from '../../lib/index.js';
import { makeTree } from '../helpers/fixtures.js';
import { ostreeRepo } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-read-');
const big = randomBytes(2 * 1024 * 1024 + 3);

for (const mode of ['bare-user-only', 'archive'] as const) {
  describe(`reads in a ${mode} repo`, () => {
    const tree = join(base, `tree-${mode}`);
    let repo: Repo;
    let commit: string;
    beforeAll(async () => {
      makeTree(tree, {
        'usr/lib/os-release': 'ID=test\nVERSION_ID=1\n',
        'usr/lib/big.bin': big,
        'usr/lib/empty': '',
        'usr/bin/tool': { file: '#!/bin/sh\n', mode: 0o755 },
        'usr/bin/rel': { symlink: 'tool' },
        'usr/bin/abs': { symlink: '/usr/bin/tool' },
        'usr/share/empty-dir': { dir: true },
        'usr/share/ünï/файл.txt': 'unicode\n',
      });
      repo = await Repo.create(join(base, `repo-${mode}`), { mode, disableFsync: true });
      commit = await repo.commit({ tree, ref: 'os' });
      return () => repo.close();
    });

    it('stat describes files, dirs, symlinks and the root', async () => {
      expect(await repo.stat('os', '/usr/bin/tool')).toEqual({
        name: 'tool',
        path: '/usr/bin/tool',
        type: 'file',
        mode: 0o100755,
        uid: 0,
        gid: 0,
        size: 10,
        checksum: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      expect(await repo.stat('os', '/usr/lib/big.bin')).toMatchObject({ type: 'file', mode: 0o100644, size: big.length });
      expect(await repo.stat('os', '/usr/bin/abs')).toMatchObject({ name: 'abs', type: 'symlink', target: '/usr/bin/tool' });
      expect(await repo.stat('os', '/usr/share')).toMatchObject({ name: 'share', path: '/usr/share', type: 'dir', mode: 0o40755, size: 0 });
      expect(await repo.stat('os', '/')).toMatchObject({ path: '/', type: 'dir' });
      // The file checksum is the content object's: the CLI agrees.
      const cli = ostreeRepo(repo.path, ['ls', '-C', 'os', '/usr/bin/tool']).trim().split(/\s+/);
      expect(cli).toContain((await repo.stat('os', '/usr/bin/tool')).checksum);
    });

    it('listDir lists a directory with full paths', async () => {
      const entries = await repo.listDir('os', '/usr/bin');
      expect(entries.map((e) => [e.name, e.path, e.type]).sort()).toEqual([
        ['abs', '/usr/bin/abs', 'symlink'],
        ['rel', '/usr/bin/rel', 'symlink'],
        ['tool', '/usr/bin/tool', 'file'],
      ]);
      expect((await repo.listDir('os', '/')).map((e) => e.name)).toEqual(['usr']);
      expect(await repo.listDir('os', '/usr/share/empty-dir')).toEqual([]);
      expect((await repo.listDir(commit, '/usr/share')).map((e) => e.name).sort()).toEqual(['empty-dir', 'ünï']);
    });

    it('readFile returns the exact bytes (large, empty, unicode paths)', async () => {
      expect((await repo.readFile('os', '/usr/lib/big.bin')).equals(big)).toBe(true);
      expect(await repo.readFile('os', '/usr/lib/empty')).toEqual(Buffer.alloc(0));
      expect((await repo.readFile('os', '/usr/share/ünï/файл.txt')).toString()).toBe('unicode\n');
      expect((await repo.readFile(commit, 'usr//lib/./os-release')).toString()).toBe('ID=test\nVERSION_ID=1\n');
    });

    it('readLink returns symlink targets', async () => {
      expect(await repo.readLink('os', '/usr/bin/rel')).toBe('tool');
      expect(await repo.readLink('os', '/usr/bin/abs')).toBe('/usr/bin/tool');
    });

    it('wrong kinds and missing paths are typed errors naming the path', async () => {
      const err = (p: Promise<unknown>) =>
        p.then(
          () => new Error('resolved'),
          (e: unknown) => e as OstreeError,
        );
      const missing = await err(repo.readFile('os', '/usr/nope'));
      expect(missing).toBeInstanceOf(OstreeError);
      expect(missing).toMatchObject({ code: 'NOT_FOUND' });
      expect(missing.message).toContain('/usr/nope');
      expect(await err(repo.readFile('os', '/usr/lib'))).toMatchObject({ code: 'IS_DIRECTORY' });
      expect(await err(repo.listDir('os', '/usr/lib/os-release'))).toMatchObject({ code: 'NOT_DIRECTORY' });
      expect(await err(repo.readLink('os', '/usr/bin/tool'))).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await err(repo.readFile('os', '/usr/bin/rel'))).toBeInstanceOf(OstreeError); // symlinks are not followed
      expect(await err(repo.stat('no/such/ref', '/'))).toMatchObject({ code: 'NOT_FOUND' });
    });

    it('maxBytes refuses larger files with TOO_LARGE and allows exactly the limit', async () => {
      const e = await repo.readFile('os', '/usr/lib/big.bin', { maxBytes: big.length - 1 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OstreeError);
      expect(e).toMatchObject({ code: 'TOO_LARGE' });
      expect((await repo.readFile('os', '/usr/lib/big.bin', { maxBytes: big.length })).length).toBe(big.length);
      expect((await repo.readFile('os', '/usr/lib/os-release', { maxBytes: 1024 })).toString()).toContain('ID=test');
    });

    it('query runs a batch in order; optional misses are null; the commit is reported', async () => {
      const { commit: c, results } = await repo.query('os', [
        { op: 'read', path: '/usr/lib/os-release' },
        { op: 'read', path: '/etc/os-release', optional: true },
        { op: 'stat', path: '/usr/bin/abs' },
        { op: 'list', path: '/nope', optional: true },
        { op: 'readlink', path: '/usr/bin/rel' },
        { op: 'list', path: '/usr/bin' },
        { op: 'stat', path: '/usr/lib/missing', optional: true },
        { op: 'read', path: '/usr/lib/big.bin', maxBytes: big.length },
      ]);
      expect(c).toBe(commit);
      expect(results).toHaveLength(8);
      expect(results[0]).toEqual(Buffer.from('ID=test\nVERSION_ID=1\n'));
      expect(results[1]).toBeNull();
      expect(results[2]).toMatchObject({ type: 'symlink', target: '/usr/bin/tool' });
      expect(results[3]).toBeNull();
      expect(results[4]).toBe('tool');
      expect((results[5] as Array<{ name: string }>).map((e) => e.name).sort()).toEqual(['abs', 'rel', 'tool']);
      expect(results[6]).toBeNull();
      expect((results[7] as Buffer).equals(big)).toBe(true);
    });

    it('a non-optional miss fails the whole batch; optional does not hide other errors', async () => {
      await expect(
        repo.query('os', [
          { op: 'stat', path: '/usr' },
          { op: 'read', path: '/missing' },
        ]),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(repo.query('os', [{ op: 'read', path: '/usr/lib', optional: true }])).rejects.toMatchObject({ code: 'IS_DIRECTORY' });
      await expect(repo.query('os', [{ op: 'read', path: '/usr/lib/big.bin', optional: true, maxBytes: 10 }])).rejects.toMatchObject({ code: 'TOO_LARGE' });
      expect(await repo.query('os', [])).toEqual({ commit, results: [] });
    });

    it('many concurrent reads all return the right bytes', async () => {
      const paths = ['/usr/lib/os-release', '/usr/bin/tool', '/usr/share/ünï/файл.txt'];
      const want = await Promise.all(paths.map((p) => repo.readFile('os', p)));
      const got = await Promise.all(Array.from({ length: 300 }, (_, i) => repo.readFile('os', paths[i % 3]!)));
      got.forEach((g, i) => expect(g.equals(want[i % 3]!)).toBe(true));
    });
  });
}
