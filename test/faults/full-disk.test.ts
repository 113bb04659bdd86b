// Full disk: repositories on a small tmpfs (mounted in a private mount namespace, gone when
// the script exits), written by a node child against dist/. A commit and a pull larger than
// the free space fail with OstreeError NO_SPACE, leave the repository consistent (fsck ok,
// old refs intact, no new ref), and succeed once a filler file is deleted.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { Repo } from '../../lib/binding/repo.js';
import { makeTree } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInPrivateMountNamespace } from '../helpers/sysext.js';
import { tempDir } from '../helpers/tmp.js';

const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');
const dir = tempDir('full-disk-');
const MB = 1024 * 1024;

// The child (node child.mjs DIST MNT BIG SMALL SRC): DIST dist, MNT tmpfs mount point, BIG/SMALL trees, SRC source repo (outside the tmpfs).
const CHILD = `
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const lib = await import(process.argv[2]);
const [mnt, big, small, src] = process.argv.slice(3);
const out = {};
async function freeBytes(p) {
  const { statfs } = await import('node:fs/promises');
  const s = await statfs(p);
  return s.bavail * s.bsize;
}
async function fillTo(path, leave) {
  writeFileSync(path, Buffer.alloc(Math.max(0, (await freeBytes(mnt)) - leave)));
}
async function state(repo) {
  const f = await repo.fsck();
  return { fsckOk: f.ok, missing: f.missing.length, corrupt: f.corrupt.length, refs: await repo.listRefs() };
}
const code = (e) => (e instanceof lib.OstreeError ? 'OstreeError:' + e.code : String(e && e.stack || e));
const messages = (out.messages = []);
const codeOf = (e) => (messages.push(String(e && e.message)), code(e));

// Commit.
{
  const repo = await lib.Repo.create(join(mnt, 'commit-repo'), { mode: 'bare-user-only' });
  const old = await repo.commit({ tree: small, ref: 'small', subject: 'small' });
  await fillTo(join(mnt, 'filler-commit'), 2 * 1024 * 1024);
  out.commitFree = await freeBytes(mnt);
  out.commitError = await repo.commit({ tree: big, ref: 'big', subject: 'big' }).then(() => null, codeOf);
  out.commitAfterError = await state(repo);
  out.commitOldRef = (await repo.resolve('small')) === old;
  rmSync(join(mnt, 'filler-commit'));
  out.commitRetry = await repo.commit({ tree: big, ref: 'big', subject: 'big' }).then(() => 'ok', code);
  out.commitAfterRetry = await state(repo);
  repo.close();
  rmSync(join(mnt, 'commit-repo'), { recursive: true });
}

// Commit with no reserve (min-free-space-percent=0): the file system itself runs out (ENOSPC).
{
  const created = await lib.Repo.create(join(mnt, 'enospc-repo'), { mode: 'bare-user-only' });
  await created.setConfig('core', 'min-free-space-percent', '0');
  created.close();
  // libostree reads the reserve when it opens the repo.
  const repo = await lib.Repo.open(join(mnt, 'enospc-repo'));
  const old = await repo.commit({ tree: small, ref: 'small', subject: 'small' });
  await fillTo(join(mnt, 'filler-enospc'), 2 * 1024 * 1024);
  out.enospcError = await repo.commit({ tree: big, ref: 'big', subject: 'big' }).then(() => null, codeOf);
  // Room for fsck's own scratch files.
  rmSync(join(mnt, 'filler-enospc'));
  out.enospcAfterError = await state(repo);
  out.enospcOldRef = (await repo.resolve('small')) === old;
  out.enospcRetry = await repo.commit({ tree: big, ref: 'big', subject: 'big' }).then(() => 'ok', code);
  out.enospcAfterRetry = await state(repo);
  repo.close();
  rmSync(join(mnt, 'enospc-repo'), { recursive: true });
}

// Pull (file:// source outside the tmpfs).
{
  const repo = await lib.Repo.create(join(mnt, 'pull-repo'), { mode: 'bare-user-only' });
  await repo.pullLocal(src, { refs: ['small'] });
  const old = await repo.resolve('small');
  await fillTo(join(mnt, 'filler-pull'), 2 * 1024 * 1024);
  out.pullFree = await freeBytes(mnt);
  out.pullError = await repo.pullLocal(src, { refs: ['big'] }).then(() => null, codeOf);
  out.pullAfterError = await state(repo);
  out.pullOldRef = (await repo.resolve('small')) === old;
  rmSync(join(mnt, 'filler-pull'));
  out.pullRetry = await repo.pullLocal(src, { refs: ['big'] }).then(() => 'ok', code);
  out.pullAfterRetry = await state(repo);
  repo.close();
}
process.stdout.write(JSON.stringify(out) + '\\n');
`;

describeAsRoot('full disk (tmpfs)', () => {
  const big = join(dir, 'big');
  const small = join(dir, 'small');
  const src = join(dir, 'src');
  const mnt = join(dir, 'mnt');

  beforeAll(async () => {
    // 12 MiB of incompressible data in 24 files, against 2 MiB left free.
    const spec: Record<string, Buffer> = {};
    for (let i = 0; i < 24; i++) spec[`usr/share/big/f${i}`] = randomBytes(MB / 2);
    makeTree(big, spec);
    makeTree(small, { 'usr/share/small/a': 'a\n' });
    mkdirSync(mnt);
    const r = await Repo.create(src, { mode: 'archive', disableFsync: true });
    await r.commit({ tree: small, ref: 'small', subject: 'small' });
    await r.commit({ tree: big, ref: 'big', subject: 'big' });
    r.close();
    writeFileSync(join(dir, 'child.mjs'), CHILD);
  }, 120_000);

  it('commit and pull fail with NO_SPACE, leave the repo intact, and succeed once space is freed', async () => {
    const run = await runInPrivateMountNamespace('mount -t tmpfs -o size=24m tmpfs "$2" && cd / && exec "$6" "$7" "$1" "$2" "$3" "$4" "$5"', {
      args: [dist, mnt, big, small, src, process.execPath, join(dir, 'child.mjs')],
      freshRun: false,
      timeoutMs: 300_000,
    });
    expect({ code: run.code, stderr: run.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    process.stdout.write(`full-disk: ${JSON.stringify(out)}\n`);
    const clean = { fsckOk: true, missing: 0, corrupt: 0 };
    expect(out.commitError).toBe('OstreeError:NO_SPACE');
    expect(out.commitAfterError).toMatchObject({ ...clean, refs: { small: expect.any(String) } });
    expect(Object.keys((out.commitAfterError as { refs: object }).refs)).toEqual(['small']);
    expect(out.commitOldRef).toBe(true);
    expect(out.commitRetry).toBe('ok');
    expect(out.commitAfterRetry).toMatchObject(clean);
    expect(Object.keys((out.commitAfterRetry as { refs: object }).refs).sort()).toEqual(['big', 'small']);
    expect(out.enospcError).toBe('OstreeError:NO_SPACE');
    expect(out.enospcAfterError).toMatchObject(clean);
    expect(Object.keys((out.enospcAfterError as { refs: object }).refs)).toEqual(['small']);
    expect(out.enospcOldRef).toBe(true);
    expect(out.enospcRetry).toBe('ok');
    expect(out.enospcAfterRetry).toMatchObject(clean);
    expect(out.pullError).toBe('OstreeError:NO_SPACE');
    expect(out.pullAfterError).toMatchObject(clean);
    expect(Object.keys((out.pullAfterError as { refs: object }).refs)).toEqual(['small']);
    expect(out.pullOldRef).toBe(true);
    expect(out.pullRetry).toBe('ok');
    expect(out.pullAfterRetry).toMatchObject(clean);
    expect(Object.keys((out.pullAfterRetry as { refs: object }).refs).sort()).toEqual(['big', 'small']);
  }, 400_000);
});
