// GC stress: a `node --expose-gc` child process (against dist/, as users run the library)
// drops Repo wrappers, Buffers and AbortSignals while native operations are in flight,
// forcing collections all along; closes repos mid-operation; and fires thousands of small
// concurrent calls. Nothing may crash, every Promise must settle (settled == started), and
// the child must exit 0 on its own (no handle left keeping the loop alive, none freed early).
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeManyFiles, makeTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { Repo } from '../../lib/binding/repo.js';
import { childEnv } from '../helpers/child.js';

const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');
const dir = tempDir('gc-stress-');
const CALLS = Number(process.env.OSX_GC_CALLS ?? 5000);

const CHILD = `
const lib = await import(process.argv[1]);
const [repoPath, tree, work, callsArg] = process.argv.slice(2);
const CALLS = Number(callsArg);
const gc = globalThis.gc;
if (typeof gc !== 'function') throw new Error('run with --expose-gc');
const stats = { started: 0, settled: 0, fulfilled: 0, codes: {} };
const track = (p) => {
  stats.started++;
  return Promise.resolve(p).then(
    () => { stats.settled++; stats.fulfilled++; },
    (e) => {
      stats.settled++;
      const c = (e && e.code) || (e && e.name) || String(e);
      stats.codes[c] = (stats.codes[c] || 0) + 1;
      if (!(e instanceof lib.OstreeError) && !(e && e.name === 'AbortError')) {
        stats.untyped = (stats.untyped || 0) + 1;
        stats.lastUntyped = String(e && e.stack || e).slice(0, 500);
      }
    },
  );
};
// Collections all along, from a timer (between callbacks) and inline (below).
const gcTimer = setInterval(() => gc(), 2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;

// 1. Wrappers dropped while operations are in flight: open, start, forget the Repo.
for (let round = 0; round < 30; round++) {
  const ps = [];
  for (let i = 0; i < 10; i++) {
    ps.push(track(lib.Repo.open(repoPath).then((r) => {
      const k = i % 5;
      if (k === 0) return r.loadCommit('src');
      if (k === 1) return r.readFile('src', 'd000/f00000');
      if (k === 2) return r.listRefs();
      if (k === 3) return r.checkout('src', work + '/drop-' + (n++));
      return r.query('src', [{ op: 'list', path: 'd001' }, { op: 'read', path: 'd001/f00100' }, { op: 'commit' }]);
    })));
    gc();
  }
  await Promise.all(ps);
  gc();
}

// 2. Buffers dropped in flight: metadata bytes and key material only referenced by the call.
{
  const r = await lib.Repo.open(repoPath);
  const ps = [];
  for (let i = 0; i < 40; i++) {
    ps.push(track(r.commit({ tree, subject: 'gc ' + i, metadata: { blob: new Uint8Array(64 * 1024).fill(i) } })));
    ps.push(track(r.readFile('src', 'd002/f00200').then((b) => { b = null; gc(); })));
    ps.push(track(r.importRemoteKeys('nosuch', Buffer.from('not a key ' + i))));
    gc();
  }
  await Promise.all(ps);
  r.close();
}

// 3. AbortSignals dropped in flight (some fire, some never do).
{
  const r = await lib.Repo.open(repoPath);
  const ps = [];
  for (let i = 0; i < 60; i++) {
    const signal = i % 3 === 0 ? AbortSignal.timeout(1 + (i % 7)) : new AbortController().signal;
    if (i % 2) ps.push(track(r.checkout('src', work + '/sig-' + (n++), { signal })));
    else ps.push(track(r.loadCommit('src', { signal })));
    gc();
  }
  await Promise.all(ps);
  r.close();
}

// 4. Repos closed mid-operation, after 0..20 ms.
for (let i = 0; i < 30; i++) {
  const r = await lib.Repo.open(repoPath);
  const ops = [
    track(r.checkout('src', work + '/closed-' + (n++))),
    track(r.commit({ tree, subject: 'closed ' + i })),
    track(r.fsck()),
    track(r.loadCommit('src')),
  ];
  await sleep(i % 21);
  r.close();
  gc();
  await Promise.all(ops);
  // Calls after close reject (CLOSED), they do not crash.
  await track(r.resolve('src'));
}

// 5. Thousands of small concurrent calls on one repo (and the wrapper dropped meanwhile).
{
  let r = await lib.Repo.open(repoPath);
  const ps = [];
  for (let i = 0; i < CALLS; i++) {
    const k = i % 4;
    if (k === 0) ps.push(track(r.resolve('src')));
    else if (k === 1) ps.push(track(r.loadCommit('src')));
    else if (k === 2) ps.push(track(r.query('src', [{ op: 'stat', path: 'd000/f0000' + (i % 10) }])));
    else ps.push(track(r.resolve('missing/' + i, { allowMissing: true })));
    if (i % 500 === 0) gc();
  }
  r = null;
  gc();
  await Promise.all(ps);
}

clearInterval(gcTimer);
gc();
process.stdout.write(JSON.stringify(stats) + '\\n');
if (stats.settled !== stats.started || stats.untyped) process.exitCode = 1;
`;

describe('GC stress (node --expose-gc, against dist)', () => {
  const repoPath = join(dir, 'repo');
  const tree = join(dir, 'tree');

  beforeAll(async () => {
    makeManyFiles(tree, 400);
    makeTree(join(tree, 'x'), { 'y/z': 'z\n' });
    const r = await Repo.create(repoPath, { mode: 'bare-user-only', disableFsync: true });
    await r.commit({ tree, ref: 'src', subject: 'src' });
    r.close();
  }, 60_000);

  it(`drops wrappers, buffers and signals in flight, closes mid-operation, ${CALLS} concurrent calls`, async () => {
    const work = join(dir, 'work');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(work);
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, dist, repoPath, tree, work, String(CALLS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Under scripts/test-asan.sh the child loads the instrumented addon: it needs the runtime first.
      env: childEnv,
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
    process.stdout.write(`gc-stress child: ${out.trim().split('\n').pop()}\n`);
    expect({ code, sig, err: err.slice(-2000) }).toEqual({ code: 0, sig: null, err: '' });
    const stats = JSON.parse(out.trim().split('\n').pop()!) as { started: number; settled: number; fulfilled: number; codes: Record<string, number> };
    process.stdout.write(`gc-stress: ${JSON.stringify(stats)}\n`);
    expect(stats.settled).toBe(stats.started);
    expect(stats.started).toBeGreaterThan(CALLS);
    // The repo survived all that.
    const r = await Repo.open(repoPath);
    expect((await r.fsck()).ok).toBe(true);
    r.close();
  }, 600_000);
});
