// The read batcher (lib/binding/batch.ts): async reads made together go to the native side in
// few hops, and every call still gets exactly its own answer or its own error — the same as
// its synchronous twin — whatever else was batched with it.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortError, isOstreeError, Repo, SYNC_READ_LIMIT } from '../../lib/index.js';
import { makeTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-read-batch-');

/** Records the size of every native queryBatch call on `repo` (an own property shadows the method). */
function countBatches(repo: Repo): number[] {
  const sizes: number[] = [];
  const n = repo._native as unknown as { queryBatch: (r: unknown[]) => Promise<unknown> };
  const orig = n.queryBatch.bind(n);
  Object.defineProperty(n, 'queryBatch', {
    value: (r: unknown[]) => {
      sizes.push(r.length);
      return orig(r);
    },
  });
  return sizes;
}

const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe('read batcher', () => {
  const path = join(base, 'repo');
  const commits: string[] = [];
  const big = Buffer.alloc(SYNC_READ_LIMIT * 3, 7);
  beforeAll(async () => {
    const repo = await Repo.create(path, { mode: 'bare-user-only', disableFsync: true });
    await repo.transaction(async (tx) => {
      for (let i = 0; i < 40; i++) {
        const tree = join(base, `t${i}`);
        makeTree(tree, {
          [`usr/lib/release.${i}`]: `N=${i}\n`,
          'usr/lib/link': { symlink: `release.${i}` },
          'usr/share/big': i === 0 ? big.toString('latin1') : 'small\n',
        });
        commits.push(await tx.commit({ tree, ref: `e/${i}`, subject: `s${i}` }));
      }
    });
    repo.close();
  });

  it('answers 600 calls made at once as their sync twins do, each error its own, in few batches', async () => {
    const repo = await Repo.open(path);
    const sizes = countBatches(repo);
    type Call = { async: () => Promise<unknown>; sync: () => unknown };
    const calls: Call[] = [];
    for (let k = 0; k < 50; k++) {
      const i = k % 40;
      const rev = `e/${i}`;
      calls.push(
        { async: () => repo.resolve(rev), sync: () => repo.resolveSync(rev) },
        { async: () => repo.resolve(`gone/${k}`, { allowMissing: true }), sync: () => repo.resolveSync(`gone/${k}`, { allowMissing: true }) },
        { async: () => repo.resolve(`gone/${k}`), sync: () => repo.resolveSync(`gone/${k}`) },
        { async: () => repo.loadCommit(rev), sync: () => repo.loadCommitSync(rev) },
        { async: () => repo.loadCommit('0'.repeat(64)), sync: () => repo.loadCommitSync('0'.repeat(64)) },
        { async: () => repo.readFile(rev, `/usr/lib/release.${i}`), sync: () => repo.readFileSync(rev, `/usr/lib/release.${i}`) },
        { async: () => repo.readFile(rev, '/usr/lib/nope'), sync: () => repo.readFileSync(rev, '/usr/lib/nope') },
        { async: () => repo.stat(rev, '/usr/lib/link'), sync: () => repo.statSync(rev, '/usr/lib/link') },
        { async: () => repo.listDir(rev, '/usr/lib'), sync: () => repo.listDirSync(rev, '/usr/lib') },
        { async: () => repo.readLink(rev, '/usr/lib/link'), sync: () => repo.readLinkSync(rev, '/usr/lib/link') },
        { async: () => repo.readLink(rev, `/usr/lib/release.${i}`), sync: () => repo.readLinkSync(rev, `/usr/lib/release.${i}`) },
        {
          async: () => repo.query(rev, [{ op: 'commit' }, { op: 'stat', path: '/x', optional: true }]),
          sync: () => repo.querySync(rev, [{ op: 'commit' }, { op: 'stat', path: '/x', optional: true }]),
        },
      );
    }
    const got = await Promise.all(calls.map((c) => settle(c.async())));
    let failures = 0;
    for (const [k, c] of calls.entries()) {
      const g = got[k]!;
      let want: { ok: true; value: unknown } | { ok: false; error: unknown };
      try {
        want = { ok: true, value: c.sync() };
      } catch (error) {
        want = { ok: false, error };
      }
      expect(g.ok, `call ${k}`).toBe(want.ok);
      if (g.ok && want.ok) expect(g.value, `call ${k}`).toEqual(want.value);
      if (!g.ok && !want.ok) {
        failures++;
        type E = { code?: string; domain?: string; gerrorCode?: number; message: string };
        const [a, b] = [g.error as E, want.error as E];
        expect([a.code, a.domain, a.gerrorCode], `call ${k}: ${a.message}`).toEqual([b.code, b.domain, b.gerrorCode]);
        // The same native message, after the operation each path names.
        expect(a.message.slice(a.message.indexOf(': ')), `call ${k}`).toBe(b.message.slice(b.message.indexOf(': ')));
      }
    }
    expect(failures).toBe(4 * 50); // a missing ref, commit and file, a readlink of a file: each its own
    // 600 calls: a batch holds at most 32, so at least 19; one hop per call would be 600.
    expect(sizes.reduce((s, n) => s + n, 0)).toBe(600);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32);
    expect(sizes.length).toBeLessThanOrEqual(40);
    repo.close();
  });

  it('a call made alone leaves alone, at once', async () => {
    const repo = await Repo.open(path);
    const sizes = countBatches(repo);
    for (let i = 0; i < 5; i++) expect(await repo.resolve(`e/${i}`)).toBe(commits[i]);
    expect(sizes).toEqual([1, 1, 1, 1, 1]);
    repo.close();
  });

  it('a file bigger than a batch reads is read alone, under the caller limit', async () => {
    const repo = await Repo.open(path);
    const sizes = countBatches(repo);
    const [whole, small, over, bounded] = await Promise.all([
      repo.readFile('e/0', '/usr/share/big'),
      repo.readFile('e/1', '/usr/share/big'),
      settle(repo.readFile('e/0', '/usr/share/big', { maxBytes: SYNC_READ_LIMIT * 2 })),
      settle(repo.readFile('e/0', '/usr/share/big', { maxBytes: 1000 })),
    ]);
    expect(whole.equals(big)).toBe(true);
    expect(small.toString()).toBe('small\n');
    expect(!over.ok && isOstreeError(over.error, 'TOO_LARGE')).toBe(true);
    expect(!over.ok && (over.error as Error).message).toMatch(new RegExp(`over the limit of ${SYNC_READ_LIMIT * 2}\\b`));
    expect(!bounded.ok && isOstreeError(bounded.error, 'TOO_LARGE')).toBe(true);
    expect(!bounded.ok && (bounded.error as Error).message).toMatch(/over the limit of 1000\b/);
    // Four calls through the batcher; the two over the cap were then read again outside it.
    expect(sizes.reduce((a, n) => a + n, 0)).toBe(4);
    repo.close();
  });

  it('an abort settles its own call at once, queued or sent; the rest are answered', async () => {
    const repo = await Repo.open(path);
    const before = new AbortController();
    before.abort();
    const early = await settle(repo.loadCommit('e/1', { signal: before.signal }));
    expect(!early.ok && early.error instanceof AbortError && (early.error as Error).message).toMatch(/aborted before it started/);
    const ac = new AbortController();
    const calls = Array.from({ length: 200 }, (_, k) => settle(repo.loadCommit(`e/${k % 40}`, k === 150 ? { signal: ac.signal } : {})));
    ac.abort(); // call 150 is still queued (the lanes are busy with the first calls)
    const got = await Promise.all(calls);
    for (const [k, g] of got.entries()) {
      if (k === 150) expect(!g.ok && g.error instanceof AbortError).toBe(true);
      else expect(g.ok && (g.value as { checksum: string }).checksum).toBe(commits[k % 40]);
    }
    repo.close();
  });

  it('close() sends what is queued first: those calls are answered, later ones are CLOSED', async () => {
    const repo = await Repo.open(path);
    const calls = Array.from({ length: 300 }, (_, k) => settle(repo.readFile(`e/${k % 40}`, `/usr/lib/release.${k % 40}`)));
    repo.close();
    const after = await settle(repo.resolve('e/1'));
    const got = await Promise.all(calls);
    for (const [k, g] of got.entries()) expect(g.ok && (g.value as Buffer).toString()).toBe(`N=${k % 40}\n`);
    expect(!after.ok && isOstreeError(after.error, 'CLOSED')).toBe(true);
    expect(!after.ok && (after.error as Error).message).toMatch(/resolve e\/1/);
  });
});
