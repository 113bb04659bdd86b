// Drives native entry points many times for scripts/test-leak.sh (valgrind): create/open/close,
// commit, refs, reads, checkout, fsck, prune, errors (missing refs, bad paths). Imports dist/.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const lib = await import(resolve(import.meta.dirname, '../../dist/lib/index.js'));
const rounds = Number(process.env.OSX_LEAK_ROUNDS ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'osx-leak-'));
try {
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'usr/lib/extension-release.d'), { recursive: true });
  writeFileSync(join(tree, 'usr/lib/extension-release.d/extension-release.leak'), 'ID=_any\n');
  for (let i = 0; i < 20; i++) writeFileSync(join(tree, 'usr', `f${i}`), `file ${i}\n`);
  const repo = await lib.Repo.create(join(dir, 'repo'), { mode: 'bare-user-only', disableFsync: true });
  for (let i = 0; i < rounds; i++) {
    const c = await repo.commit({ tree, ref: 'leak/main', subject: `round ${i}`, metadata: { n: i } });
    await repo.resolve('leak/main');
    await repo.listRefs();
    await repo.loadCommit(c);
    await repo.log('leak/main', { maxCount: 3 });
    await repo.stat(c, '/usr/f1');
    await repo.listDir(c, '/usr');
    await repo.readFile(c, '/usr/f2');
    await repo.query(c, [{ op: 'read', path: '/usr/f3' }, { op: 'stat', path: '/nope', optional: true }]);
    await repo.checkout(c, join(dir, `co${i}`));
    await repo.resolve('missing/ref').catch(() => undefined);
    await repo.readFile(c, '/nope').catch(() => undefined);
    await repo.writeDetachedMetadata(c, { note: 'x' });
    const r2 = await lib.Repo.open(join(dir, 'repo'));
    r2.close();
    await lib.Repo.open(join(dir, 'nope')).catch(() => undefined);
    const ac = new AbortController();
    const p = repo.fsck({ signal: ac.signal }).catch(() => undefined);
    ac.abort();
    await p;
  }
  await repo.fsck();
  await repo.prune({ depth: 1 });
  repo.close();
  process.stdout.write(`leak driver: ${rounds} rounds done\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
