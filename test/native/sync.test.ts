// The synchronous read path: the same answers as the async one (compared entry by entry on
// trees the ostree CLI also reads), the same typed errors, bounded reads, and damaged objects
// refused without taking the process down (child processes).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo, SYNC_READ_LIMIT } from '../../lib/index.js';
import { childEnv } from '../helpers/child.js';
import { makeTree } from '../helpers/fixtures.js';
import { ostree, ostreeRepo } from '../helpers/ostree-cli.js';
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

// A handle keeps the commits and trees it has read (content-addressed, so they stay right
// while the commit exists). What another process changes must still show: a pruned commit is
// gone, a commit marked partial or signed afterwards reads as the repository says now.
describe('what a handle has read follows the repository', () => {
  it('a commit pruned by the ostree CLI is gone for a handle that read it before', async () => {
    const tree = join(dir, 'prune-tree');
    makeTree(tree, { 'usr/lib/os-release': 'ID=p\n', 'usr/bin/t': 'x' });
    const path = join(dir, 'prune-repo');
    const repo = await Repo.create(path, { mode: 'bare', disableFsync: true });
    const keep = await repo.commit({ tree, ref: 'keep', subject: 'keep' });
    makeTree(tree, { 'usr/lib/os-release': 'ID=gone\n' });
    const gone = await repo.commit({ tree, ref: 'gone', subject: 'gone' });
    expect(repo.loadCommitSync(gone).subject).toBe('gone');
    expect(repo.readFileSync(gone, '/usr/lib/os-release').toString()).toBe('ID=gone\n');
    expect(repo.statSync(gone, '/usr/bin/t').type).toBe('file');
    ostreeRepo(path, ['refs', '--delete', 'gone']);
    ostreeRepo(path, ['prune', '--refs-only']);
    expect(ostree(['--repo=' + path, 'show', gone]).status).not.toBe(0);
    const code = (fn: () => unknown) => {
      try {
        fn();
        return 'answered';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    expect(code(() => repo.loadCommitSync(gone))).toBe('NOT_FOUND');
    expect(code(() => repo.statSync(gone, '/usr/bin/t'))).toBe('NOT_FOUND');
    expect(code(() => repo.readFileSync(gone, '/usr/lib/os-release'))).toBe('NOT_FOUND');
    await expect(repo.stat(gone, '/usr/bin/t')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // The commit that stayed still answers from the same handle.
    expect(repo.readFileSync(keep, '/usr/lib/os-release').toString()).toBe('ID=p\n');
    repo.close();
  });

  it('keeps its read caches within their bounds: 1,024 trees and 65,536 loaded entries, the oldest dropped first', async () => {
    const files: Record<string, string> = { 'usr/lib/os-release': 'ID=bound\n' };
    for (let i = 0; i < 120; i++) files[`d/f${i}`] = `${i}\n`;
    const tree = join(dir, 'bound-tree');
    makeTree(tree, files);
    const repo = await Repo.create(join(dir, 'bound-repo'), { mode: 'bare-user-only', disableFsync: true });
    const first = await repo.commit({ tree, subject: 'bound' });
    // 1,200 commits of the same tree: each read loads its own copy of the root and of d/.
    const commits = await repo.transaction(async (tx) => {
      const out = [first];
      for (let i = 1; i < 1200; i++) out.push(await tx.commit({ fromCommit: first, subject: `bound ${i}`, timestamp: 10_000 + i }));
      return out;
    });
    for (const c of commits) expect(repo.listDirSync(c, '/d')).toHaveLength(120);
    const stats = repo._native.cacheStats();
    const perTree = 2 + 120; // the root's two entries and d/'s
    // 1,200 trees of 122 entries would be 146,400: the entry bound drops the oldest first.
    expect(stats.trees).toBeLessThanOrEqual(Math.floor(65_536 / perTree) + 1);
    expect(stats.trees).toBeGreaterThan(400);
    expect(stats.entries).toBeLessThanOrEqual(65_536 + perTree);
    expect(stats.entries).toBe(stats.trees * perTree);
    expect(stats.commits).toBe(1200);
    // A dropped tree is read again from the repository, with the same answer.
    expect(repo.listDirSync(commits[0]!, '/d').map((e) => e.name)).toEqual(repo.listDirSync(commits[1199]!, '/d').map((e) => e.name));
    expect(repo._native.cacheStats().trees).toBeLessThanOrEqual(stats.trees);
    repo.close();
  });

  it("reads detached metadata as libostree's own reader does (through a child repository), whoever wrote it", async () => {
    const tree = join(dir, 'detached-tree');
    makeTree(tree, { 'usr/lib/os-release': 'ID=d\n' });
    const path = join(dir, 'detached-repo');
    const repo = await Repo.create(path, { mode: 'bare-user-only', disableFsync: true });
    const commits: Record<string, string> = {};
    for (const k of ['none', 'lib', 'cli', 'removed', 'garbage'])
      commits[k] = await repo.commit({ tree, subject: k, timestamp: 1_000 + Object.keys(commits).length });
    await repo.writeDetachedMetadata(commits.lib!, {
      s: 'text',
      n: 7,
      big: 2n ** 60n,
      b: true,
      bytes: new Uint8Array([0, 1, 255]),
      list: ['a', 'b'],
      map: { inner: 'x', deeper: { k: 1.5 } },
    });
    await repo.writeDetachedMetadata(commits.removed!, { gone: 'soon' });
    await repo.writeDetachedMetadata(commits.removed!, null);
    // The CLI's own writer: a commit made and given detached metadata by `ostree commit`.
    const cliCommit = ostreeRepo(path, ['commit', '--tree=dir=' + tree, '--add-detached-metadata-string=cli.key=from the CLI', '--orphan', '-s', 'cli']).trim();
    commits.cli = cliCommit;
    // Bytes that are no a{sv}: both readers must survive them and agree.
    writeFileSync(join(path, 'objects', commits.garbage!.slice(0, 2), `${commits.garbage!.slice(2)}.commitmeta`), Buffer.from('\x01\xff'.repeat(33), 'latin1'));
    // A child repository whose parent is this one: there every read goes through libostree's
    // read_commit_detached_metadata (objects/ has nothing of its own), here through ours.
    const childPath = join(dir, 'detached-child');
    const child = await Repo.create(childPath, { mode: 'bare-user-only', disableFsync: true });
    await child.setConfig('core', 'parent', path);
    child.close();
    const viaParent = await Repo.open(childPath);
    const fresh = await Repo.open(path);
    for (const [what, c] of Object.entries(commits)) {
      const ours = fresh.loadCommitSync(c).detachedMetadata;
      const theirs = viaParent.loadCommitSync(c).detachedMetadata;
      expect({ what, ours }).toEqual({ what, ours: theirs });
      expect({ what, async: (await fresh.loadCommit(c)).detachedMetadata }).toEqual({ what, async: theirs });
    }
    expect(fresh.loadCommitSync(commits.lib!).detachedMetadata).toMatchObject({ s: 'text', n: 7, map: { inner: 'x' } });
    expect(fresh.loadCommitSync(commits.cli!).detachedMetadata).toEqual({ 'cli.key': 'from the CLI' });
    expect(fresh.loadCommitSync(commits.none!).detachedMetadata).toBeNull();
    expect(fresh.loadCommitSync(commits.removed!).detachedMetadata).toBeNull();
    viaParent.close();
    fresh.close();
    repo.close();
  });

  it('partial state and detached metadata written after the first read are seen, as libostree reports them', async () => {
    const tree = join(dir, 'state-tree');
    makeTree(tree, { 'usr/lib/os-release': 'ID=s\n' });
    const path = join(dir, 'state-repo');
    const repo = await Repo.create(path, { mode: 'bare', disableFsync: true });
    const c = await repo.commit({ tree, ref: 'os' });
    expect(repo.loadCommitSync(c)).toMatchObject({ partial: false, detachedMetadata: null });
    // Another process marks it partial (what an interrupted pull leaves) and adds detached
    // metadata; the async loadCommit goes through libostree's own load_commit.
    writeFileSync(join(path, 'state', `${c}.commitpartial`), '');
    const other = await Repo.open(path);
    await other.writeDetachedMetadata(c, { 'test.key': 'v' });
    other.close();
    const sync = repo.loadCommitSync(c);
    expect(sync).toMatchObject({ partial: true, detachedMetadata: { 'test.key': 'v' } });
    expect(sync).toEqual(await repo.loadCommit(c));
    rmSync(join(path, 'state', `${c}.commitpartial`));
    expect(repo.loadCommitSync(c).partial).toBe(false);
    expect(repo.querySync(c, [{ op: 'commit' }]).results[0]).toEqual(await repo.loadCommit(c));
    repo.close();
  });
});
