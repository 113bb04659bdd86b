// Pulls between repositories on one machine (file://): pullLocal with hardlinks, a remote
// whose URL is file://, a bare file:// URL, the pull flags (depth, commit-only, mirror,
// remote name), GPG verification, progress ordering and concurrent pulls into one repo.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import type { PullProgress } from '../../lib/binding/pull.js';
import { Repo } from '../../lib/binding/repo.js';
import { makeManyFiles, makeTree } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { ostreeOk } from '../helpers/ostree-cli.js';
import { isRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-pull-local-');
let n = 0;
const fresh = (mode: 'bare-user-only' | 'archive' | 'bare-user' = 'bare-user-only'): Promise<Repo> =>
  Repo.create(join(base, `dst-${++n}`), { mode, disableFsync: true });

let src: Repo;
let srcPath: string;
let v1: string;
let v2: string;
let v3: string;
let other: string;
let key: GpgKey;

/** Path of a content object in a bare-user-only repository. */
const objectPath = (repo: string, checksum: string): string => join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.file`);

function run(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stderr }));
  });
}

beforeAll(async () => {
  key = generateKey('pull-local');
  srcPath = join(base, 'src');
  src = await Repo.create(srcPath, { mode: 'bare-user-only', disableFsync: true });
  makeTree(join(base, 't1'), { 'usr/lib/v': 'one\n', 'usr/share/doc/readme': 'hello\n' });
  v1 = await src.commit({ tree: join(base, 't1'), ref: 'os/main', subject: 'v1' });
  makeTree(join(base, 't2'), { 'usr/lib/v': 'two\n', 'usr/share/doc/readme': 'hello\n' });
  v2 = await src.commit({ tree: join(base, 't2'), ref: 'os/main', subject: 'v2' });
  makeTree(join(base, 't3'), { 'usr/lib/v': 'three\n', 'usr/share/doc/readme': 'hello\n' });
  v3 = await src.commit({ tree: join(base, 't3'), ref: 'os/main', subject: 'v3' });
  makeManyFiles(join(base, 'many'), 300);
  other = await src.commit({ tree: join(base, 'many'), ref: 'os/other', subject: 'many' });
  await src.setRef('os/old', v1);
  await src.signCommit(v3, { keyId: key.keyId, homedir: key.homedir });
});
afterAll(() => key?.dispose());

describe('pullLocal', () => {
  it('copies refs as local refs, hardlinking objects between repos of the same mode', async () => {
    const dst = await fresh();
    const r = await dst.pullLocal(srcPath, { refs: ['os/main'] });
    expect(r.refs).toEqual({ 'os/main': v3 });
    expect(await dst.resolve('os/main')).toBe(v3);
    expect((await dst.readFile('os/main', '/usr/lib/v')).toString()).toBe('three\n');
    const { results } = await dst.query('os/main', [{ op: 'stat', path: '/usr/share/doc/readme' }]);
    const csum = (results[0] as { checksum: string }).checksum;
    expect(statSync(objectPath(dst.path, csum)).ino).toBe(statSync(objectPath(srcPath, csum)).ino);
    expect((await dst.fsck()).ok).toBe(true);
    expect(r.progress.done).toBe(true);
    expect(r.progress.status).toMatch(/content objects imported/);
  });

  it('verifies checksums with untrusted: a corrupt source is refused, trusted copies it', async () => {
    const corrupt = join(base, 'corrupt-src');
    cpSync(srcPath, corrupt, { recursive: true });
    const { results } = await src.query('os/main', [{ op: 'stat', path: '/usr/lib/v' }]);
    // Same length, other bytes: only a checksum can tell.
    writeFileSync(objectPath(corrupt, (results[0] as { checksum: string }).checksum), 'THREE\n');
    const dst = await fresh();
    const e = (await dst.pullLocal(corrupt, { refs: ['os/main'], untrusted: true }).catch((x: unknown) => x)) as OstreeError;
    expect(e.code).toBe('CORRUPT');
    expect(await dst.listRefs()).toEqual({});
    const trusting = await fresh();
    await trusting.pullLocal(corrupt, { refs: ['os/main'] });
    expect((await trusting.fsck()).ok).toBe(false);
  });

  it('pulls every ref by default, and names them remote:ref with `remote`', async () => {
    const dst = await fresh();
    const all = await dst.pullLocal(srcPath);
    expect(all.refs).toEqual({ 'os/main': v3, 'os/old': v1, 'os/other': other });
    expect(await dst.listRefs()).toEqual({ 'os/main': v3, 'os/old': v1, 'os/other': other });
    const named = await fresh();
    await named.addRemote('upstream', { url: `file://${srcPath}`, gpgVerify: false });
    const r = await named.pullLocal(srcPath, { refs: ['os/main'], remote: 'upstream' });
    expect(r.refs).toEqual({ 'upstream:os/main': v3 });
    expect(await named.listRefs()).toEqual({ 'upstream:os/main': v3 });
  });

  it('honours depth: the head only by default, then more history', async () => {
    const dst = await fresh();
    await dst.pullLocal(srcPath, { refs: ['os/main'] });
    let log = await dst.log('os/main');
    expect(log.commits.map((c) => c.checksum)).toEqual([v3]);
    expect(log.truncated).toBe(true);
    await dst.pullLocal(srcPath, { refs: ['os/main'], depth: 1 });
    log = await dst.log('os/main');
    expect(log.commits.map((c) => c.checksum)).toEqual([v3, v2]);
    await dst.pullLocal(srcPath, { refs: ['os/main'], depth: -1 });
    log = await dst.log('os/main');
    expect(log.commits.map((c) => c.checksum)).toEqual([v3, v2, v1]);
    expect(log.truncated).toBe(false);
  });

  it('fetches only the commit object with commitOnly (a partial commit)', async () => {
    const dst = await fresh();
    await dst.pullLocal(srcPath, { refs: ['os/other'], commitOnly: true });
    expect((await dst.loadCommit('os/other')).partial).toBe(true);
    const e = await dst.readFile('os/other', '/d000/f00000').catch((x: unknown) => x);
    expect((e as OstreeError).code).toBe('NOT_FOUND');
    await dst.pullLocal(srcPath, { refs: ['os/other'] });
    expect((await dst.loadCommit('os/other')).partial).toBe(false);
    expect((await dst.readFile('os/other', '/d000/f00000')).toString()).toBe('file 0\n');
  });

  it('verifies GPG signatures against the keys of `remote` when asked', async () => {
    const dst = await fresh();
    await dst.addRemote('upstream', { url: `file://${srcPath}` });
    await dst.importRemoteKeys('upstream', key.publicKey);
    await dst.pullLocal(srcPath, { refs: ['os/main'], remote: 'upstream', gpgVerify: true });
    expect(await dst.resolve('upstream:os/main')).toBe(v3);
    const e = await dst.pullLocal(srcPath, { refs: ['os/other'], remote: 'upstream', gpgVerify: true }).catch((x: unknown) => x);
    expect((e as OstreeError).code).toBe('GPG_NO_SIGNATURE');
    expect(await dst.resolve('upstream:os/other', { allowMissing: true })).toBeNull();
    await expect(dst.pullLocal(srcPath, { gpgVerify: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('pulls nothing from a repository without refs, and refuses an empty refs list', async () => {
    const empty = await fresh();
    const dst = await fresh();
    const r = await dst.pullLocal(empty.path);
    expect(r.refs).toEqual({});
    expect(r.progress).toMatchObject({ done: true, fetched: 0 });
    await expect(dst.pullLocal(srcPath, { refs: [] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('reports a missing source and a missing ref with NOT_FOUND, naming them', async () => {
    const dst = await fresh();
    const e1 = (await dst.pullLocal(join(base, 'nowhere')).catch((x: unknown) => x)) as OstreeError;
    expect(e1.code).toBe('NOT_FOUND');
    expect(e1.message).toContain(join(base, 'nowhere'));
    const e2 = (await dst.pullLocal(srcPath, { refs: ['no/such'] }).catch((x: unknown) => x)) as OstreeError;
    expect(e2.code).toBe('NOT_FOUND');
    expect(e2.message).toContain('no/such');
    expect(await dst.listRefs()).toEqual({});
  });
});

describe('pull from file:// URLs', () => {
  it('pulls from a remote whose url is file:// (remote:ref) and from a bare file:// URL (local ref)', async () => {
    const dst = await fresh('bare-user');
    await dst.addRemote('disk', { url: `file://${srcPath}`, gpgVerify: false });
    const a = await dst.pull('disk', { refs: ['os/main'] });
    expect(a.refs).toEqual({ 'disk:os/main': v3 });
    const b = await dst.pull(`file://${srcPath}`, { refs: ['os/other'] });
    expect(b.refs).toEqual({ 'os/other': other });
    expect((await dst.readFile('os/other', '/d002/f00299')).toString()).toBe('file 299\n');
    expect((await dst.fsck()).ok).toBe(true);
  });

  it('pulls from a remote with an override URL and mirrors refs with mirror', async () => {
    const dst = await fresh();
    await dst.addRemote('elsewhere', { url: 'http://127.0.0.1:9/unused', gpgVerify: false });
    const r = await dst.pull('elsewhere', { refs: ['os/main'], url: `file://${srcPath}`, mirror: true });
    expect(r.refs).toEqual({ 'os/main': v3 });
    expect(await dst.listRefs()).toEqual({ 'os/main': v3 });
  });
});

describe('progress and concurrency', () => {
  it('delivers the final snapshot (done) before the Promise settles, then nothing', async () => {
    const dst = await fresh();
    const seen: PullProgress[] = [];
    let settled = false;
    const p = dst.pullLocal(srcPath, { refs: ['os/other'], onProgress: (s) => seen.push({ ...s, settledBefore: settled } as PullProgress) });
    const r = await p;
    settled = true;
    const count = seen.length;
    await new Promise((res) => setTimeout(res, 50));
    expect(seen.length).toBe(count);
    expect(count).toBeGreaterThan(0);
    const last = seen[count - 1]!;
    expect(last.done).toBe(true);
    expect((last as PullProgress & { settledBefore: boolean }).settledBefore).toBe(false);
    expect(seen.slice(0, -1).every((s) => !s.done)).toBe(true);
    expect(r.progress.done).toBe(true);
    expect(r.progress.elapsedMs).toBeGreaterThanOrEqual(last.elapsedMs);
  });

  it('a throwing onProgress rejects the pull with that error', async () => {
    const dst = await fresh();
    const boom = new Error('progress consumer failed');
    const e = await dst
      .pullLocal(srcPath, {
        refs: ['os/main'],
        onProgress: () => {
          throw boom;
        },
      })
      .catch((x: unknown) => x);
    expect(e).toBe(boom);
  });

  it('runs concurrent pulls into one repo: two from the same handle and an ostree CLI process', async () => {
    const dst = await fresh();
    await dst.addRemote('x', { url: `file://${srcPath}`, gpgVerify: false });
    const cli = run('ostree', [`--repo=${dst.path}`, 'pull-local', srcPath, 'os/old']);
    const [a, b] = await Promise.all([dst.pullLocal(srcPath, { refs: ['os/other'] }), dst.pullLocal(srcPath, { refs: ['os/main'], remote: 'x' })]);
    const c = await cli;
    expect(c.code, c.stderr).toBe(0);
    expect(a.refs).toEqual({ 'os/other': other });
    expect(b.refs).toEqual({ 'x:os/main': v3 });
    expect(await dst.listRefs()).toEqual({ 'os/old': v1, 'os/other': other, 'x:os/main': v3 });
    const fsck = await dst.fsck();
    expect(fsck.ok).toBe(true);
    expect(fsck.commitsChecked).toBe(3);
  });

  // What a pull leaves in objects/: every object file, and for each whether it is the source's
  // own inode (hardlinked) or a copy. Compared with the CLI's pull-local of the same refs.
  function objectsOf(repo: string, source: string): Record<string, string> {
    const out: Record<string, string> = {};
    const top = join(repo, 'objects');
    for (const d of readdirSync(top).sort()) {
      for (const f of readdirSync(join(top, d)).sort()) {
        const rel = `${d}/${f}`;
        const theirs = join(source, 'objects', rel);
        const st = lstatSync(join(top, rel));
        const linked = existsSync(theirs) && lstatSync(theirs).ino === st.ino;
        out[rel] = `${st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other'} ${linked ? 'linked' : 'copied'} ${st.mode & 0o7777}`;
      }
    }
    return out;
  }

  const modes = ['bare-user-only', 'bare-user', 'archive', ...(isRoot ? (['bare'] as const) : [])] as const;
  for (const mode of modes) {
    it(`leaves the same objects, links and refs as \`ostree pull-local\` (${mode} → ${mode})`, async () => {
      const from = join(base, `diff-src-${mode}`);
      const s = await Repo.create(from, { mode, disableFsync: true });
      const tree = join(base, `diff-tree-${mode}`);
      makeTree(tree, { 'usr/bin/tool': { file: '#!/bin/sh\n', mode: 0o755 }, 'usr/bin/rel': { symlink: 'tool' }, 'usr/lib/empty': '' });
      makeManyFiles(join(tree, 'usr/share/many'), 400);
      const c1 = await s.commit({ tree, ref: 'os/main', subject: 'one' });
      writeFileSync(join(tree, 'usr/lib/empty'), 'now full\n');
      const c2 = await s.commit({ tree, ref: 'os/main', subject: 'two' });
      s.close();
      for (const depth of [0, 1]) {
        const ours = join(base, `diff-ours-${mode}-${depth}`);
        const cli = join(base, `diff-cli-${mode}-${depth}`);
        const dst = await Repo.create(ours, { mode, disableFsync: true });
        const r = await dst.pullLocal(from, { refs: ['os/main'], depth });
        expect(r.refs).toEqual({ 'os/main': c2 });
        // The library linked the content objects itself (one file system, one mode, trusted).
        expect(r.progress.status).toMatch(/\b\d+ content objects linked before the pull/);
        ostreeOk(['init', `--repo=${cli}`, `--mode=${mode}`]);
        ostreeOk([`--repo=${cli}`, 'pull-local', '--disable-fsync', `--depth=${depth}`, from, 'os/main']);
        expect(objectsOf(ours, from)).toEqual(objectsOf(cli, from));
        expect((await dst.fsck()).ok).toBe(true);
        expect(await dst.listRefs()).toEqual({ 'os/main': c2 });
        if (depth === 1) expect((await dst.loadCommit(c1)).checksum).toBe(c1);
        dst.close();
      }
    });
  }

  for (const mode of ['bare-user', 'archive'] as const) {
    it(`copies between modes whose objects differ, as the CLI does (bare-user-only → ${mode})`, async () => {
      const dst = await fresh(mode);
      const r = await dst.pullLocal(srcPath, { refs: ['os/other'] });
      expect(r.progress.status).not.toMatch(/linked before the pull/);
      const cli = join(base, `cross-cli-${mode}`);
      ostreeOk(['init', `--repo=${cli}`, `--mode=${mode}`]);
      ostreeOk([`--repo=${cli}`, 'pull-local', '--disable-fsync', srcPath, 'os/other']);
      expect(objectsOf(dst.path, srcPath)).toEqual(objectsOf(cli, srcPath));
      expect((await dst.fsck()).ok).toBe(true);
      dst.close();
    });
  }

  it('copies instead of linking when the source is on another file system, as the CLI does', async () => {
    const from = join('/dev/shm', `osx-pl-${process.pid}`);
    try {
      const s = await Repo.create(from, { mode: 'bare-user-only', disableFsync: true });
      makeManyFiles(join(base, 'shm-tree'), 300);
      await s.commit({ tree: join(base, 'shm-tree'), ref: 'os/main' });
      s.close();
      const dst = await fresh();
      const r = await dst.pullLocal(from, { refs: ['os/main'] });
      expect(r.progress.status).not.toMatch(/linked before the pull/);
      const cli = join(base, 'shm-cli');
      ostreeOk(['init', `--repo=${cli}`, '--mode=bare-user-only']);
      ostreeOk([`--repo=${cli}`, 'pull-local', '--disable-fsync', from, 'os/main']);
      const o = objectsOf(dst.path, from);
      expect(o).toEqual(objectsOf(cli, from));
      expect(Object.values(o).every((v) => v.includes('copied'))).toBe(true);
      expect((await dst.fsck()).ok).toBe(true);
      dst.close();
    } finally {
      rmSync(from, { recursive: true, force: true });
    }
  });

  it('writes a local ref even when a remote ref of that name already points at the commit', async () => {
    const dst = await fresh();
    await dst.addRemote('x', { url: `file://${srcPath}`, gpgVerify: false });
    await dst.pullLocal(srcPath, { refs: ['os/main'], remote: 'x' });
    const r = await dst.pullLocal(srcPath, { refs: ['os/main'] });
    expect(r.refs).toEqual({ 'os/main': v3 });
    expect(await dst.listRefs()).toEqual({ 'os/main': v3, 'x:os/main': v3 });
  });
});
