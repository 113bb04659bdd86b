// Two processes at once (node children against dist/): set applies on one sysroot are
// serialized by the sysroot lock (wait: true waits, wait: false fails with LOCKED), and two
// pulls into one repository both succeed or one fails with a typed error; afterwards fsck is
// clean and the active set is complete. `remove` and `deploy` of one extension race as two
// CLI processes: one wins, the other is refused, and no set ever names a pruned commit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySet } from '../../lib/sets/activate.js';
import { baseFromDeployment } from '../../lib/extension/base.js';
import { DeploymentSet } from '../../lib/sets/deployment-set.js';
import { Repo } from '../../lib/binding/repo.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { Sysroot } from '../../lib/binding/sysroot.js';
import { makeManyFiles, makeTestSysroot, makeTree } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';
import { childEnv, fsckOk } from '../helpers/child.js';
import { removeTree } from '../helpers/tmp.js';

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
    await lib.applySet({ sysroot, repo: store.repo, osname: 'testos', set: b, wait: c === 'wait' });
  } else if (op === 'hold') {
    const sysroot = await lib.Sysroot.load(a);
    await sysroot.withLock(async () => {
      say('HELD');
      await new Promise((r) => process.stdin.once('data', r));
    });
  } else if (op === 'waiters') {
    // Six waits for a held lock at once, each aborting after b ms, while the libuv pool
    // (4 threads) serves other work (pbkdf2 runs there): waiting must take no thread and end
    // at the abort.
    const { pbkdf2 } = await import('node:crypto');
    const handles = await Promise.all([1, 2, 3, 4, 5, 6].map(() => lib.Sysroot.load(a)));
    const t0 = Date.now();
    const waits = handles.map((h) => h.withLock(async () => 'GOT', { wait: true, signal: AbortSignal.timeout(Number(b)) }).then((v) => v, (e) => e.name));
    await new Promise((r) => setTimeout(r, 50));
    const f0 = Date.now();
    await Promise.all(Array.from({ length: 16 }, () => new Promise((r, j) => pbkdf2('pw', 'salt', 1000, 32, 'sha256', (e) => (e ? j(e) : r())))));
    say('FS:' + (Date.now() - f0));
    const outcomes = await Promise.all(waits);
    say('WAITS:' + outcomes.join(',') + ':' + (Date.now() - t0));
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
  const proc = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dist, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv });
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
    setA = (await new DeploymentSet({ repo: store.repo, osname: 'testos', base }).add('alpha').commit()).record.commit;
    setB = (await new DeploymentSet({ repo: store.repo, osname: 'testos', base }).add('alpha').add('beta').commit()).record.commit;
    names[setA] = ['alpha'];
    names[setB] = ['alpha', 'beta'];
    await applySet({ sysroot, repo: store.repo, osname: 'testos', set: setA, wait: true });
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

  it('waiting for a held lock occupies no pool thread and ends when the signal aborts', async () => {
    const before = active();
    const holder = start(['hold', sysrootPath]);
    await holder.waitFor('HELD');
    try {
      const out = await start(['waiters', sysrootPath, '1500']).done;
      const fsMs = Number(/FS:(\d+)/.exec(out)?.[1]);
      const waits = /WAITS:([^:]*):(\d+)/.exec(out);
      process.stdout.write(`concurrency: 16 pool tasks during 6 lock waits took ${fsMs} ms; the waits ended after ${waits?.[2]} ms\n`);
      // Each of the six ended by its signal, none got the lock, and the pool kept serving other work
      // (with a blocking native wait, four waits would hold all four pool threads until release).
      expect(waits?.[1]).toBe('AbortError,AbortError,AbortError,AbortError,AbortError,AbortError');
      expect(fsMs).toBeLessThan(1000);
      expect(Number(waits?.[2])).toBeLessThan(10_000);
    } finally {
      holder.proc.stdin!.end('release\n');
      await holder.done;
    }
    expect(active()).toBe(before); // no waiter ever held the lock
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

// OSX_RACE_BIN: race another build of the command (e.g. an older commit, to see the test fail there).
const BIN = process.env.OSX_RACE_BIN ?? resolve(import.meta.dirname, '../../bin/ostree-sysext.js');

interface CliRun {
  code: number | null;
  stderr: string;
}

function cliRun(args: string[]): Promise<CliRun> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...childEnv, OSTREE_SYSEXT_DEBUG: '' } });
    let stderr = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('close', (code) => res({ code, stderr }));
  });
}

/** Every extension commit that any set of the sysroot names (current or in history), with whether it is still there. */
async function namedCommits(sysrootPath: string): Promise<Array<{ set: string; name: string; commit: string; present: boolean }>> {
  const r = await Repo.open(join(sysrootPath, 'ostree/repo'));
  try {
    const out = [];
    for (const head of Object.values(await r.listRefs({ prefix: 'ostree-sysext/set', remotes: false }))) {
      for (const c of (await r.log(head)).commits) {
        for (const [name, commit] of Object.entries((c.metadata['ostree-sysext.extensions'] ?? {}) as Record<string, string>)) {
          out.push({
            set: c.checksum,
            name,
            commit,
            present: await r.loadCommit(commit).then(
              () => true,
              () => false,
            ),
          });
        }
      }
    }
    return out;
  } finally {
    r.close();
  }
}

describeAsRoot('remove and deploy of the same extension at once (two CLI processes)', () => {
  let fixture: string;

  beforeAll(async () => {
    // alpha deployed; beta installed, in no set.
    fixture = join(dir, 'race-fixture');
    makeTestSysroot(fixture, { osname: 'testos', deployments: 1 });
    for (const name of ['alpha', 'beta']) {
      const p = join(dir, `race-src-${name}`);
      makeTree(p, { [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=_any\n', [`usr/share/${name}/a`]: `${name}\n` });
      makeManyFiles(join(p, 'usr/share', name, 'many'), 200);
      expect((await cliRun(['--sysroot', fixture, 'add', p])).code).toBe(0);
    }
    expect((await cliRun(['--sysroot', fixture, 'deploy', 'alpha'])).code).toBe(0);
  }, 180_000);

  it('one wins, the other is refused (exit 3, 4, or 5 without --wait); no set names a pruned commit; later deploys work', async () => {
    const tally: Record<string, number> = {};
    const TRIALS = 32;
    for (let t = 0; t < TRIALS; t++) {
      const sysroot = join(dir, `race-${t}`);
      expect(spawnSync('cp', ['-a', fixture, sysroot]).status).toBe(0);
      try {
        const wait = t % 2 === 0 ? ['--wait'] : [];
        const [rm, dep] = await Promise.all([
          cliRun(['--sysroot', sysroot, ...wait, 'remove', 'beta']),
          cliRun(['--sysroot', sysroot, ...wait, 'deploy', 'beta']),
        ]);
        const key = `${wait.length ? 'wait' : 'nowait'} remove=${rm.code} deploy=${dep.code}`;
        tally[key] = (tally[key] ?? 0) + 1;
        // Either order is fine; a refusal is typed: in the set (3), gone (4), or locked (5).
        // Never both: a remove after the deploy is refused (in the set), a deploy after the remove too (gone).
        const ok = (rm.code === 0 && [4, 5].includes(dep.code!)) || (dep.code === 0 && [3, 5].includes(rm.code!));
        expect(ok, `${key}\nremove: ${rm.stderr}\ndeploy: ${dep.stderr}`).toBe(true);
        const named = await namedCommits(sysroot);
        expect(
          named.filter((x) => !x.present),
          JSON.stringify(named),
        ).toEqual([]);
        await fsckOk(join(sysroot, 'ostree/repo'));
        // Later deploys work (the symptom was: every later deploy fails).
        const later = await cliRun(['--sysroot', sysroot, 'deploy', 'alpha']);
        expect(later.code, later.stderr).toBe(0);
      } finally {
        removeTree(sysroot);
      }
    }
    process.stdout.write(`concurrency: remove+deploy race, ${TRIALS} trials: ${JSON.stringify(tally)}\n`);
  }, 600_000);

  it('prune keeps every commit a set names: removed with --force, or only in the history, it can still be rolled back to', async () => {
    const sysroot = join(dir, 'keep');
    expect(spawnSync('cp', ['-a', fixture, sysroot]).status).toBe(0);
    try {
      const S = ['--sysroot', sysroot];
      // beta in a set of the history only: deploy, undeploy, then remove (allowed: not in the current set).
      expect((await cliRun([...S, 'deploy', 'beta'])).code).toBe(0);
      expect((await cliRun([...S, 'undeploy', 'beta'])).code).toBe(0);
      const rm = await cliRun([...S, 'remove', 'beta']);
      expect(rm.code, rm.stderr).toBe(0);
      // alpha in the current set, removed with --force.
      const forced = await cliRun([...S, '--force', 'remove', 'alpha']);
      expect(forced.code, forced.stderr).toBe(0);
      const named = await namedCommits(sysroot);
      expect(new Set(named.map((x) => x.name))).toEqual(new Set(['alpha', 'beta']));
      expect(named.filter((x) => !x.present)).toEqual([]);
      await fsckOk(join(sysroot, 'ostree/repo'));
      // The set with beta (the deploy) is still whole: roll back to it and apply it.
      const withBeta = named.find((x) => x.name === 'beta')!.set;
      const back = await cliRun([...S, 'rollback', withBeta]);
      expect(back.code, back.stderr).toBe(0);
      const staged = join(sysroot, 'run/extensions');
      expect(readdirSync(staged).sort()).toEqual(['alpha', 'beta']);
      expect(existsSync(join(staged, 'beta/usr/share/beta/a'))).toBe(true);
    } finally {
      removeTree(sysroot);
    }
  }, 180_000);
});
