// A mirror that serves one content object as an endless stream (the rest of the repository is
// genuine), pulled in a child process: the pull's byte budget (maxBytes) and the per-object
// budget (maxObjectBytes) cancel it promptly with TOO_LARGE, the client's disk does not fill,
// the server sees the connection closed, and an abort while the stream arrives ends the pull
// at once. Without the budgets the same pull would run until the disk is full.
import { randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/binding/repo.js';
import { makeTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { attack, REPORT } from './attack.js';

const dir = tempDir('remote-budget-');
const vendor = join(dir, 'vendor');
let server: Server;
let url = '';
let endlessPath = '';
let served = 0;
let openStreams = 0;

function largestObject(root: string): string {
  let best = { path: '', size: -1 };
  for (const sub of readdirSync(join(root, 'objects'))) {
    for (const f of readdirSync(join(root, 'objects', sub))) {
      const p = join(root, 'objects', sub, f);
      if (f.endsWith('.filez') && statSync(p).size > best.size) best = { path: `/objects/${sub}/${f}`, size: statSync(p).size };
    }
  }
  return best.path;
}

beforeAll(async () => {
  const tree = join(dir, 'tree');
  makeTree(tree, { 'usr/lib/extension-release.d/extension-release.big': 'ID=_any\n', 'usr/share/big/blob': randomBytes(256 * 1024) });
  const repo = await Repo.create(vendor, { mode: 'archive', disableFsync: true });
  await repo.commit({ tree, ref: 'ext/big', subject: 'big' });
  await repo.regenerateSummary();
  repo.close();
  endlessPath = largestObject(vendor);
  const chunk = randomBytes(64 * 1024);
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!));
    if (path === endlessPath) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      openStreams++;
      let open = true;
      res.on('close', () => {
        open = false;
        openStreams--;
      });
      const pump = () => {
        while (open) {
          served += chunk.length;
          if (!res.write(chunk)) break;
        }
        if (open) res.once('drain', pump);
      };
      pump();
      return;
    }
    const file = join(vendor, path);
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200);
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

// Child: args = [client repo, url, options JSON, abortAfterMs]. Reports the outcome, the time,
// and the bytes the client repository holds on disk afterwards.
const PULL = `${REPORT}
const { execFileSync } = await import('node:child_process');
const [path, url, optsJson, abortAfter, blockMs] = args;
const repo = await lib.Repo.create(path, { mode: 'bare-user-only', disableFsync: true });
await repo.addRemote('mirror', { url, gpgVerify: false });
const opts = JSON.parse(optsJson);
let abortedAt = null;
if (Number(abortAfter) > 0) {
  const ac = new AbortController();
  opts.signal = ac.signal;
  setTimeout(() => { abortedAt = performance.now(); ac.abort(); }, Number(abortAfter));
}
const t0 = performance.now();
let outcome;
const pulling = repo.pull('mirror', { refs: ['ext/big'], ...opts });
// A busy main thread (a loaded machine, a sanitizer): the budgets must not wait for it.
if (Number(blockMs) > 0) { const until = performance.now() + Number(blockMs); while (performance.now() < until) {} }
try { await pulling; outcome = { ok: true }; }
catch (e) { outcome = { ok: false, name: e.name, code: e.code ?? null, message: String(e.message) }; }
const t1 = performance.now();
outcome.ms = Math.round(t1 - t0);
outcome.afterAbortMs = abortedAt === null ? null : Math.round(t1 - abortedAt);
outcome.diskKb = Number(execFileSync('du', ['-sk', path], { encoding: 'utf8' }).split('\\t')[0]);
outcome.refs = await repo.listRefs();
console.log(JSON.stringify(outcome));
`;

interface Outcome {
  ok: boolean;
  name?: string;
  code?: string | null;
  message?: string;
  ms: number;
  afterAbortMs: number | null;
  diskKb: number;
  refs: Record<string, string>;
}

async function pullInChild(opts: Record<string, unknown>, abortAfterMs = 0, blockMainMs = 0): Promise<Outcome> {
  const args = [join(dir, `client-${randomBytes(4).toString('hex')}`), url, JSON.stringify(opts), String(abortAfterMs), String(blockMainMs)];
  const r = await attack(PULL, args, { timeoutMs: 90_000 });
  expect({ code: r.code, signal: r.signal }, r.stderr.slice(-1500)).toEqual({ code: 0, signal: null });
  return r.report as Outcome;
}

async function serverQuiet(): Promise<void> {
  // The stream is closed: nothing more is sent.
  const deadline = Date.now() + 5000;
  while (openStreams > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(openStreams).toBe(0);
  const before = served;
  await new Promise((r) => setTimeout(r, 300));
  expect(served).toBe(before);
}

describe('an endless object from a mirror', () => {
  it('the pull budget (maxBytes) cancels with TOO_LARGE, promptly, and nothing is left on disk', async () => {
    const start = served;
    const r = await pullInChild({ maxBytes: 32 * 1024 * 1024, maxObjectBytes: 0 });
    expect([r.ok, r.code]).toEqual([false, 'TOO_LARGE']);
    expect(r.message).toMatch(/maxBytes/);
    expect(r.ms).toBeLessThan(20_000);
    expect(r.diskKb).toBeLessThan(8 * 1024);
    expect(Object.keys(r.refs)).toEqual([]);
    await serverQuiet();
    // What the server pushed past the budget is bounded by one progress interval of arrival.
    expect(served - start).toBeLessThan(1024 * 1024 * 1024);
    process.stdout.write(`remote-budget: maxBytes pull ended after ${r.ms} ms, server sent ${((served - start) / 1048576).toFixed(1)} MiB\n`);
  });

  it('the per-object budget (maxObjectBytes) cancels with TOO_LARGE', async () => {
    const r = await pullInChild({ maxObjectBytes: 16 * 1024 * 1024 });
    expect([r.ok, r.code]).toEqual([false, 'TOO_LARGE']);
    expect(r.message).toMatch(/maxObjectBytes/);
    expect(r.ms).toBeLessThan(20_000);
    expect(r.diskKb).toBeLessThan(8 * 1024);
    await serverQuiet();
  });

  it('both budgets hold while the JS thread is busy: they are enforced on the pull thread', async () => {
    for (const [opts, name] of [
      [{ maxObjectBytes: 16 * 1024 * 1024 }, /maxObjectBytes/],
      [{ maxBytes: 32 * 1024 * 1024, maxObjectBytes: 0 }, /maxBytes/],
    ] as const) {
      const start = served;
      const r = await pullInChild(opts, 0, 3000);
      expect([r.ok, r.code]).toEqual([false, 'TOO_LARGE']);
      expect(r.message).toMatch(name);
      await serverQuiet();
      // Checked in JS, the budget waited for the 3 s block while the stream arrived at loopback
      // speed (GiBs); on the pull thread it trips within a progress tick or two.
      expect(served - start).toBeLessThan(512 * 1024 * 1024);
    }
  });

  it('an abort while the stream arrives ends the pull at once (AbortError), budgets off', async () => {
    const r = await pullInChild({ maxBytes: 0, maxObjectBytes: 0 }, 1500);
    expect([r.ok, r.name]).toEqual([false, 'AbortError']);
    expect(r.afterAbortMs).not.toBeNull();
    // Without the fix an endless stream held the pull for as long as it lasted (5-85 s seen);
    // on a loaded 2-core CI machine the abort took up to ~9 s, here well under 2.
    expect(r.afterAbortMs!).toBeLessThan(15_000);
    await serverQuiet();
  });

  it('installing through the store (remote builder) honours budgets recorded in its context', async () => {
    const body = `${REPORT}
const [path, url] = args;
const repo = await lib.Repo.create(path, { mode: 'bare-user-only', disableFsync: true });
await repo.addRemote('mirror', { url, gpgVerify: false });
const store = new lib.ExtensionStore(repo);
const t0 = performance.now();
const e = await store.build('remote', { remote: 'mirror', ref: 'ext/big', maxObjectBytes: 4 * 1048576 }).then(() => null, (x) => x);
console.log(JSON.stringify({ code: e?.code ?? null, message: String(e?.message), ms: Math.round(performance.now() - t0), names: await store.names() }));`;
    const r = await attack(body, [join(dir, `client-store-${randomBytes(4).toString('hex')}`), url], { timeoutMs: 90_000 });
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    expect(r.report).toMatchObject({ code: 'TOO_LARGE', names: [] });
    expect((r.report as { message: string }).message).toMatch(/maxObjectBytes \(4194304\)/);
    expect((r.report as { ms: number }).ms).toBeLessThan(20_000);
    await serverQuiet();
  });

  it('control: the genuine object pulls within the default budgets', async () => {
    const saved = endlessPath;
    endlessPath = '/nothing-is-endless';
    try {
      const r = await pullInChild({});
      expect(r.ok, r.message).toBe(true);
      expect(Object.keys(r.refs)).toEqual(['mirror:ext/big']);
    } finally {
      endlessPath = saved;
    }
  });
});
