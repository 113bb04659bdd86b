// Sysroot: deployments of a sysroot built by the real `ostree admin` CLI (init-fs, os-init,
// deploy), read through the binding. Needs root (ostree admin deploy).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { OstreeError, Sysroot } from '../../lib/index.js';
import { makeTestSysroot, type TestSysroot } from '../helpers/fixtures.js';
import { ostreeOk } from '../helpers/ostree-cli.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-sysroot-');

describeAsRoot('Sysroot', () => {
  let s: TestSysroot;
  beforeAll(() => {
    s = makeTestSysroot(join(base, 'sysroot'), { osname: 'testos' });
  });

  it('lists both deployments, newest first, with every field', async () => {
    const sysroot = await Sysroot.load(s.path);
    expect(sysroot.path).toBe(s.path);
    const deps = sysroot.deployments();
    expect(deps).toHaveLength(2);
    expect(deps.map((d) => d.checksum)).toEqual([s.commits[1], s.commits[0]]);
    deps.forEach((d, i) => {
      expect(d).toMatchObject({ index: i, osname: 'testos', serial: 0, booted: false, staged: false, pinned: false, refspec: 'testos/stable' });
      expect(d.path).toBe(`ostree/deploy/testos/deploy/${d.checksum}.${d.serial}`);
      const root = sysroot.deploymentPath(d);
      expect(root).toBe(join(s.path, d.path));
      // The deployment root really is that commit's tree.
      expect(readFileSync(join(root, 'usr/lib/os-release'), 'utf8')).toContain(`VERSION_ID=${2 - i}`);
    });
    // The CLI agrees on the order.
    const status = ostreeOk(['admin', 'status', `--sysroot=${s.path}`]);
    const order = [...status.matchAll(/testos ([0-9a-f]{64})\.(\d+)/g)].map((m) => m[1]);
    expect(order).toEqual(deps.map((d) => d.checksum));
    sysroot.close();
  });

  it('bootedDeployment() is null: nothing here is the running system', async () => {
    const sysroot = await Sysroot.load(s.path);
    expect(sysroot.bootedDeployment()).toBeNull();
    sysroot.close();
  });

  it('repo() opens the sysroot’s repository', async () => {
    const sysroot = await Sysroot.load(s.path);
    const repo = await sysroot.repo();
    expect(repo.path).toBe(join(s.path, 'ostree', 'repo'));
    expect(await repo.resolve('testos/stable')).toBe(s.commits[1]);
    expect((await repo.loadCommit(s.commits[0]!)).version).toBe('1');
    expect((await repo.readFile('testos/stable', '/usr/lib/os-release')).toString()).toContain('VERSION_ID=2');
    repo.close();
    sysroot.close();
  });

  it('reload() sees a deployment made after loading; the same commit deployed again gets serial 1', async () => {
    const sysroot = await Sysroot.load(s.path);
    expect(sysroot.deployments()).toHaveLength(2);
    const third = s.commitOs('3');
    s.deploy(s.ref, { retain: true });
    expect(sysroot.deployments()).toHaveLength(2); // the loaded state, until reload
    await sysroot.reload();
    let deps = sysroot.deployments();
    expect(deps.map((d) => d.checksum)).toEqual([third, s.commits[1], s.commits[0]]);
    expect(existsSync(sysroot.deploymentPath(deps[0]!))).toBe(true);

    s.deploy(third, { retain: true });
    await sysroot.reload();
    deps = sysroot.deployments();
    expect(deps).toHaveLength(4);
    expect(deps.slice(0, 2).map((d) => [d.checksum, d.serial])).toEqual([
      [third, 1],
      [third, 0],
    ]);
    expect(deps[0]!.path.endsWith(`${third}.1`)).toBe(true);
    expect(deps[0]!.refspec).toBe(third); // deployed by checksum: that is its origin refspec
    sysroot.close();
  });

  it('a fresh load sees the same deployments as a reloaded handle', async () => {
    const a = await Sysroot.load(s.path);
    const b = await Sysroot.load(s.path);
    await b.reload();
    expect(a.deployments()).toEqual(b.deployments());
    a.close();
    b.close();
  });

  it('a non-modern sysroot (init-fs without --modern) works too', async () => {
    const old = makeTestSysroot(join(base, 'sysroot-classic'), { osname: 'classicos', modern: false, deployments: 1 });
    const sysroot = await Sysroot.load(old.path);
    expect(sysroot.deployments().map((d) => [d.osname, d.checksum])).toEqual([['classicos', old.commits[0]]]);
    sysroot.close();
  });

  it('a closed sysroot refuses calls with CLOSED', async () => {
    const sysroot = await Sysroot.load(s.path);
    sysroot.close();
    expect(() => sysroot.deployments()).toThrow(expect.objectContaining({ name: 'OstreeError', code: 'CLOSED' }));
    await expect(sysroot.reload()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('a directory that is no sysroot, or no directory at all, rejects with NOT_FOUND', async () => {
    const empty = join(base, 'not-a-sysroot');
    mkdirSync(empty);
    for (const p of [empty, join(base, 'missing')]) {
      const e = await Sysroot.load(p).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OstreeError);
      expect(e).toMatchObject({ code: 'NOT_FOUND' });
    }
  });
});
