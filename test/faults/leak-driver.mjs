// Drives native entry points many times for scripts/test-leak.sh (valgrind): create/open/close,
// commit, refs, reads, checkout, fsck, prune, errors (missing refs, bad paths), pulls from
// file:// (plain, through a remote, with a summary and a static delta), remote ref listing,
// aborted transactions, a sysroot, and refusals of damaged objects. Imports dist/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

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
    await repo.query(c, [
      { op: 'read', path: '/usr/f3' },
      { op: 'stat', path: '/nope', optional: true },
    ]);
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

  // Publishing and pulls: an archive vendor repo with a summary and a static delta.
  const vendor = await lib.Repo.create(join(dir, 'vendor'), { mode: 'archive', disableFsync: true });
  const v1 = await vendor.commit({ tree, ref: 'vendor/main', subject: 'v1' });
  writeFileSync(join(tree, 'usr', 'changed'), 'v2\n');
  const v2 = await vendor.commit({ tree, ref: 'vendor/main', subject: 'v2' });
  await vendor.generateDelta({ from: v1, to: v2 });
  await vendor.regenerateSummary();
  await repo.addRemote('vendor', { url: pathToFileURL(join(dir, 'vendor')).href, gpgVerify: false, gpgVerifySummary: false });
  // A damaged copy of the vendor repository: a FIFO in place of a dirtree (refused, not hung).
  const broken = join(dir, 'broken');
  execFileSync('cp', ['-a', join(dir, 'vendor'), broken]);
  const bc = await lib.Repo.open(broken);
  const brokenCommit = await bc.resolve('vendor/main');
  bc.close();
  for (let i = 0; i < rounds; i++) {
    const client = await lib.Repo.create(join(dir, `client${i}`), { mode: 'bare-user-only', disableFsync: true });
    await client.pullLocal(join(dir, 'vendor'), { refs: ['vendor/main'], depth: 1 });
    client.close();
    await repo.listRemoteRefs('vendor');
    await repo.fetchRemoteSummary('vendor');
    await repo.pull('vendor', { refs: ['vendor/main'] });
    await repo.pull('vendor', { refs: ['vendor/nope'] }).catch(() => undefined);
    // An aborted transaction: the callback throws after writing a commit.
    await repo
      .transaction(async (tx) => {
        await tx.commit({ tree, subject: 'aborted' });
        throw new Error('abort');
      })
      .catch(() => undefined);
    await repo.verifyCommit(v2, { remote: 'vendor' }).catch(() => undefined);
    // Refusals of damaged objects go through the validators' error paths.
    await repo.readFile(v2, '/usr/' + 'n'.repeat(300)).catch(() => undefined);
    await repo.checkout('0'.repeat(64), join(dir, `bad${i}`)).catch(() => undefined);
  }
  // Damage one dirtree of the broken copy and read it through every walker.
  const b = await lib.Repo.open(broken);
  const listing = execFileSync('find', [join(broken, 'objects'), '-name', '*.dirtree'], { encoding: 'utf8' })
    .trim()
    .split('\n');
  unlinkSync(listing[0]);
  execFileSync('mkfifo', [listing[0]]);
  for (let i = 0; i < rounds; i++) {
    await b.fsck();
    await b.checkout(brokenCommit, join(dir, `broken-co${i}`)).catch(() => undefined);
    await b.prune({ noPrune: true }).catch(() => undefined);
    const other = await lib.Repo.create(join(dir, `from-broken${i}`), { mode: 'archive', disableFsync: true });
    await other.pullLocal(broken, { refs: ['vendor/main'] }).catch(() => undefined);
    other.close();
  }
  b.close();
  vendor.close();

  // A sysroot (ostree admin init-fs), loaded and reloaded.
  const sr = join(dir, 'sysroot');
  try {
    mkdirSync(sr);
    execFileSync('ostree', ['admin', 'init-fs', '--modern', sr], { stdio: 'ignore' });
    for (let i = 0; i < rounds; i++) {
      const s = await lib.Sysroot.load(sr);
      s.deployments();
      await s.reload?.();
    }
  } catch (e) {
    process.stdout.write(`leak driver: sysroot skipped (${e.message})\n`);
  }
  repo.close();
  process.stdout.write(`leak driver: ${rounds} rounds done\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
