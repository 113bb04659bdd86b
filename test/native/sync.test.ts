// The synchronous read path: the same answers as the async one (compared entry by entry on
// trees the ostree CLI also reads), the same typed errors, bounded reads, and damaged objects
// refused without taking the process down (child processes).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo, SYNC_READ_LIMIT } from '../../lib/index.js';
import { childEnv } from '../helpers/child.js';
import { makeTree } from '../helpers/fixtures.js';
import { removeTree, tempDir } from '../helpers/tmp.js';

const dir = tempDir('ostree-sysext-sync-');
afterAll(() => removeTree(dir));

for (const mode of ['bare', 'bare-user-only', 'archive'] as const) {
  describe(`sync reads in a ${mode} repo`, () => {
    let repo: Repo;
    let commit: string;
    beforeAll(async () => {
      const tree = join(dir, `tree-${mode}`);
      makeTree(tree, {
        'usr/lib/os-release': 'ID=test\n',
        'usr/lib/big.bin': randomBytes(SYNC_READ_LIMIT + 1),
        'usr/lib/empty': '',
        'usr/bin/tool': { file: '#!/bin/sh\n', mode: 0o755 },
        'usr/bin/rel': { symlink: 'tool' },
        'usr/share/d/.ostree-wh.x': '',
        'usr/share/empty': { dir: true },
      });
      repo = await Repo.create(join(dir, `repo-${mode}`), { mode, disableFsync: true });
      commit = await repo.commit({ tree, ref: 'os', subject: 'sync test' });
      return () => repo.close();
    });

    it('answers exactly what the async path answers', async () => {
      expect(repo.resolveSync('os')).toBe(await repo.resolve('os'));
      expect(repo.resolveSync('nope', { allowMissing: true })).toBeNull();
      expect(repo.loadCommitSync('os')).toEqual(await repo.loadCommit('os'));
      for (const path of ['/', '/usr', '/usr/bin/tool', '/usr/bin/rel', '/usr/share/empty', '/usr/lib/empty']) {
        expect(repo.statSync(commit, path)).toEqual(await repo.stat(commit, path));
      }
      for (const path of ['/', '/usr/bin', '/usr/lib', '/usr/share/d', '/usr/share/empty']) {
        expect(repo.listDirSync(commit, path)).toEqual(await repo.listDir(commit, path));
      }
      // Repository reads show a commit as stored: whiteout markers are plain files here.
      expect(repo.listDirSync(commit, '/usr/share/d').map((e) => e.name)).toEqual(['.ostree-wh.x']);
      expect(repo.readFileSync(commit, '/usr/lib/os-release').toString()).toBe('ID=test\n');
      expect(repo.readFileSync(commit, '/usr/lib/empty').length).toBe(0);
      expect(repo.readLinkSync(commit, '/usr/bin/rel')).toBe('tool');
      const { results } = repo.querySync('os', [{ op: 'commit' }, { op: 'read', path: '/usr/nothing', optional: true }, { op: 'stat', path: '/usr/bin' }]);
      expect(results[1]).toBeNull();
      expect(results[2]).toEqual(await repo.stat(commit, '/usr/bin'));
    });

    it('throws the typed errors the async path rejects with', async () => {
      const code = (fn: () => unknown) => {
        try {
          fn();
        } catch (e) {
          return (e as { code?: string }).code;
        }
        return 'no error';
      };
      expect(code(() => repo.statSync(commit, '/usr/missing'))).toBe('NOT_FOUND');
      expect(code(() => repo.resolveSync('missing-ref'))).toBe('NOT_FOUND');
      expect(code(() => repo.listDirSync(commit, '/usr/bin/tool'))).toBe('NOT_DIRECTORY');
      expect(code(() => repo.readLinkSync(commit, '/usr/bin/tool'))).toBe(await repo.readLink(commit, '/usr/bin/tool').catch((e: { code: string }) => e.code));
      // Bounded: a file over the limit is refused; the async path reads it.
      expect(code(() => repo.readFileSync(commit, '/usr/lib/big.bin'))).toBe(
        await repo.readFile(commit, '/usr/lib/big.bin', { maxBytes: SYNC_READ_LIMIT }).catch((e: { code: string }) => e.code),
      );
      expect(code(() => repo.readFileSync(commit, '/usr/lib/big.bin'))).toBe('TOO_LARGE');
      expect((await repo.readFile(commit, '/usr/lib/big.bin')).length).toBe(SYNC_READ_LIMIT + 1);
      expect(code(() => repo.readFileSync(commit, '/usr/lib/os-release', { maxBytes: SYNC_READ_LIMIT + 1 }))).toBe('ERR_OUT_OF_RANGE');
    });
  });
}

describe('sync reads of a damaged repository', () => {
  it('refuse a damaged dirtree with a typed error instead of crashing', async () => {
    const tree = join(dir, 'dmg-tree');
    makeTree(tree, { 'usr/share/a/f': 'x\n', 'usr/lib/os-release': 'ID=t\n' });
    const path = join(dir, 'dmg-repo');
    const repo = await Repo.create(path, { mode: 'bare' });
    const commit = await repo.commit({ tree, ref: 'os' });
    const a = await repo.stat(commit, '/usr/share/a');
    repo.close();
    // Truncate the dirtree of usr/share/a by a byte.
    const objects = join(path, 'objects', a.checksum!.slice(0, 2));
    const file = join(
      objects,
      readdirSync(objects).find((f) => f.startsWith(a.checksum!.slice(2)) && f.endsWith('.dirtree'))!,
    );
    const bytes = spawnSync('head', ['-c', '-1', file]).stdout;
    spawnSync('chmod', ['u+w', file]);
    writeFileSync(file, bytes);
    const script = `
      const { Repo } = await import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'lib', 'index.js'))});
      const repo = await Repo.open(${JSON.stringify(path)});
      for (const fn of [() => repo.listDirSync('os', '/usr/share/a'), () => repo.readFileSync('os', '/usr/share/a/f'), () => repo.statSync('os', '/usr/share/a/f')]) {
        try { fn(); console.log('no error'); } catch (e) { console.log(e.code); }
      }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: childEnv, encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.stdout.trim().split('\n')).toEqual(['CORRUPT', 'CORRUPT', 'CORRUPT']);
  });
});
