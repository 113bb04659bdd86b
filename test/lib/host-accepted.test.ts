// Host's keepAcceptedWarnings: warnings the current set was accepted with (force) pass again,
// and no others; the rule is judged under the sysroot lock against the set current then, so a
// set committed by another process while this one waited for the lock is judged on its own.
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { baseFromDeployment } from '../../lib/extension/base.js';
import { DeploymentSet, SetRefusedError } from '../../lib/sets/deployment-set.js';
import { Host } from '../../lib/host/host.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { Sysroot } from '../../lib/binding/sysroot.js';
import { makeTestSysroot, makeTree, type TestSysroot } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('host-accepted-');

function extTree(name: string, files: Record<string, string>): string {
  const path = join(dir, `ext-${name}`);
  makeTree(path, { [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=_any\n', ...files });
  return path;
}

describeAsRoot('Host keepAcceptedWarnings', () => {
  let s: TestSysroot;
  let sysroot: Sysroot;
  let store: ExtensionStore;
  let host: Host;

  beforeAll(async () => {
    s = makeTestSysroot(join(dir, 'sysroot'), {
      osname: 'testos',
      deployments: 1,
      tree: { extra: { run: { dir: true }, 'usr/share/base/file': 'from base\n' } },
    });
    sysroot = await Sysroot.load(s.path);
    store = new ExtensionStore(await sysroot.repo({ disableFsync: true }));
    // shadow and clash replace a file of the base (file-conflicts warns); epsilon is clean;
    // twin ships a file epsilon ships too (a different warning).
    await store.installFromDirectory(extTree('shadow', { 'usr/share/base/file': 'shadowed\n' }));
    await store.installFromDirectory(extTree('clash', { 'usr/share/base/file': 'clash\n' }));
    await store.installFromDirectory(extTree('epsilon', { 'usr/share/e/f': 'e\n' }));
    await store.installFromDirectory(extTree('twin', { 'usr/share/e/f': 'twin\n' }));
    host = new Host({ sysroot, store, osname: 'testos' });
    return () => sysroot.close();
  });

  it('passes exactly the warnings accepted before, names them, and refuses new ones', async () => {
    // Without force or an accepted set: refused.
    await expect(host.deploy(['shadow'], { keepAcceptedWarnings: true })).rejects.toBeInstanceOf(SetRefusedError);
    const forced = await host.deploy(['shadow'], { force: true });
    expect(forced.set.votes?.forced).toBe(true);
    expect(forced.acceptedBefore).toEqual([]);

    // Adding a clean member: the shadow warning passes again, and is named.
    const added = await host.deploy(['epsilon'], { keepAcceptedWarnings: true });
    expect(added.committed).toBe(true);
    expect(added.acceptedBefore.map((v) => v.plugin)).toEqual(['file-conflicts']);
    expect(added.acceptedBefore[0]!.message).toMatch(/\/usr\/share\/base\/file/);
    // Without the option the same kind of change is refused: the rule is what lets it pass.
    await expect(host.undeploy(['epsilon'])).rejects.toBeInstanceOf(SetRefusedError);

    // A warning never accepted (twin over epsilon's file) is refused, and nothing changes.
    const before = (await DeploymentSet.current(store.repo, 'testos'))!.commit;
    const err = await host.deploy(['twin'], { keepAcceptedWarnings: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SetRefusedError);
    expect((err as SetRefusedError).report.votes.some((v) => v.verdict === 'warn' && /\/usr\/share\/e\/f/.test(v.message))).toBe(true);
    expect((await DeploymentSet.current(store.repo, 'testos'))!.commit).toBe(before);
  });

  it('judges against the set current when it gets the lock, not when it was called', async () => {
    // Current: a forced set accepting the warning about /usr/share/base/file.
    await host.deploy(['shadow'], { force: true });
    expect((await DeploymentSet.current(store.repo, 'testos'))!.votes?.forced).toBe(true);
    // Another process holds the lock and commits a set without shadow, unforced (the person
    // took the accepted warning back), while this host's `deploy shadow` waits for the lock.
    const other = await Sysroot.load(s.path);
    const otherStore = new ExtensionStore(await other.repo({ disableFsync: true }));
    let waiting: Promise<unknown> | undefined;
    try {
      await other.withLock(async () => {
        waiting = host.deploy(['shadow'], { keepAcceptedWarnings: true, wait: true }).then(
          (r) => r,
          (e: unknown) => e,
        );
        await new Promise((r) => setTimeout(r, 300)); // the call is now blocked on the lock
        const base = await baseFromDeployment(other, other.deployments()[0]!);
        const set = await DeploymentSet.fromCurrent({ repo: otherStore.repo, osname: 'testos', base });
        for (const n of [...set.names]) set.remove(n);
        set.add('epsilon');
        await set.commit({ subject: 'the other process: shadow removed' });
      });
      // shadow's warning was accepted for the set current when the call was made, not for the
      // set current when it got the lock: refused (judged early, shadow came back unasked).
      const outcome = await waiting!;
      expect(outcome).toBeInstanceOf(SetRefusedError);
      const current = (await DeploymentSet.current(store.repo, 'testos'))!;
      expect(current.order).toEqual(['epsilon']);
      expect(current.votes?.forced).toBeFalsy();
    } finally {
      other.close();
    }
  });
});
