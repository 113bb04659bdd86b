// SIGKILL at random points: a child process (node against dist/, as users run the library)
// commits, pulls (file://), checks out or applies a set, and is killed at a random moment
// after it announced the start. Afterwards the repo passes fsck, what is visible is exactly
// the old or the new state, and the same operation then succeeds.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeManyFiles, makeTestSysroot, makeTree, snapshotTree } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';
import { applySet } from '../../lib/activate.js';
import { baseFromDeployment } from '../../lib/base.js';
import { DeploymentSet } from '../../lib/deployment-set.js';
import { Repo } from '../../lib/repo.js';
import { ExtensionStore } from '../../lib/store.js';
import { Sysroot } from '../../lib/sysroot.js';

const KILLS = Number(process.env.OSX_KILL_POINTS ?? 20);
const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');
const dir = tempDir('kill-');

// The child: one operation, announced on stdout so the kill lands inside it.
const CHILD = `
const lib = await import(process.argv[1]);
const [op, a, b] = process.argv.slice(2);
if (op === 'commit') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  await repo.commit({ tree: b, ref: 'kill/commit', subject: 'x' });
} else if (op === 'pull') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  await repo.pullLocal(b, { refs: ['src'] });
} else if (op === 'checkout') {
  const repo = await lib.Repo.open(a);
  process.stdout.write('START\\n');
  await repo.checkout('src', b);
} else if (op === 'apply') {
  const sysroot = await lib.Sysroot.load(a);
  const repo = await sysroot.repo();
  const store = new lib.ExtensionStore(repo);
  process.stdout.write('START\\n');
  await lib.applySet({ sysroot, store, osname: 'testos', set: b, wait: true });
}
process.stdout.write('DONE\\n');
`;

interface Outcome {
  killed: boolean;
  output: string;
  /** Milliseconds from START to exit. */
  ms: number;
}

/** Runs the child; kills it `delayMs` after START (never, when negative). */
function runChild(args: string[], delayMs: number): Promise<Outcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dist, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = Date.now();
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (!out.includes('START') && (out + d).includes('START')) started = Date.now();
      out += d;
      if (delayMs >= 0 && out.includes('START') && !child.killed) {
        delayMs = -1;
        setTimeout(() => child.kill('SIGKILL'), Math.random() * Number(process.env.__delay ?? 0));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      const ms = Date.now() - started;
      if (sig === 'SIGKILL') resolvePromise({ killed: !out.includes('DONE'), output: out, ms });
      else if (code === 0) resolvePromise({ killed: false, output: out, ms });
      else reject(new Error(`child ${args[0]} failed (${code}): ${err}`));
    });
  });
}

/** Times one uninterrupted run, then kills `KILLS` runs uniformly within that duration. */
async function killLoop(name: string, args: () => string[], check: (o: Outcome, i: number) => Promise<void>, reset: () => Promise<void>): Promise<number> {
  // The window is the operation itself (START to exit), so kills land inside it.
  const duration = Math.max((await runChild(args(), -1)).ms - 20, 10);
  await reset();
  let killed = 0;
  for (let i = 0; i < KILLS; i++) {
    process.env.__delay = String(duration);
    const o = await runChild(args(), 1);
    if (o.killed) killed++;
    await check(o, i);
    await reset();
  }
  process.stdout.write(`kill ${name}: ${killed}/${KILLS} runs killed mid-operation (window ${duration} ms), all recovered\n`);
  return killed;
}

async function fsckOk(path: string): Promise<void> {
  const r = await Repo.open(path);
  try {
    const f = await r.fsck();
    expect(f.ok, JSON.stringify(f).slice(0, 500)).toBe(true);
  } finally {
    r.close();
  }
}

describe('SIGKILL during repository operations', () => {
  const src = join(dir, 'src-repo');
  const tree = join(dir, 'tree');
  let srcCommit: string;
  let reference: ReturnType<typeof snapshotTree>;

  beforeAll(async () => {
    makeManyFiles(tree, 1000);
    const r = await Repo.create(src, { mode: 'archive' });
    srcCommit = await r.commit({ tree, ref: 'src', subject: 'source' });
    r.close();
    reference = snapshotTree(tree);
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

  it('checkout', async () => {
    const repoPath = join(dir, 'co-repo');
    const r0 = await Repo.create(repoPath, { mode: 'bare-user-only' });
    await r0.pullLocal(src, { refs: ['src'] });
    r0.close();
    let n = 0;
    const dest = () => join(dir, `co-${n}`);
    const killed = await killLoop(
      'checkout',
      () => ['checkout', repoPath, dest()],
      async () => {
        await fsckOk(repoPath);
        // Absent, or complete: never a half-written destination.
        if (existsSync(dest())) expect(snapshotTree(dest())).toEqual(reference);
      },
      async () => {
        const { rmSync } = await import('node:fs');
        rmSync(dest(), { recursive: true, force: true });
        const out = await runChild(['checkout', repoPath, dest()], -1);
        expect(out.output).toContain('DONE');
        expect(snapshotTree(dest())).toEqual(reference);
        n++;
      },
    );
    expect(killed).toBeGreaterThan(KILLS / 2);
    // Leftover temporary siblings are the only trace of the kills.
    expect(readdirSync(dir).filter((e) => e.startsWith('co-')).length).toBe(n);
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
      makeManyFiles(join(p, 'usr/share', name, 'many'), 1500);
      await store.installFromDirectory(p);
    }
    const base = await baseFromDeployment(sysroot, sysroot.deployments()[0]!);
    const setA = (await new DeploymentSet({ store, osname: 'testos', base }).add('alpha').commit()).record;
    const setB = (await new DeploymentSet({ store, osname: 'testos', base }).add('alpha').add('beta').commit()).record;
    const names: Record<string, string[]> = { [setA.commit]: ['alpha'], [setB.commit]: ['alpha', 'beta'] };
    const runExt = join(s.path, 'run', 'extensions');
    const apply = (commit: string) => applySet({ sysroot, store, osname: 'testos', set: commit, wait: true });
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
        const target = readlinkSync(runExt);
        const m = /([0-9a-f]{64})\.0\/staged$/.exec(target);
        expect(m, target).not.toBeNull();
        const active = m![1]!;
        expect([setA.commit, setB.commit]).toContain(active);
        const staged = resolve(join(s.path, 'run'), target);
        expect(readdirSync(staged).sort()).toEqual(names[active]);
        for (const n of names[active]!) expect(existsSync(join(staged, n, 'usr/lib/extension-release.d', `extension-release.${n}`))).toBe(true);
      },
      async () => {
        // Repeating succeeds, then back to A for the next round.
        const r = await apply(setB.commit);
        expect(readlinkSync(runExt)).toContain(`${setB.commit}.0/staged`);
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
