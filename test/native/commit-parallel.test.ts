// Commits from a directory write their files from several threads (native/commit-walk.cc).
// The promise is "the same objects as libostree's own commit": each generated tree is
// committed by the library and by the real `ostree commit` with the matching flags, in every
// repository mode and with every commit option, and the content and root-metadata checksums
// must be equal (or both must refuse). `ostree fsck` then re-hashes every object the threads
// wrote. The attacks run the commit in a child process while another process swaps the
// tree's entries for symlinks to a secret, fifos and directories.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OstreeError, Repo, type CommitOptions, type RepoMode } from '../../lib/index.js';
import { childEnv } from '../helpers/child.js';
import { makeTree, type TreeSpec } from '../helpers/fixtures.js';
import { ostree } from '../helpers/ostree-cli.js';
import { isRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-commit-parallel-');
const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');
let n = 0;
const fresh = (what: string): string => join(base, `${what}-${++n}`);

/** mulberry32: a small seeded generator, so a failing tree can be made again from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FILE_MODES = [0o644, 0o755, 0o600, 0o640, 0o444, 0o700, 0o4755, 0o2755, 0o1644, 0o6711, 0o000];
const DIR_MODES = [0o755, 0o700, 0o1777, 0o2775, 0o555, 0o750];
const NAMES = ['a', 'bin', '.hidden', '...', 'with space', 'tab\there', 'ünïcödé', '日本語', 'x'.repeat(200), '-dash', 'UPPER', '#hash'];
// Around the 1 MiB line between files read into memory and files streamed.
const SIZES = [0, 1, 17, 4096, 65_537, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 2_500_000];

interface Generated {
  dir: string;
  /** Paths (as the commit's skip option takes them) that exist in the tree. */
  some: string[];
}

/** A random tree: nested directories, files of every mode and of sizes around the inline limit, symlinks, hardlinks, xattrs and (as root) owners. */
const generated = new Map<number, Generated>();
function generate(seed: number): Generated {
  const known = generated.get(seed);
  if (known) return known;
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const spec: TreeSpec = {};
  const files: string[] = [];
  const all: string[] = [];
  const dirs: string[] = [''];
  let count = 0;
  const budget = 150 + Math.floor(r() * 250);
  while (count < budget) {
    const parent = pick(dirs);
    const name = `${pick(NAMES)}${Math.floor(r() * 1000)}`;
    const rel = parent === '' ? name : `${parent}/${name}`;
    if (spec[rel] !== undefined || dirs.includes(rel)) continue;
    const kind = r();
    const xattrs = r() < 0.15 ? { 'user.k': `v${seed}-${count}`, ...(isRoot && r() < 0.5 ? { 'trusted.t': Buffer.from([0, 1, 255]) } : {}) } : undefined;
    if (kind < 0.2 && dirs.length < 60) {
      spec[rel] = { dir: true, mode: pick(DIR_MODES), xattrs };
      dirs.push(rel);
    } else if (kind < 0.35) {
      const targets = ['../x', '/usr/lib/os-release', 'dangling/nowhere', 'a/'.repeat(500) + 'end', 'ünï/ködé', '.'];
      spec[rel] = { symlink: pick(targets) };
    } else {
      const size = r() < 0.03 ? pick(SIZES.slice(4)) : r() < 0.3 ? pick(SIZES.slice(0, 4)) : Math.floor(r() * 20_000);
      const body = Buffer.alloc(size);
      for (let i = 0; i + 4 <= size; i += 4096) body.writeUInt32LE(Math.floor(r() * 0xffffffff), i);
      spec[rel] = { file: body, mode: pick(FILE_MODES), xattrs };
      files.push(rel);
    }
    all.push(rel);
    count++;
  }
  const dir = fresh(`tree-${seed}`);
  makeTree(dir, spec);
  // Hardlinks: the same inode under two names gives the same object twice, possibly at once.
  for (let i = 0; i < 5 && files.length > 1; i++) {
    const from = pick(files);
    const to = `${from}-hardlink${i}`;
    if (spec[to] === undefined) linkSync(join(dir, from), join(dir, to));
  }
  if (isRoot) for (const f of files.slice(0, 20)) chownSync(join(dir, f), 1000 + Math.floor(r() * 5000), 1000 + Math.floor(r() * 5000));
  // Distinct and none inside another (the CLI refuses a skip-list entry it never meets).
  const picked = [pick(all), pick(all), pick(dirs.length > 1 ? dirs.slice(1) : all)].map((p) => `/${p}`);
  const some = [...new Set(picked)].filter((p, _, xs) => !xs.some((q) => q !== p && p.startsWith(`${q}/`)));
  const g = { dir, some };
  generated.set(seed, g);
  return g;
}

interface Variant {
  name: string;
  lib: (g: Generated) => Partial<CommitOptions>;
  cli: (g: Generated, listFile: string) => string[];
}

const VARIANTS: Variant[] = [
  { name: 'no options', lib: () => ({}), cli: () => [] },
  { name: 'canonicalPermissions', lib: () => ({ canonicalPermissions: true }), cli: () => ['--canonical-permissions'] },
  { name: 'skipXattrs', lib: () => ({ skipXattrs: true }), cli: () => ['--no-xattrs'] },
  { name: 'owner', lib: () => ({ owner: { uid: 4321, gid: 8765 } }), cli: () => ['--owner-uid=4321', '--owner-gid=8765'] },
  {
    // The CLI refuses a non-zero owner with canonical permissions (its own rule), so: 0:0.
    name: 'owner 0:0 + canonicalPermissions',
    lib: () => ({ owner: { uid: 0, gid: 0 }, canonicalPermissions: true }),
    cli: () => ['--owner-uid=0', '--owner-gid=0', '--canonical-permissions'],
  },
  {
    name: 'skip',
    lib: (g) => ({ skip: g.some }),
    cli: (g, listFile) => {
      writeFileSync(listFile, g.some.join('\n') + '\n');
      return [`--skip-list=${listFile}`];
    },
  },
];

const MODES: RepoMode[] = isRoot ? ['bare', 'bare-user', 'bare-user-only', 'archive'] : ['bare-user', 'bare-user-only', 'archive'];
const SEEDS = [1, 2, 3, 4];

/** The root's dirtree and dirmeta checksums, as `ostree ls -d -C` prints them. */
function contentOf(repo: Repo, rev: string): string {
  const r = ostree([`--repo=${repo.path}`, 'ls', '-d', '-C', rev, '/']);
  if (r.status !== 0) throw new Error(r.stderr);
  const m = /\b([0-9a-f]{64}) ([0-9a-f]{64}) \/$/.exec(r.stdout.trim());
  if (!m) throw new Error(`unexpected ostree ls output: ${r.stdout}`);
  return `${m[1]} ${m[2]}`;
}

describe('parallel commit writes what `ostree commit` writes', () => {
  for (const mode of MODES) {
    it(`${mode}: ${SEEDS.length} generated trees × ${VARIANTS.length} option sets give the CLI's checksums, and ostree fsck passes`, async () => {
      const mine = await Repo.create(fresh(`lib-${mode}`), { mode, disableFsync: true });
      const theirs = fresh(`cli-${mode}`);
      expect(ostree(['init', `--repo=${theirs}`, `--mode=${mode}`]).status).toBe(0);
      const outcomes: string[] = [];
      try {
        for (const seed of SEEDS) {
          const g = generate(seed);
          for (const v of VARIANTS) {
            const what = `seed ${seed}, ${v.name}`;
            let lib: string;
            try {
              lib = contentOf(mine, await mine.commit({ tree: g.dir, subject: what, ...v.lib(g) }));
            } catch (e) {
              expect(e, what).toBeInstanceOf(OstreeError);
              lib = `refused`;
            }
            const cli = ostree([`--repo=${theirs}`, 'commit', '--orphan', '--fsync=false', '-s', what, `--tree=dir=${g.dir}`, ...v.cli(g, fresh('skip-list'))]);
            const expected = cli.status === 0 ? contentOf(mine, await importCommit(mine, theirs, cli.stdout.trim())) : 'refused';
            expect(lib, `${what}: ${cli.stderr}`).toBe(expected);
            outcomes.push(lib === 'refused' ? 'refused' : 'same');
          }
        }
        // Every object the threads wrote, hashed again by the reference implementation.
        const fsck = ostree([`--repo=${mine.path}`, 'fsck']);
        expect(fsck.status, fsck.stderr).toBe(0);
        // The comparison is only worth something if most commits succeeded.
        expect(outcomes.filter((o) => o === 'same').length).toBeGreaterThanOrEqual(outcomes.length - SEEDS.length);
      } finally {
        mine.close();
      }
    });
  }

  it('core.disable-xattrs in the repository config drops xattrs as libostree does (bare-user, CLI compared)', async () => {
    const t = fresh('xattr-tree');
    makeTree(t, { 'a.txt': { file: 'a', xattrs: { 'user.k': 'v' } }, sub: { dir: true, xattrs: { 'user.d': 'd' } }, 'sub/b': 'b' });
    const path = fresh('noxattr');
    (await Repo.create(path, { mode: 'bare-user', disableFsync: true })).close();
    const first = await Repo.open(path);
    const plain = contentOf(first, await first.commit({ tree: t }));
    first.close();
    expect(ostree([`--repo=${path}`, 'config', 'set', 'core.disable-xattrs', 'true']).status).toBe(0);
    const mine = await Repo.open(path);
    try {
      const withSetting = contentOf(mine, await mine.commit({ tree: t }));
      const cli = ostree([`--repo=${path}`, 'commit', '--orphan', `--tree=dir=${t}`]);
      expect(cli.status, cli.stderr).toBe(0);
      expect(withSetting).toBe(contentOf(mine, cli.stdout.trim()));
      expect(withSetting).not.toBe(plain); // the xattrs were there to drop
    } finally {
      mine.close();
    }
  });

  it('a fifo, a socket or a device in the tree is refused with the path and the kind (NOT_SUPPORTED), as libostree refuses it; nothing moves', async () => {
    const repo = await Repo.create(fresh('special'), { mode: 'bare-user-only', disableFsync: true });
    try {
      for (const [kind, make] of [
        ['a fifo', (p: string) => spawnSync('mkfifo', [p])],
        ['a socket', (p: string) => spawnSync('python3', ['-c', `import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])`, p])],
      ] as const) {
        const t = fresh('special-tree');
        makeTree(t, { 'usr/share/a.txt': 'a', 'usr/share/b.txt': 'b' });
        mkdirSync(join(t, 'usr/lib'));
        make(join(t, 'usr/lib/odd'));
        const err = await repo.commit({ tree: t, ref: 'special' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OstreeError);
        expect((err as OstreeError).code).toBe('NOT_SUPPORTED');
        expect((err as OstreeError).message).toContain(`/usr/lib/odd (${kind})`);
        expect(ostree(['commit', `--repo=${repo.path}`, '-b', 'cli', `--tree=dir=${t}`]).status).not.toBe(0);
      }
      expect(await repo.listRefs()).toEqual({});
    } finally {
      repo.close();
    }
  });

  it('a tree deeper than 2,048 levels is refused (INVALID_DATA), not walked until the stack ends', async () => {
    const repo = await Repo.create(fresh('deep'), { mode: 'bare-user-only', disableFsync: true });
    const t = fresh('deep-tree');
    try {
      mkdirSync(t);
      // Built with relative mkdir calls: the full path is far beyond PATH_MAX.
      const made = spawnSync('python3', ['-c', DEEP_MK, t], { encoding: 'utf8' });
      expect(made.stdout.trim()).toBe('2100');
      const err = await repo.commit({ tree: t }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OstreeError);
      expect((err as OstreeError).code).toBe('INVALID_DATA');
      expect((err as OstreeError).message).toMatch(/deeper than 2048 levels/);
    } finally {
      repo.close();
      // rm -r and fs.rm cannot take a path this long: climb out removing one level at a time.
      spawnSync('python3', ['-c', DEEP_RM, t]);
    }
  });
});

const DEEP_MK = `
import os, sys
os.chdir(sys.argv[1])
for i in range(2100):
    os.mkdir('d'); os.chdir('d')
open('f', 'w').write('x')
depth = 0
os.chdir(sys.argv[1])
while os.path.isdir('d'):
    os.chdir('d'); depth += 1
print(depth)
`;

const DEEP_RM = `
import os, sys
os.chdir(sys.argv[1]); depth = 0
while os.path.isdir('d'):
    os.chdir('d'); depth += 1
for f in os.listdir('.'): os.unlink(f)
for _ in range(depth):
    os.chdir('..'); os.rmdir('d')
`;

/** Pulls the CLI's commit into `repo` (so one handle reads both) and returns its checksum. */
async function importCommit(repo: Repo, from: string, checksum: string): Promise<string> {
  const r = ostree([`--repo=${repo.path}`, 'pull-local', from, checksum]);
  if (r.status !== 0) throw new Error(r.stderr);
  return checksum;
}

// The child: commits TREE into REPO and prints {ok, checksum} or {error, code}.
const CHILD = `
const [dist, repoPath, tree] = process.argv.slice(1);
const { Repo, OstreeError } = await import(dist);
const repo = await Repo.open(repoPath);
try {
  const checksum = await repo.commit({ tree, subject: 'raced' });
  process.stdout.write(JSON.stringify({ ok: true, checksum }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e && e.message), code: e instanceof OstreeError ? e.code : 'UNTYPED' }));
} finally {
  repo.close();
}
`;

// The swapper: for as long as it runs, replaces files with a symlink to the secret, a fifo,
// a directory holding a symlink to the secret, and back.
const SWAPPER = `
import os, sys, time
tree, secret = sys.argv[1], sys.argv[2]
victims = [os.path.join(tree, 'd%02d' % (i % 20), 'f%04d' % i) for i in range(0, 2000, 7)]
dirs = [os.path.join(tree, 'd%02d' % i) for i in range(0, 20, 3)]
k = 0
end = time.time() + 30
while time.time() < end:
    v = victims[k % len(victims)]
    try:
        os.rename(v, v + '.away')
        m = k % 3
        if m == 0: os.symlink(secret, v)
        elif m == 1: os.mkfifo(v)
        else:
            os.mkdir(v); os.symlink(secret, os.path.join(v, 'inside'))
        time.sleep(0.0005)
        if m == 2:
            os.unlink(os.path.join(v, 'inside')); os.rmdir(v)
        else:
            os.unlink(v)
        os.rename(v + '.away', v)
    except OSError:
        pass
    d = dirs[k % len(dirs)]
    try:
        os.rename(d, d + '.away'); os.symlink(os.path.dirname(secret), d)
        time.sleep(0.0005)
        os.unlink(d); os.rename(d + '.away', d)
    except OSError:
        pass
    k += 1
`;

describe('attack: the tree changes under a running commit', () => {
  it('entries swapped for symlinks to a secret, fifos and directories: every commit ends (no hang), typed, and never holds the secret', async () => {
    const SECRET = `TOP SECRET ${Math.random()}\n`;
    const secretDir = fresh('secret');
    mkdirSync(secretDir);
    writeFileSync(join(secretDir, 'secret.txt'), SECRET);
    const results: string[] = [];
    for (let round = 0; round < 6; round++) {
      const mode: RepoMode = (['bare-user-only', 'bare-user', 'archive'] as const)[round % 3];
      const tree = fresh('raced-tree');
      for (let i = 0; i < 2000; i++) {
        const d = join(tree, `d${String(i % 20).padStart(2, '0')}`);
        if (i < 20) mkdirSync(d, { recursive: true });
        writeFileSync(join(d, `f${String(i).padStart(4, '0')}`), `file ${i}\n`);
      }
      const repoPath = fresh(`raced-repo-${mode}`);
      (await Repo.create(repoPath, { mode, disableFsync: true })).close();
      const swapper = spawn('python3', ['-c', SWAPPER, tree, join(secretDir, 'secret.txt')], { stdio: 'ignore' });
      try {
        const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, dist, repoPath, tree], {
          env: childEnv,
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(child.signal, `round ${round}: the commit child was killed (hang or crash): ${child.stderr}`).toBeNull();
        expect(child.status, child.stderr).toBe(0);
        const out = JSON.parse(child.stdout) as { ok?: boolean; checksum?: string; code?: string; error?: string };
        if (!out.ok) {
          expect(out.code, out.error).not.toBe('UNTYPED');
          results.push(out.code!);
          continue;
        }
        results.push('ok');
        // Whatever got in must be the tree's own bytes: no file object holds the secret.
        const repo = await Repo.open(repoPath);
        try {
          const walk = async (dir: string): Promise<void> => {
            for (const e of await repo.listDir(out.checksum!, dir)) {
              const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
              if (e.type === 'dir') await walk(p);
              else if (e.type === 'file') expect((await repo.readFile(out.checksum!, p)).toString()).not.toBe(SECRET);
            }
          };
          await walk('/');
        } finally {
          repo.close();
        }
        const fsck = ostree([`--repo=${repoPath}`, 'fsck']);
        expect(fsck.status, fsck.stderr).toBe(0);
      } finally {
        swapper.kill('SIGKILL');
      }
    }
    process.stderr.write(`raced commits: ${results.join(', ')}\n`);
    expect(results.length).toBe(6);
  }, 240_000);
});
