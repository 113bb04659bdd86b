// Lifetimes: closing a repo with work in flight, and garbage collection (node --expose-gc in
// a child process, against dist/) while thousands of calls run: everything settles, nothing
// crashes, and dropped handles are really collected.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { OstreeError, Repo } from '../../lib/index.js';
import { makeManyFiles, makeTree } from '../helpers/fixtures.js';
import { run } from '../helpers/ostree-cli.js';
import { tempDir } from '../helpers/tmp.js';
import { childEnv } from '../helpers/child.js';

const base = tempDir('ostree-sysext-lifetime-');
let n = 0;
const fresh = (what: string): string => join(base, `${what}-${++n}`);

describe('close() with work in flight', () => {
  let tree: string;
  let path: string;
  let baseCommit: string;
  beforeAll(async () => {
    tree = makeManyFiles(join(base, 'tree'), 3000);
    path = join(base, 'repo');
    const repo = await Repo.create(path, { disableFsync: true });
    baseCommit = await repo.commit({ tree, ref: 'base' });
    repo.close();
  });

  // Close at several moments: before the first native call returns, and midway.
  for (const delayMs of [0, 1, 10, 100]) {
    it(`closing ${delayMs} ms after starting a commit, a checkout and an fsck: each settles correctly, the repo stays sound`, async () => {
      const repo = await Repo.open(path, { disableFsync: true });
      const ref = `closed/${delayMs}`;
      const dest = fresh('co');
      const commit = repo.commit({ tree, ref, subject: `closed after ${delayMs} ms` });
      const checkout = repo.checkout('base', dest);
      const fsck = repo.fsck();
      if (delayMs === 0) await Promise.resolve();
      else await new Promise((r) => setTimeout(r, delayMs));
      repo.close();
      expect(repo.closed).toBe(true);
      // Later calls are refused at once.
      await expect(repo.resolve('base')).rejects.toMatchObject({ code: 'CLOSED' });

      const settled = await Promise.race([
        Promise.allSettled([commit, checkout, fsck]),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('an in-flight call never settled')), 30_000)),
      ]);
      const other = await Repo.open(path, { disableFsync: true });
      // commit: done (ref moved to it) or refused with CLOSED (ref not created); nothing in between.
      const [c, co, f] = settled;
      if (c.status === 'fulfilled') {
        expect(await other.resolve(ref)).toBe(c.value);
      } else {
        expect(c.reason).toBeInstanceOf(OstreeError);
        expect((c.reason as OstreeError).code).toBe('CLOSED');
        expect(await other.resolve(ref, { allowMissing: true })).toBeNull();
      }
      // checkout: complete, or refused with nothing left behind.
      const leftovers = readdirSync(base).filter((e) => e.startsWith(`.${dest.split('/').pop()}.tmp-`));
      expect(leftovers).toEqual([]);
      if (co.status === 'fulfilled') {
        expect(readdirSync(join(dest, 'd029'))).toHaveLength(100);
      } else {
        expect((co.reason as OstreeError).code).toBe('CLOSED');
        expect(existsSync(dest)).toBe(false);
      }
      // fsck is one native call holding its own reference: it always finishes, with the right answer.
      expect(f.status).toBe('fulfilled');
      const fr = (f as PromiseFulfilledResult<Awaited<typeof fsck>>).value;
      expect(fr).toMatchObject({ ok: true, missing: [], corrupt: [] });
      expect(fr.objectsChecked).toBeGreaterThan(3000);
      // The repository is sound and writable through another handle (no lock left behind).
      const after = await other.commit({ tree, ref: `after/${delayMs}` });
      expect(await other.resolve(`after/${delayMs}`)).toBe(after);
      expect((await other.fsck()).ok).toBe(true);
      expect(await other.resolve('base')).toBe(baseCommit);
      other.close();
      console.log(`closed after ${delayMs} ms: commit ${c.status}, checkout ${co.status}, fsck ${f.status}`);
    });
  }

  it('close() is idempotent and a second handle on the same path is unaffected', async () => {
    const a = await Repo.open(path);
    const b = await Repo.open(path);
    a.close();
    a.close();
    expect(await b.resolve('base')).toBe(baseCommit);
    b.close();
  });
});

// Runs in a child `node --expose-gc` against dist/, as users import the package.
const GC_SCRIPT = String.raw`
const [distIndex, repoPath, expected] = process.argv.slice(1);
const { Repo, DevInoCache } = await import(distIndex);
const collected = { repos: 0 };
const registry = new FinalizationRegistry(() => { collected.repos++; });
const gcTimer = setInterval(() => globalThis.gc(), 2);
const summary = { started: 0, settled: 0, wrong: 0, unexpected: [], closedRejections: 0 };
function track(p, check) {
  summary.started++;
  return p.then(
    (v) => { summary.settled++; if (!check(v)) summary.wrong++; },
    (e) => { summary.settled++; if (e && e.code === 'CLOSED') summary.closedRejections++; else summary.unexpected.push(String(e && e.message)); },
  );
}

// 1. Thousands of concurrent small calls on handles nobody keeps.
async function burst(round) {
  const repo = await Repo.open(repoPath);
  registry.register(repo, round);
  const all = [];
  for (let i = 0; i < 1000; i++) {
    switch (i % 5) {
      case 0: all.push(track(repo.resolve('main'), (v) => /^[0-9a-f]{64}$/.test(v))); break;
      case 1: all.push(track(repo.readFile('main', '/d000/f00007'), (b) => b.toString() === expected)); break;
      case 2: all.push(track(repo.stat('main', '/d001'), (e) => e.type === 'dir')); break;
      case 3: all.push(track(repo.query('main', [{ op: 'list', path: '/d002' }, { op: 'read', path: '/missing', optional: true }]), (r) => r.results[0].length === 100 && r.results[1] === null)); break;
      case 4: all.push(track(repo.listRefs(), (r) => typeof r.main === 'string')); break;
    }
  }
  return all; // the repo itself goes out of scope here
}
let pending = [];
for (let round = 0; round < 5; round++) pending.push(...(await burst(round)));
await Promise.all(pending);

// 2. Close while 2,000 calls are in flight: they finish; calls after close are refused.
{
  const repo = await Repo.open(repoPath);
  const inflight = [];
  for (let i = 0; i < 2000; i++) inflight.push(track(repo.readFile('main', '/d000/f00007'), (b) => b.toString() === expected));
  repo.close();
  for (let i = 0; i < 100; i++) inflight.push(track(repo.resolve('main'), () => false));
  await Promise.all(inflight);
}

// 3. AbortControllers and a DevInoCache dropped while their calls run.
{
  const repo = await Repo.open(repoPath, { disableFsync: true });
  const calls = [];
  for (let i = 0; i < 500; i++) calls.push(track(repo.resolve('main', { signal: new AbortController().signal }), (v) => typeof v === 'string'));
  calls.push(track(repo.checkout('main', repoPath + '-co-' + process.pid, { devinoCache: new DevInoCache() }), () => true));
  await Promise.all(calls);
  repo.close();
}

// Let finalizers run: several collections with turns of the loop in between.
for (let i = 0; i < 20 && collected.repos < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
clearInterval(gcTimer);
summary.collectedRepos = collected.repos;
process.stdout.write(JSON.stringify(summary));
`;

describe('garbage collection while calls run (node --expose-gc child)', () => {
  it('every promise settles with the right value, nothing crashes, dropped handles are collected', async () => {
    const distIndex = resolve('dist/lib/index.js');
    if (!existsSync(distIndex)) run('npx', ['tsc', '-p', 'tsconfig.build.json']);
    const tree = fresh('gc-tree');
    makeTree(tree, {});
    makeManyFiles(tree, 300);
    const repoPath = fresh('gc-repo');
    const repo = await Repo.create(repoPath, { disableFsync: true });
    await repo.commit({ tree, ref: 'main' });
    repo.close();

    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', GC_SCRIPT, distIndex, repoPath, 'file 7\n'], {
      encoding: 'utf8',
      timeout: 90_000,
      env: childEnv,
    });
    expect(r.signal).toBeNull(); // no SIGSEGV/SIGABRT
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout) as {
      started: number;
      settled: number;
      wrong: number;
      unexpected: string[];
      closedRejections: number;
      collectedRepos: number;
    };
    console.log(
      `gc child: ${s.settled}/${s.started} settled, ${s.wrong} wrong, ${s.closedRejections} CLOSED after close(), ${s.collectedRepos}/5 dropped repos collected`,
    );
    expect(s.unexpected).toEqual([]);
    expect(s.settled).toBe(s.started);
    expect(s.started).toBe(5 * 1000 + 2000 + 100 + 501);
    expect(s.wrong).toBe(0);
    expect(s.closedRejections).toBe(100);
    expect(s.collectedRepos).toBe(5);
  });
});
