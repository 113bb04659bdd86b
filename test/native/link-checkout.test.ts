// The library's own hardlink checkout (mkdir + linkat by checksum, where the repository's
// object files are the files) against libostree's checkout of the same commit: byte for byte,
// owners, modes, xattrs, and the same inodes (both link the repository's objects). The
// ostree CLI's checkout -H is the third witness.
import { execFileSync } from 'node:child_process';
import { chownSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { makeManyFiles, makeTree, readXattrs, snapshotTree } from '../helpers/fixtures.js';
import { isRoot } from '../helpers/root.js';
import { removeTree, tempDir } from '../helpers/tmp.js';

const dir = tempDir('link-checkout-');
afterAll(() => removeTree(dir));

function inodes(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (rel: string): void => {
    const st = lstatSync(join(root, rel));
    // Empty files are copies in both checkouts (libostree copies them): only linked files compare.
    if (st.isFile() && st.size > 0) out[rel] = st.ino;
    if (st.isDirectory()) for (const n of readdirSync(join(root, rel))) walk(rel === '' ? n : `${rel}/${n}`);
  };
  walk('');
  return out;
}

/**
 * What libostree's checkout decides per entry beyond content and mode: every directory's
 * mtime (libostree sets 0), and for each regular file whether it is a link to the object
 * (with the object's mtime) or a copy. Symlinks are made new by both, so their time is now.
 */
function times(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const st = lstatSync(rel === '' ? root : join(root, rel));
    if (st.isDirectory()) out[rel || '.'] = `dir mtime ${st.mtimeMs}`;
    else if (st.isFile()) out[rel] = st.nlink > 1 ? `link mtime ${st.mtimeMs}` : 'copy';
    if (st.isDirectory()) for (const n of readdirSync(join(root, rel))) walk(rel === '' ? n : `${rel}/${n}`);
  };
  walk('');
  return out;
}

function xattrsOf(root: string): Record<string, unknown> {
  const rels = Object.keys(snapshotTree(root)).filter((rel) => !lstatSync(rel === '.' ? root : join(root, rel)).isSymbolicLink());
  const all = readXattrs(rels.map((rel) => (rel === '.' ? root : join(root, rel))));
  return Object.fromEntries(rels.map((rel) => [rel, all[rel === '.' ? root : join(root, rel)]]));
}

const cases = [
  ...(isRoot ? [{ repoMode: 'bare' as const, mode: 'none' as const }] : []),
  { repoMode: 'bare-user' as const, mode: 'user' as const },
  { repoMode: 'bare-user-only' as const, mode: 'user' as const },
];

describe('hardlink checkout by the library', () => {
  for (const { repoMode, mode } of cases) {
    it(`${repoMode}, mode ${mode}: the same tree and inodes as libostree's checkout and the CLI's checkout -H`, async () => {
      const tree = join(dir, `tree-${repoMode}`);
      makeTree(tree, {
        'usr/bin/tool': { file: '#!/bin/sh\n', mode: 0o755 },
        'usr/bin/rel': { symlink: 'tool' },
        'usr/lib/empty': '',
        'usr/lib/x.conf': { file: 'x\n', xattrs: { 'user.tag': 'v' } },
        'usr/share/d': { dir: true, mode: 0o750, xattrs: { 'user.dir': 'd' } },
        'usr/share/d/sub/f': 'f\n',
        'usr/share/sticky': { dir: true, mode: 0o1777 },
      });
      makeManyFiles(join(tree, 'usr/share/many'), 300);
      if (isRoot) chownSync(join(tree, 'usr/share/d/sub/f'), 1000, 1001);
      const path = join(dir, `repo-${repoMode}`);
      const repo = await Repo.create(path, { mode: repoMode, disableFsync: true });
      try {
        const commit = await repo.commit({ tree, ref: 'main' });
        const ours = join(dir, `ours-${repoMode}`);
        const theirs = join(dir, `libostree-${repoMode}`);
        const cli = join(dir, `cli-${repoMode}`);
        await repo.checkout(commit, ours, { mode });
        // A subpath of '/' takes libostree's own checkout (same tree).
        await repo.checkout(commit, theirs, { mode, subpath: '/' });
        execFileSync('ostree', [`--repo=${path}`, 'checkout', '-H', ...(mode === 'user' ? ['-U'] : []), commit, cli]);
        const owners = isRoot && mode === 'none';
        expect(snapshotTree(ours, { owners })).toEqual(snapshotTree(theirs, { owners }));
        expect(snapshotTree(ours, { owners })).toEqual(snapshotTree(cli, { owners }));
        expect(inodes(ours)).toEqual(inodes(theirs));
        expect(xattrsOf(ours)).toEqual(xattrsOf(theirs));
        expect(times(ours)).toEqual(times(theirs));
        expect(times(ours)).toEqual(times(cli));
        expect(times(ours)['usr/lib/empty']).toBe('copy');
        // Really hardlinks into the repository (the empty file is a copy, as libostree makes it).
        expect(lstatSync(join(ours, 'usr/bin/tool')).nlink).toBeGreaterThan(1);
      } finally {
        repo.close();
      }
    });
  }

  it('refuses to copy when links are required and cannot be made (another file system)', async () => {
    const repo = await Repo.create(join(dir, 'repo-req'), { mode: 'bare-user', disableFsync: true });
    try {
      const tree = join(dir, 'tree-req');
      makeTree(tree, { 'a/f': 'f\n' });
      const commit = await repo.commit({ tree });
      // /dev/shm is a tmpfs: linkat from the repository fails with EXDEV.
      const target = join('/dev/shm', `osx-req-${process.pid}`);
      const e = await repo.checkout(commit, target, { mode: 'user', hardlinks: 'require' }).catch((x: unknown) => x);
      // The same typed error libostree's own checkout gives for it.
      const theirs = await repo.checkout(commit, `${target}-lib`, { mode: 'user', hardlinks: 'require', subpath: '/' }).catch((x: unknown) => x);
      expect((e as { code?: string }).code).toBe((theirs as { code?: string }).code);
      expect((e as { code?: string }).code).toBeTypeOf('string');
      await repo.checkout(commit, target, { mode: 'user' }); // allowed: copies
      expect(snapshotTree(target)).toEqual(snapshotTree(tree));
      removeTree(target);
    } finally {
      repo.close();
    }
  });
});
