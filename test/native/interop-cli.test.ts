// Interop with the real ostree CLI, both ways: what the binding writes the CLI reads (log,
// ls, cat, show, fsck), and what the CLI writes the binding reads (metadata types included).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo, variant } from '../../lib/index.js';
import { makeTree, snapshotTree, type TreeSpec } from '../helpers/fixtures.js';
import { ostree, ostreeOk, ostreeRepo, run } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-interop-');
const binary = randomBytes(300_000);
const SPEC: TreeSpec = {
  'usr/lib/os-release': 'ID=interop\nVERSION_ID=2\n',
  'usr/lib/data.bin': binary,
  'usr/bin/tool': { file: '#!/bin/sh\necho tool\n', mode: 0o755 },
  'usr/bin/alias': { symlink: 'tool' },
  'usr/share/abs-link': { symlink: '/usr/lib/os-release' },
  'usr/share/empty-dir': { dir: true },
  'usr/share/ünï файл.txt': 'unicode\n',
  'etc/empty': '',
};

/** `ostree cat` output as bytes (binary-safe). */
function cat(repo: string, rev: string, path: string): Buffer {
  const r = spawnSync('ostree', [`--repo=${repo}`, 'cat', rev, path], { maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`ostree cat ${path}: ${r.stderr.toString()}`);
  return r.stdout;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `ostree ls -R` parsed to path → "type perms uid gid size [-> target]". */
function lsR(repo: string, rev: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of ostreeRepo(repo, ['ls', '-R', rev]).split('\n').filter(Boolean)) {
    const m = /^([-dl])(\d{5}) (\d+) (\d+)\s+(\d+) (\/.*?)(?: -> (.*))?$/.exec(line);
    if (!m) throw new Error(`unexpected ostree ls line: ${line}`);
    out[m[6]!] = `${m[1]} ${m[2]} ${m[3]} ${m[4]} ${m[5]}${m[7] === undefined ? '' : ` -> ${m[7]}`}`;
  }
  return out;
}

/** What `ostree ls -R` must print for a directory committed to a bare-user-only repo. */
function expectedLs(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rel, e] of Object.entries(snapshotTree(dir))) {
    const path = rel === '.' ? '/' : `/${rel}`;
    if (e.type === 'dir') out[path] = `d ${e.mode!.toString(8).padStart(5, '0')} 0 0 0`;
    else if (e.type === 'symlink') out[path] = `l 00777 0 0 0 -> ${e.target}`;
    else out[path] = `- ${e.mode!.toString(8).padStart(5, '0')} 0 0 ${e.size}`;
  }
  return out;
}

describe('the CLI reads what the binding wrote', () => {
  const tree = join(base, 'tree');
  let repo: Repo;
  let first: string;
  let second: string;
  beforeAll(async () => {
    makeTree(tree, SPEC);
    repo = await Repo.create(join(base, 'repo-binding'), { disableFsync: true });
    first = await repo.commit({ tree, ref: 'interop/main', subject: 'first', timestamp: new Date('2020-05-06T07:08:09Z') });
    second = await repo.commit({
      tree,
      ref: 'interop/main',
      subject: 'Second commit',
      body: 'Body line one\nBody line two',
      version: '2.0.1',
      timestamp: new Date('2021-02-03T04:05:06Z'),
      metadata: {
        'ostree-sysext.name': 'demo',
        'ostree-sysext.list': ['x86-64', 'arm64'],
        'ostree-sysext.flag': true,
        'ostree-sysext.bytes': Buffer.from([1, 255]),
        'ostree-sysext.nested': { a: 'b' },
        'ostree-sysext.u32': variant('u', 7),
      },
    });
    return () => repo.close();
  });

  it('ostree log: subjects, bodies, version, dates and the parent chain', () => {
    const log = ostreeRepo(repo.path, ['log', 'interop/main']);
    const commits = [...log.matchAll(/^commit ([0-9a-f]{64})$/gm)].map((m) => m[1]);
    expect(commits).toEqual([second, first]);
    expect(log).toContain('Date:  2021-02-03 04:05:06 +0000');
    expect(log).toContain('Date:  2020-05-06 07:08:09 +0000');
    expect(log).toContain('Version: 2.0.1');
    expect(log).toMatch(/^ {4}Second commit$/m);
    expect(log).toMatch(/^ {4}Body line one$/m);
    expect(log).toMatch(/^ {4}Body line two$/m);
    expect(ostreeRepo(repo.path, ['rev-parse', 'interop/main^']).trim()).toBe(first);
  });

  it('ostree ls -R lists exactly the committed tree (types, modes, sizes, link targets)', () => {
    expect(lsR(repo.path, 'interop/main')).toEqual(expectedLs(tree));
  });

  it('ostree cat returns the exact bytes', () => {
    expect(sha(cat(repo.path, 'interop/main', '/usr/lib/data.bin'))).toBe(sha(binary));
    expect(cat(repo.path, 'interop/main', '/usr/share/ünï файл.txt').toString()).toBe('unicode\n');
    expect(cat(repo.path, 'interop/main', '/etc/empty').length).toBe(0);
  });

  it('ostree show --print-metadata-key prints each value with its type', () => {
    const show = (k: string) => ostreeRepo(repo.path, ['show', `--print-metadata-key=${k}`, 'interop/main']).trim();
    expect(show('version')).toBe("'2.0.1'");
    expect(show('ostree-sysext.name')).toBe("'demo'");
    expect(show('ostree-sysext.list')).toBe("['x86-64', 'arm64']");
    expect(show('ostree-sysext.flag')).toBe('true');
    expect(show('ostree-sysext.bytes')).toBe('[byte 0x01, 0xff]');
    expect(show('ostree-sysext.nested')).toBe("{'a': <'b'>}");
    // ostree show byte-swaps numbers on little-endian hosts (it assumes big-endian objects);
    // the same happens to a value `ostree commit --add-metadata=k='uint32 7'` wrote, below.
    expect(show('ostree-sysext.u32')).toMatch(/^uint32 (7|117440512)$/);
  });

  it('ostree show --print-detached-metadata-key reads detached metadata the binding wrote', async () => {
    await repo.writeDetachedMetadata(second, { 'ostree-sysext.note': 'detached' });
    expect(ostreeRepo(repo.path, ['show', '--print-detached-metadata-key=ostree-sysext.note', second]).trim()).toBe("'detached'");
  });

  it('ostree fsck passes, and ostree checkout gives the same tree', () => {
    expect(ostree([`--repo=${repo.path}`, 'fsck']).status).toBe(0);
    const dest = join(base, 'cli-checkout');
    ostreeRepo(repo.path, ['checkout', '-U', 'interop/main', dest]);
    expect(snapshotTree(dest)).toEqual(snapshotTree(tree));
  });
});

describe('the binding reads what the CLI wrote', () => {
  const tree = join(base, 'cli-tree');
  const tree2 = join(base, 'cli-tree-2');
  const repoPath = join(base, 'repo-cli');
  let c1: string;
  let c2: string;
  let c3: string;
  beforeAll(() => {
    makeTree(tree, SPEC);
    makeTree(tree2, { 'usr/lib/os-release': 'ID=interop\nVERSION_ID=3\n', 'usr/bin/new': { file: 'new\n', mode: 0o755 } });
    ostreeOk(['init', `--repo=${repoPath}`, '--mode=bare-user-only']);
    c1 = ostreeRepo(repoPath, ['commit', '--branch=cli/main', `--tree=dir=${tree}`, '--subject=from the CLI', '--timestamp=2020-01-02T03:04:05Z']).trim();
    c2 = ostreeRepo(repoPath, [
      'commit',
      '--branch=cli/main',
      `--tree=dir=${tree2}`,
      '--subject=Second',
      '--body=The body',
      '--add-metadata-string=version=3.0',
      '--add-metadata-string=ostree-sysext.name=cli',
      '--add-metadata=ostree-sysext.u32=uint32 7',
      '--add-metadata=ostree-sysext.i64=int64 -5',
      '--add-metadata=ostree-sysext.t64=uint64 18446744073709551615',
      "--add-metadata=ostree-sysext.list=['a', 'b']",
      "--add-metadata=ostree-sysext.nested={'k': <'v'>, 'n': <true>}",
      '--add-metadata=ostree-sysext.bytes=@ay [0x01, 0xff]',
      '--add-metadata=ostree-sysext.flag=true',
      '--add-metadata=ostree-sysext.double=2.5',
      '--timestamp=2021-06-07T08:09:10Z',
    ]).trim();
    const tar = join(base, 'cli.tar');
    run('tar', ['-cf', tar, '-C', tree2, '.']);
    c3 = ostreeRepo(repoPath, ['commit', '--branch=cli/tar', `--tree=tar=${tar}`, '--parent=none', '--subject=from tar']).trim();
  });

  it('loadCommit: subject, body, timestamp, parent, version and every metadata type', async () => {
    const repo = await Repo.open(repoPath);
    const got = await repo.loadCommit('cli/main');
    expect(got).toMatchObject({
      checksum: c2,
      subject: 'Second',
      body: 'The body',
      parent: c1,
      version: '3.0',
      detachedMetadata: null,
      partial: false,
    });
    expect(got.timestamp.toISOString()).toBe('2021-06-07T08:09:10.000Z');
    expect(got.metadata).toEqual({
      version: '3.0',
      'ostree-sysext.name': 'cli',
      'ostree-sysext.u32': 7,
      'ostree-sysext.i64': -5,
      'ostree-sysext.t64': 2n ** 64n - 1n,
      'ostree-sysext.list': ['a', 'b'],
      'ostree-sysext.nested': { k: 'v', n: true },
      'ostree-sysext.bytes': Buffer.from([1, 255]),
      'ostree-sysext.flag': true,
      'ostree-sysext.double': 2.5,
      'ostree.ref-binding': ['cli/main'], // added by ostree commit --branch
    });
    expect((await repo.loadCommit(c1)).timestamp.toISOString()).toBe('2020-01-02T03:04:05.000Z');
    repo.close();
  });

  it('the same typed value written by the binding is byte-identical (ostree show prints both alike)', async () => {
    const repo = await Repo.open(repoPath, { disableFsync: true });
    const mine = await repo.commit({ tree: tree2, metadata: { 'ostree-sysext.u32': variant('u', 7), 'ostree-sysext.i64': variant('x', -5) } });
    for (const k of ['ostree-sysext.u32', 'ostree-sysext.i64']) {
      const cli = ostreeRepo(repoPath, ['show', `--print-metadata-key=${k}`, c2]);
      const ours = ostreeRepo(repoPath, ['show', `--print-metadata-key=${k}`, mine]);
      expect(ours).toBe(cli);
    }
    repo.close();
  });

  it('log, refs, reads and checkout match the CLI’s commits', async () => {
    const repo = await Repo.open(repoPath);
    expect(await repo.listRefs()).toEqual({ 'cli/main': c2, 'cli/tar': c3 });
    expect((await repo.log('cli/main')).commits.map((c) => [c.checksum, c.subject])).toEqual([
      [c2, 'Second'],
      [c1, 'from the CLI'],
    ]);
    expect((await repo.loadCommit('cli/tar')).parent).toBeNull();
    expect((await repo.readFile(c1, '/usr/lib/data.bin')).equals(binary)).toBe(true);
    expect(await repo.readLink(c1, '/usr/share/abs-link')).toBe('/usr/lib/os-release');
    expect((await repo.readFile('cli/tar', '/usr/lib/os-release')).toString()).toBe('ID=interop\nVERSION_ID=3\n');
    expect((await repo.stat('cli/tar', '/usr/bin/new')).mode).toBe(0o100755);
    const dest = join(base, 'binding-checkout');
    await repo.checkout(c1, dest, { mode: 'user' });
    expect(snapshotTree(dest)).toEqual(snapshotTree(tree));
    expect((await repo.fsck()).ok).toBe(true);
    repo.close();
  });
});
