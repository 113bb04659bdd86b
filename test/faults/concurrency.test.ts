// Two processes at once (node children against dist/): set applies on one sysroot are
// serialized by the sysroot lock (wait: true waits, wait: false fails with LOCKED), and two
// pulls into one repository both succeed or one fails with a typed error; afterwards fsck is
// clean and the active set is complete.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySet } from '../../lib/activate.js';
import { baseFromDeployment } from '../../lib/base.js';
import { DeploymentSet } from '../../lib/deployment-set.js';
import { Repo } from '../../lib/repo.js';
import { ExtensionStore } from '../../lib/store.js';
import { Sysroot } from '../../lib/sysroot.js';
import { makeManyFiles, makeTestSysroot, makeTree } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';
import { childEnv, fsckOk } from '../helpers/child.js';

const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');
// Under scripts/test-asan.sh the children load the instrumented addon: the runtime goes first.
const dir = tempDir('concurrency-');

const CHILD = `
const lib = await import(process.argv[1]);
const [op, a, b, c] = process.argv.slice(2);
const say = (s) => process.stdout.write(s + '\\n');
try {
  if (op === 'apply') {
    const sysroot = await lib.Sysroot.load(a);
    const store = new lib.ExtensionStore(await sysroot.repo());
    say('START');
    await lib.applySet({ sysroot, store, osname: 'testos', set: b, wait: c === 'wait' });
  } else if (op === 'hold') {
    const sysroot = await lib.Sysroot.load(a);
    await sysroot.withLock(async () => {
      say('HELD');
      await new Promise((r) => process.stdin.once('data', r));
    });
  } else if (op === 'pull') {
    const repo = await lib.Repo.open(a);
    say('START');
    await repo.pullLocal(b, { refs: ['src'] });
  }
  say('DONE');
} catch (e) {
  if (!(e instanceof lib.OstreeError)) throw e;
  say('ERR:' + e.code + ':' + e.message.replace(/\\n/g, ' '));
}
`;

interface Child {
  proc: ChildProcess;
  out: () => string;
  done: Promise<string>;
  waitFor: (text: string) => Promise<void>;
}

function start(args: string[]): Child {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dist, ...args], { stdio: ['pipe', 'pipe', 'pipe'] , env: childEnv });
  let out = '';
  let err = '';
  const waiters: Array<[string, () => void]> = [];
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const w of waiters.filter(([t]) => out.includes(t))) w[1]();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<string>((res, rej) =>
    proc.on('close', (code, sig) => (code === 0 ? res(out) : rej(new Error(`child ${args.join(' ')} exited ${code ?? sig}: ${err.slice(-2000)}`)))),
  );
  return {
    proc,
    out: () => out,
    done,
    waitFor: (text) => (out.includes(text) ? Promise.resolve() : new Promise((r) => waiters.push([text, r]))),
  };
}

/** DONE, or the OstreeError code. */
const outcome = (out: string): string => (out.includes('DONE') ? 'DONE' : (/ERR:([A-Z_]+)/.exec(out)?.[1] ?? `?${out}`));

describeAsRoot('two processes applying sets on one sysroot', () => {
  let sysrootPath: string;
  let repo: Repo;
  let store: ExtensionStore;
  let sysroot: Sysroot;
  let setA: string;
  let setB: string;
  const names: Record<string, string[]> = {};

  beforeAll(async () => {
    const s = makeTestSysroot(join(dir, 'sysroot'), { osname: 'testos', deployments: 1 });
    sysrootPath = s.path;
    sysroot = await Sysroot.load(s.path);
    repo = await sysroot.repo();
    store = new ExtensionStore(repo);
    for (const name of ['alpha', 'beta']) {
      const p = join(dir, `ext-${name}`);
      makeTree(p, { [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=_any\n' });
      makeManyFiles(join(p, 'usr/share', name, 'many'), 1500);
      await store.installFromDirectory(p);
    }
    const base = await baseFromDeployment(sysroot, sysroot.deployments()[0]!);
    setA = (await new DeploymentSet({ store, osname: 'testos', base }).add('alpha').commit()).record.commit;
    setB = (await new DeploymentSet({ store, osname: 'testos', base }).add('alpha').add('beta').commit()).record.commit;
    names[setA] = ['alpha'];
    names[setB] = ['alpha', 'beta'];
    await applySet({ sysroot, store, osname: 'testos', set: setA, wait: true });
  }, 180_000);

  afterAll(() => {
    repo?.close();
    sysroot?.close();
  });

  /** The active set: `run/ostree/extensions` points at a set of A or B whose staged dir, seen through `run/extensions`, is complete. */
  function active(): string {
    expect(readlinkSync(join(sysrootPath, 'run', 'extensions'))).toBe('ostree/extensions/staged');
    const target = readlinkSync(join(sysrootPath, 'run', 'ostree', 'extensions'));
    const m = /([0-9a-f]{64})\.0$/.exec(target);
    expect(m, target).not.toBeNull();
    const set = m![1]!;
    expect([setA, setB]).toContain(set);
    const staged = join(sysrootPath, 'run', 'extensions');
    expect(readdirSync(staged).sort()).toEqual(names[set]);
    for (const n of names[set]!) expect(existsSync(join(staged, n, 'usr/lib/extension-release.d', `extension-release.${n}`))).toBe(true);
    return set;
  }

  /** Removes the set checkouts (except the active one) so the next applies rebuild them (slow). */
  function cleanCheckouts(): void {
    const act = active();
    for (const s of [setA, setB]) if (s !== act) rmSync(join(sysrootPath, 'ostree/deploy/testos/extensions', `${s}.0`), { recursive: true, force: true });
  }

  it('a held lock: wait: false fails with LOCKED at once, wait: true waits for the holder', async () => {
    const holder = start(['hold', sysrootPath]);
    await holder.waitFor('HELD');
    const t0 = Date.now();
    const nowait = await start(['apply', sysrootPath, setB, 'nowait']).done;
    expect(outcome(nowait)).toBe('LOCKED');
    process.stdout.write(`concurrency: wait:false against a held lock -> LOCKED after ${Date.now() - t0} ms\n`);
    const waiter = start(['apply', sysrootPath, setB, 'wait']);
    await waiter.waitFor('START');
    await new Promise((r) => setTimeout(r, 1500));
    expect(waiter.out()).not.toContain('DONE');
    expect(active()).toBe(setA);
    holder.proc.stdin!.end('release\n');
    await holder.done;
    expect(outcome(await waiter.done)).toBe('DONE');
    expect(active()).toBe(setB);
    await fsckOk(repo.path);
  }, 120_000);

  it('two applies started together (wait: false): one may get LOCKED, never both fail, the active set is complete', async () => {
    const tally: Record<string, number> = {};
    for (let round = 0; round < 6; round++) {
      cleanCheckouts();
      const [x, y] = [start(['apply', sysrootPath, setA, 'nowait']), start(['apply', sysrootPath, setB, 'nowait'])];
      const results = [outcome(await x.done), outcome(await y.done)];
      for (const r of results) expect(['DONE', 'LOCKED']).toContain(r);
      expect(results).toContain('DONE');
      const key = results.join('+');
      tally[key] = (tally[key] ?? 0) + 1;
      const act = active();
      // The active set is one that was applied successfully.
      expect([results[0] === 'DONE' ? setA : null, results[1] === 'DONE' ? setB : null]).toContain(act);
      await fsckOk(repo.path);
    }
    process.stdout.write(`concurrency: wait:false pairs (A+B outcomes): ${JSON.stringify(tally)}\n`);
  }, 300_000);

  it('two applies started together (wait: true): both succeed, one after the other', async () => {
    for (let round = 0; round < 4; round++) {
      cleanCheckouts();
      const [x, y] = [start(['apply', sysrootPath, setA, 'wait']), start(['apply', sysrootPath, setB, 'wait'])];
      expect([outcome(await x.done), outcome(await y.done)]).toEqual(['DONE', 'DONE']);
      active();
      await fsckOk(repo.path);
    }
  }, 300_000);
});

describe('two processes pulling into one repository', () => {
  const src = join(dir, 'src-repo');
  let srcCommit: string;

  beforeAll(async () => {
    const tree = join(dir, 'pull-tree');
    makeManyFiles(tree, 3000);
    const r = await Repo.create(src, { mode: 'archive', disableFsync: true });
    srcCommit = await r.commit({ tree, ref: 'src', subject: 'src' });
    r.close();
  }, 120_000);

  it('both succeed or one fails with a typed error; fsck clean; a repeat pull completes', async () => {
    const tally: Record<string, number> = {};
    for (let round = 0; round < 4; round++) {
      const path = join(dir, `pull-${round}`);
      (await Repo.create(path, { mode: 'bare-user-only' })).close();
      const [x, y] = [start(['pull', path, src]), start(['pull', path, src])];
      const results = [outcome(await x.done), outcome(await y.done)];
      const key = [...results].sort().join('+');
      tally[key] = (tally[key] ?? 0) + 1;
      expect(results).toContain('DONE');
      for (const r of results) expect(r, r).toMatch(/^(DONE|LOCKED|TRANSACTION_IN_PROGRESS|EXISTS|BUSY)$/);
      await fsckOk(path);
      const r = await Repo.open(path);
      expect(await r.resolve('src')).toBe(srcCommit);
      await r.pullLocal(src, { refs: ['src'] });
      r.close();
      await fsckOk(path);
    }
    process.stdout.write(`concurrency: simultaneous pulls (outcomes): ${JSON.stringify(tally)}\n`);
  }, 300_000);
});
