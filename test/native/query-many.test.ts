// Repo.queryMany and the `commit` query op: many commits' reads in a few native calls, with
// the same answers as the one-at-a-time calls.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isOstreeError, Repo } from '../../lib/index.js';
import { makeTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-query-many-');

describe('queryMany', () => {
  let repo: Repo;
  const commits: string[] = [];
  beforeAll(async () => {
    repo = await Repo.create(join(base, 'repo'), { mode: 'bare-user-only', disableFsync: true });
    // 70 commits: more than one chunk, so the split and the reassembly are exercised.
    await repo.transaction(async (tx) => {
      for (let i = 0; i < 70; i++) {
        const tree = join(base, `t${i}`);
        makeTree(tree, { [`usr/lib/release.${i}`]: `N=${i}\n` });
        commits.push(await tx.commit({ tree, ref: `e/${i}`, subject: `s${i}`, version: `${i}.0`, metadata: { n: i } }));
      }
    });
    return () => repo.close();
  });

  it('answers every request in order, like query and loadCommit do one at a time', async () => {
    const answers = await repo.queryMany(
      commits.map((_, i) => ({
        rev: `e/${i}`,
        ops: [{ op: 'commit' as const }, { op: 'read' as const, path: `/usr/lib/release.${i}` }, { op: 'stat' as const, path: '/nope', optional: true }],
      })),
    );
    expect(answers).toHaveLength(70);
    for (const [i, a] of answers.entries()) {
      expect(a.commit).toBe(commits[i]);
      expect(a.results[0]).toEqual(await repo.loadCommit(commits[i]!));
      expect((a.results[0] as { subject: string }).subject).toBe(`s${i}`);
      expect((a.results[0] as { timestamp: Date }).timestamp).toBeInstanceOf(Date);
      expect((a.results[1] as Buffer).toString()).toBe(`N=${i}\n`);
      expect(a.results[2]).toBeNull();
    }
  });

  it('query takes the commit op too', async () => {
    const { results } = await repo.query('e/3', [{ op: 'commit' }]);
    expect(results[0]).toMatchObject({ checksum: commits[3], version: '3.0', metadata: { n: 3 } });
  });

  it('rejects with the failing rev named, and an empty batch is empty', async () => {
    const err = await repo
      .queryMany([
        { rev: 'e/1', ops: [] },
        { rev: 'missing/ref', ops: [{ op: 'commit' }] },
      ])
      .catch((e: unknown) => e);
    expect(isOstreeError(err, 'NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain('missing/ref');
    expect(await repo.queryMany([])).toEqual([]);
  });
});
