// SIGKILL at random points: a child process (node against dist/, as users run the library)
// commits, pulls (file://), checks out or applies a set, and is killed at a random moment
// after it announced the start. Afterwards the repo passes fsck, what is visible is exactly
// the old or the new state, and the same operation then succeeds.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeManyFiles, makeTestSysroot, makeTree, snapshotTree } from '../helpers/fixtures.js';
import { haveNginx, startNginx } from '../helpers/nginx.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';
import { applySet } from '../../lib/sets/activate.js';
import { baseFromDeployment } from '../../lib/extension/base.js';
import { DeploymentSet } from '../../lib/sets/deployment-set.js';
import { Repo } from '../../lib/binding/repo.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { Sysroot } from '../../lib/binding/sysroot.js';
import { childEnv, fsckOk } from '../helpers/child.js';

const KILLS = Number(process.env.OSX_KILL_POINTS ?? 20);
const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');
// Under scripts/test-asan.sh the children load the instrumented addon: the runtime goes first.
const dir = tempDir('kill-');

// The child: one operation, announced on stdout so the kill lands inside it.
const CHILD = `
const lib = await import(process.argv[1]);
const [op, a, b] = process.argv.slice(2);
let t0 = 0;
if (op === 'commit') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  t0 = performance.now();
  await repo.commit({ tree: b, ref: 'kill/commit', subject: 'x' });
} else if (op === 'pull') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  t0 = performance.now();
  await repo.pullLocal(b, { refs: ['src'] });
} else if (op === 'pull-http') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  t0 = performance.now();
  await repo.pull('origin', { refs: ['src'] });
} else if (op === 'checkout') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  t0 = performance.now();
  await repo.checkout('src', b);
} else if (op === 'apply') {
  const sysroot = await lib.Sysroot.load(a);
  const repo = await sysroot.repo();
  const store = new lib.ExtensionStore(repo);
  process.stdout.write('START\\n');
  t0 = performance.now();
  await lib.applySet({ sysroot, repo: store.repo, osname: 'testos', set: b, wait: true });
}
// The child's own measure of the operation (the parent's can lag behind under load).
process.stdout.write('DONE ' + (performance.now() - t0).toFixed(1) + '\\n');
`;

interface Outcome {
  killed: boolean;
  output: string;
  /** Milliseconds from START to DONE as the child measured them; null when DONE never came. */
  opMs: number | null;
}

/** Durations (START to DONE) of uninterrupted runs of the operation under test. */
let samples: number[] = [];
/** Records an uninterrupted duration of the current operation (runs inside `reset` too). */
function observe(ms: number | null): void {
  if (ms !== null) samples.push(ms);
}
/** The kill window: the median of the last uninterrupted durations (adapts to the load). */
function windowMs(): number {
  const last = samples.slice(-5).sort((a, b) => a - b);
  return last[Math.floor(last.length / 2)] ?? 100;
}

/**
 * Runs the child; kills it `delayMs` after START (never, when negative). A child that fails
 * before START is retried (twice): other test runs in the same tree rebuild dist/ (global
 * setup), and an import racing that rewrite fails with a SyntaxError.
 */
function runChild(args: string[], delayMs: number, attempt = 0): Promise<Outcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dist, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    let out = '';
    let err = '';
    let opMs: number | null = null;
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (!out.includes('START') && (out + d).includes('START')) {
        if (delayMs >= 0) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
      out += d;
      const done = /DONE ([\d.]+)\n/.exec(out);
      if (opMs === null && done) opMs = Number(done[1]);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (sig === 'SIGKILL') resolvePromise({ killed: !out.includes('DONE'), output: out, opMs });
      else if (code === 0) resolvePromise({ killed: false, output: out, opMs });
      else if (!out.includes('START') && attempt < 2) setTimeout(() => void runChild(args, delayMs, attempt + 1).then(resolvePromise, reject), 1000);
      else reject(new Error(`child ${args[0]} failed (${code}): ${err}`));
    });
  });
}

/**
 * Times uninterrupted runs, then kills `KILLS` runs at a uniformly random point within the
 * operation: between 5 % and 90 % of the median recent uninterrupted duration (START to
 * DONE, measured in this test, on this machine, under its current load; re-measured on
 * every uninterrupted run, so the window follows the load).
 */
async function killLoop(name: string, args: () => string[], check: (o: Outcome, i: number) => Promise<void>, reset: () => Promise<void>): Promise<number> {
  samples = [];
  for (let i = 0; i < 2; i++) {
    observe((await runChild(args(), -1)).opMs);
    await reset();
  }
  let killed = 0;
  const windows: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const w = windowMs();
    windows.push(w);
    const o = await runChild(args(), w * (0.05 + 0.85 * Math.random()));
    if (o.killed) killed++;
    else observe(o.opMs);
    await check(o, i);
    await reset();
  }
  windows.sort((a, b) => a - b);
  process.stdout.write(
    `kill ${name}: ${killed}/${KILLS} runs killed mid-operation (window ${Math.round(windows[0]!)}..${Math.round(windows[windows.length - 1]!)} ms), all recovered\n`,
  );
  return killed;
}

describe('SIGKILL during repository operations', () => {
  const src = join(dir, 'src-repo');
  const tree = join(dir, 'tree');
  let srcCommit: string;

  beforeAll(async () => {
    makeManyFiles(tree, 1000);
    const r = await Repo.create(src, { mode: 'archive' });
    srcCommit = await r.commit({ tree, ref: 'src', subject: 'source' });
    r.close();
  }, 120_000);

  it('commit', async () => {
    const path = join(dir, 'commit-repo');
    (await Repo.create(path, { mode: 'bare-user-only' })).close();
    let expected: string | null = null;
    const killed = await killLoop(
      'commit',
      () => ['commit', path, tree],
      async () => {
        await fsckOk(path);
        const r = await Repo.open(path);
        const ref = await r.resolve('kill/commit', { allowMissing: true });
        // The ref is the old value or a complete new commit whose tree is the source tree.
        if (ref !== null) expect((await r.loadCommit(ref)).partial).toBe(false);
        if (ref !== null && expected !== null) expect((await r.loadCommit(ref)).contentChecksum).toBe(expected);
        r.close();
      },
      async () => {
        // Repeating succeeds.
        const out = await runChild(['commit', path, tree], -1);
        expect(out.output).toContain('DONE');
        observe(out.opMs);
        const r = await Repo.open(path);
        expected ??= (await r.loadCommit('kill/commit')).contentChecksum;
        r.close();
      },
    );
    expect(killed).toBeGreaterThan(KILLS / 2);
  }, 600_000);

  it('pull from file://', async () => {
    const path = join(dir, 'pull-repo');
    (await Repo.create(path, { mode: 'bare-user-only' })).close();
    const killed = await killLoop(
      'pull',
      () => ['pull', path, src],
      async () => {
        await fsckOk(path);
        const r = await Repo.open(path);
        const ref = await r.resolve('src', { allowMissing: true });
        expect([null, srcCommit]).toContain(ref);
        r.close();
      },
      async () => {
        // Start from scratch each time, or the pull has nothing left to do; first repeat it.
        if (existsSync(path)) {
          const out = await runChild(['pull', path, src], -1);
          expect(out.output).toContain('DONE');
          await fsckOk(path);
          const r = await Repo.open(path);
          expect(await r.resolve('src')).toBe(srcCommit);
          r.close();
        }
        const { rmSync } = await import('node:fs');
        rmSync(path, { recursive: true, force: true });
        (await Repo.create(path, { mode: 'bare-user-only' })).close();
      },
    );
    expect(killed).toBeGreaterThan(KILLS / 2);
  }, 600_000);

  it.skipIf(!haveNginx)(
    'pull from nginx (http)',
    async () => {
      const server = await startNginx({ root: src });
      const path = join(dir, 'http-pull-repo');
      const fresh = async () => {
        const { rmSync } = await import('node:fs');
        rmSync(path, { recursive: true, force: true });
        const r = await Repo.create(path, { mode: 'bare-user-only' });
        await r.addRemote('origin', { url: server.url, gpgVerify: false });
        r.close();
      };
      try {
        await fresh();
        const killed = await killLoop(
          'pull-http',
          () => ['pull-http', path, ''],
          async () => {
            await fsckOk(path);
            const r = await Repo.open(path);
            expect([null, srcCommit]).toContain(await r.resolve('origin:src', { allowMissing: true }));
            r.close();
          },
          async () => {
            const out = await runChild(['pull-http', path, ''], -1);
            expect(out.output).toContain('DONE');
            await fsckOk(path);
            const r = await Repo.open(path);
            expect(await r.resolve('origin:src')).toBe(srcCommit);
            r.close();
            await fresh();
          },
        );
        expect(killed).toBeGreaterThan(KILLS / 2);
      } finally {
        await server.stop();
      }
    },
    600_000,
  );

  it('checkout', async () => {
    const repoPath = join(dir, 'co-repo');
    // A bigger tree than the others: a checkout of 1,000 small files takes ~50 ms, too short
    // to land kills inside it reliably.
    const bigTree = join(dir, 'big-tree');
    makeManyFiles(bigTree, 6000);
    const bigReference = snapshotTree(bigTree);
    const r0 = await Repo.create(repoPath, { mode: 'bare-user-only' });
    await r0.commit({ tree: bigTree, ref: 'src', subject: 'big' });
    r0.close();
    let n = 0;
    const dest = () => join(dir, `co-${n}`);
    const killed = await killLoop(
      'checkout',
      () => ['checkout', repoPath, dest()],
      async () => {
        await fsckOk(repoPath);
        // Absent, or complete: never a half-written destination.
        if (existsSync(dest())) expect(snapshotTree(dest())).toEqual(bigReference);
      },
      async () => {
        const { rmSync } = await import('node:fs');
        rmSync(dest(), { recursive: true, force: true });
        const out = await runChild(['checkout', repoPath, dest()], -1);
        expect(out.output).toContain('DONE');
        observe(out.opMs);
        expect(snapshotTree(dest())).toEqual(bigReference);
        n++;
      },
    );
    expect(killed).toBeGreaterThan(KILLS / 2);
    // Only complete checkouts are visible; hidden temporary siblings (`.co-N.tmp-…`) are the
    // only trace of the kills.
    expect(readdirSync(dir).filter((e) => /^co-\d+$/.test(e)).length).toBe(n);
    const leftovers = readdirSync(dir).filter((e) => /^\.co-\d+\.tmp-/.test(e)).length;
    expect(leftovers).toBeLessThanOrEqual(killed);
    process.stdout.write(`kill checkout: ${leftovers} temporary siblings left by the kills\n`);
  }, 600_000);
});

describeAsRoot('SIGKILL during applySet', () => {
  it('leaves the old or the new set active, complete', async () => {
    const s = makeTestSysroot(join(dir, 'sysroot'), { osname: 'testos', deployments: 1 });
    const sysroot = await Sysroot.load(s.path);
    const repo = await sysroot.repo();
    const store = new ExtensionStore(repo);
    for (const name of ['alpha', 'beta']) {
      const p = join(dir, `ext-${name}`);
      makeTree(p, { [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=_any\n', [`usr/share/${name}/data`]: `${name}\n` });
      makeManyFiles(join(p, 'usr/share', name, 'many'), 4000);
      await store.installFromDirectory(p);
    }
    const base = await baseFromDeployment(sysroot, sysroot.deployments()[0]!);
    const setA = (await new DeploymentSet({ repo: store.repo, osname: 'testos', base }).add('alpha').commit()).record;
    const setB = (await new DeploymentSet({ repo: store.repo, osname: 'testos', base }).add('alpha').add('beta').commit()).record;
    const names: Record<string, string[]> = { [setA.commit]: ['alpha'], [setB.commit]: ['alpha', 'beta'] };
    const runExt = join(s.path, 'run', 'extensions');
    const apply = (commit: string) => applySet({ sysroot, repo: store.repo, osname: 'testos', set: commit, wait: true });
    const cleanCheckouts = async () => {
      // Set checkouts of B are removed so every apply of B builds one again (the slow part).
      const { rmSync } = await import('node:fs');
      rmSync(join(s.path, 'ostree/deploy/testos/extensions', `${setB.commit}.0`), { recursive: true, force: true });
    };
    await apply(setA.commit);
    await cleanCheckouts();
    const killed = await killLoop(
      'applySet',
      () => ['apply', s.path, setB.commit],
      async () => {
        await fsckOk(repo.path);
        // run/extensions is fixed; run/ostree/extensions (switched by one rename) names the set.
        expect(readlinkSync(runExt)).toBe('ostree/extensions/staged');
        const target = readlinkSync(join(s.path, 'run', 'ostree', 'extensions'));
        const m = /([0-9a-f]{64})\.0$/.exec(target);
        expect(m, target).not.toBeNull();
        const active = m![1]!;
        expect([setA.commit, setB.commit]).toContain(active);
        const staged = resolve(join(s.path, 'run'), readlinkSync(runExt));
        expect(readdirSync(staged).sort()).toEqual(names[active]);
        for (const n of names[active]!) expect(existsSync(join(staged, n, 'usr/lib/extension-release.d', `extension-release.${n}`))).toBe(true);
      },
      async () => {
        // Repeating succeeds, then back to A for the next round.
        const r = await apply(setB.commit);
        expect(readlinkSync(join(s.path, 'run', 'ostree', 'extensions'))).toContain(`${setB.commit}.0`);
        expect(readdirSync(join(r.checkout, 'staged')).sort()).toEqual(['alpha', 'beta']);
        await apply(setA.commit);
        await cleanCheckouts();
      },
    );
    expect(killed).toBeGreaterThan(KILLS / 2);
    repo.close();
    writeFileSync(join(dir, 'done'), '');
  }, 900_000);
});
