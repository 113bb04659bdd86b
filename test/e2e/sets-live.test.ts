// End to end with real parts: an `ostree admin` sysroot, extensions installed with the store,
// sets voted on by plugins (one executable plugin writes a state file), applied, merged by the
// real systemd-sysext in a private mount namespace, rolled back, unmerged; an OS upgrade
// re-checks the set; the offline merge equals what systemd-sysext shows.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { applySet, boundSet } from '../../lib/sets/activate.js';
import { baseFromCommit, baseFromDeployment } from '../../lib/extension/base.js';
import { DeploymentSet, SetRefusedError } from '../../lib/sets/deployment-set.js';
import { mergeOffline } from '../../lib/sets/merge.js';
import { executablePlugin } from '../../lib/sets/plugin-sandbox.js';
import type { Repo } from '../../lib/binding/repo.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { Sysroot } from '../../lib/binding/sysroot.js';
import { sysextEnvironment } from '../../lib/sets/sysext.js';
import { systemdRules } from '../../lib/extension/compat.js';
import { detectSystemd } from '../../lib/extension/systemd-detect.js';
import { makeTestSysroot, makeTree, type TestSysroot } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInPrivateMountNamespace } from '../helpers/sysext.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('sets-live-');
/** The set commit of a set checkout path (`…/extensions/<commit>.0`). */
const SET_CHECKOUT = (path: string) => /([0-9a-f]{64})\.0$/.exec(path)![1]!;

function extTree(name: string, release: string, files: Record<string, string>): string {
  const path = join(dir, `ext-${name}-${Math.random().toString(36).slice(2)}`);
  makeTree(path, { [`usr/lib/extension-release.d/extension-release.${name}`]: release, ...files });
  return path;
}

// Lists a tree as "path type mode sha" lines, the same way for the offline and the live merge.
const listing = (dirExpr: string) => `find "${dirExpr}" -mindepth 1 -path "${dirExpr}/.systemd-sysext" -prune -o -printf '%P %y %m\\n' | sort`;

/** Mounts the sysroot where a booted deployment sees it, merges, and reports what systemd shows. */
async function liveMerge(
  sysrootPath: string,
  deployDir: string,
  paths: string[],
): Promise<{ merged: string[]; files: Record<string, string>; listing: string; after: string; code: number | null; stderr: string }> {
  const script = `
set -e
mount --bind "$2" "$2" && mount --make-shared "$2"
mount --bind "$1" "$2/sysroot"
systemd-sysext --root="$2" merge >&2
echo "==merged"; cat "$2/usr/.systemd-sysext/extensions" 2>/dev/null || true
shift 2
for p in "$@"; do echo "==file $p"; cat "$DEPLOY/$p" 2>/dev/null || echo "<missing>"; done
echo "==listing"; ${listing('$DEPLOY/usr')}
systemd-sysext --root="$DEPLOY" unmerge >&2
echo "==after"; findmnt -n -o FSTYPE "$DEPLOY/usr" || echo "not-a-mount"
`;
  // The environment the library's driver (sysext, applySet's refresh) gives systemd-sysext for
  // this root: without it, 257 and later fail the merge of a deployment that has no /opt.
  const env = await sysextEnvironment('merge', deployDir, {});
  const r = await runInPrivateMountNamespace(script, {
    args: [sysrootPath, deployDir, ...paths],
    env: { ...env, DEPLOY: deployDir } as Record<string, string>,
  });
  const sections = new Map<string, string>();
  let current = '';
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('==')) {
      current = line.slice(2);
      sections.set(current, '');
    } else if (current) {
      sections.set(current, sections.get(current)! + line + '\n');
    }
  }
  const files: Record<string, string> = {};
  for (const p of paths) files[p] = (sections.get(`file ${p}`) ?? '').trimEnd();
  return {
    merged: (sections.get('merged') ?? '').split('\n').filter(Boolean),
    files,
    listing: sections.get('listing') ?? '',
    after: (sections.get('after') ?? '').trim(),
    code: r.code,
    stderr: r.stderr,
  };
}

describeAsRoot('deployment sets applied and merged by the real systemd-sysext', () => {
  let s: TestSysroot;
  let sysroot: Sysroot;
  let repo: Repo;
  let store: ExtensionStore;
  let pluginPath: string;

  beforeAll(async () => {
    // A deployment sees the sysroot at /sysroot and /ostree → sysroot/ostree, as on a booted host.
    s = makeTestSysroot(join(dir, 'sysroot'), {
      osname: 'testos',
      deployments: 1,
      tree: { extra: { ostree: { symlink: 'sysroot/ostree' }, sysroot: { dir: true }, run: { dir: true }, 'usr/share/base/file': 'from base\n' } },
    });
    sysroot = await Sysroot.load(s.path);
    repo = await sysroot.repo({ disableFsync: true });
    store = new ExtensionStore(repo);
    await store.installFromDirectory(extTree('hello', 'ID=testos\nVERSION_ID=1\n', { 'usr/share/hello/msg': 'hello from an extension\n' }));
    await store.installFromDirectory(extTree('world', 'ID=_any\n', { 'usr/share/world/msg': 'world\n', 'opt/world/bin': 'opt content\n' }));
    await store.installFromDirectory(extTree('other', 'ID=fedora\nVERSION_ID=40\n', { 'usr/share/other/msg': 'not for this OS\n' }));
    pluginPath = join(dir, 'state-plugin');
    writeFileSync(
      pluginPath,
      `#!/bin/sh
case "$1" in
  check) cat >/dev/null; echo '{"verdict":"approve","message":"state plugin is happy"}' ;;
  deploy-finish) cat > input.json; echo "generated for $(grep -o '"name":"[a-z]*"' input.json | tr '\\n' ' ')" > from-plugin.txt ;;
  *) exit 2 ;;
esac
`,
    );
    chmodSync(pluginPath, 0o755);
  });

  it('votes, applies, merges, rolls back and unmerges', async () => {
    const d = sysroot.deployments()[0]!;
    const deployDir = sysroot.deploymentPath(d);
    const base = await baseFromDeployment(sysroot, d);
    const plugins = [executablePlugin(pluginPath, 'state-plugin')];

    // An incompatible extension is vetoed, and nothing is committed.
    const refused = new DeploymentSet({ repo: store.repo, osname: 'testos', base, plugins }).add('hello').add('other');
    const err = await refused.commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SetRefusedError);
    expect((err as SetRefusedError).report.votes.find((v) => v.plugin === 'release-compatibility')?.verdict).toBe('veto');
    expect(await DeploymentSet.current(store.repo, 'testos')).toBeNull();

    const set = new DeploymentSet({ repo: store.repo, osname: 'testos', base, plugins }).add('world').add('hello');
    const { record, report } = await set.commit();
    expect(report.votes.map((v) => [v.plugin, v.verdict])).toEqual([
      ['release-compatibility', 'approve'],
      ['file-conflicts', 'approve'],
      ['state-plugin', 'approve'],
    ]);
    expect(record.order).toEqual(['hello', 'world']);

    const applied = await applySet({ sysroot, repo: store.repo, osname: 'testos', root: deployDir });
    expect(applied.set.commit).toBe(record.commit);
    expect(readFileSync(join(applied.checkout, 'state/from-plugin.txt'), 'utf8')).toMatch(/hello.*world/);
    expect(await boundSet(sysroot, d)).toBe(record.commit);
    // One link is switched (run/ostree/extensions); run/extensions is a fixed link beneath it,
    // which systemd-sysext follows under --root (the live merge below proves it).
    expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(`/ostree/deploy/testos/extensions/${record.commit}.0`);
    expect(readlinkSync(join(deployDir, 'run/extensions'))).toBe('ostree/extensions/staged');

    const live = await liveMerge(s.path, deployDir, ['usr/share/hello/msg', 'usr/share/world/msg', 'opt/world/bin', 'usr/share/base/file']);
    expect(live.code, live.stderr).toBe(0);
    expect(live.merged.sort(), live.stderr + live.listing.slice(0, 300)).toEqual(['hello', 'world']);
    expect(live.files['usr/share/hello/msg']).toBe('hello from an extension');
    expect(live.files['usr/share/world/msg']).toBe('world');
    // The base has no /opt and an immutable root: the driver leaves /opt out (252 and 254 skip
    // it themselves; 257 and later would fail the merge), and so does the offline merge.
    expect(live.files['opt/world/bin']).toBe('<missing>');
    expect(live.files['usr/share/base/file']).toBe('from base');
    // Plugin state is exposed at run/ostree/extensions (a path resolved inside the root).
    expect(readFileSync(join(s.path, readlinkSync(join(deployDir, 'run/ostree/extensions')), 'state/from-plugin.txt'), 'utf8')).toMatch(/hello.*world/);
    expect(live.after).not.toContain('overlay');

    // The offline merge shows the same /usr as systemd-sysext's overlay.
    const offline = join(dir, 'offline');
    await mergeOffline({
      repo,
      base: await baseFromCommit(repo, d.checksum),
      extensions: (await set.members()).map((m) => ({ name: m.name, commit: m.commit, kind: m.kind })),
      directory: offline,
    });
    const offlineListing = await runInPrivateMountNamespace(listing('$1'), { args: [join(offline, 'usr')], freshRun: false });
    expect(offlineListing.stdout).toBe(live.listing);
    expect(live.listing).toContain('share/hello/msg f');

    // A new set without "world", then a rollback to the first.
    const smaller = await DeploymentSet.fromCurrent({ repo: store.repo, osname: 'testos', base, plugins });
    smaller.remove('world');
    const second = await smaller.commit();
    await applySet({ sysroot, repo: store.repo, osname: 'testos', root: deployDir, set: second.record.commit });
    expect((await liveMerge(s.path, deployDir, [])).merged).toEqual(['hello']);

    const rolled = await DeploymentSet.rollback(store.repo, 'testos', record.commit);
    expect(rolled.extensions).toEqual(record.extensions);
    expect((await DeploymentSet.history(store.repo, 'testos')).map((r) => r.commit)).toEqual([rolled.commit, second.record.commit, record.commit]);
    await applySet({ sysroot, repo: store.repo, osname: 'testos', root: deployDir, set: rolled.commit });
    const back = await liveMerge(s.path, deployDir, ['usr/share/world/msg']);
    expect(back.merged.sort()).toEqual(['hello', 'world']);
    expect(back.files['usr/share/world/msg']).toBe('world');
  });

  it('re-checks the set on an OS upgrade and keeps the old deployment bound to its set', async () => {
    const old = sysroot.deployments()[0]!;
    const oldSet = await boundSet(sysroot, old);
    expect(oldSet).not.toBeNull();
    // OS version 2: "hello" pins VERSION_ID=1 and no longer fits; "world" does.
    s.commitOs('2', { extra: { ostree: { symlink: 'sysroot/ostree' }, sysroot: { dir: true }, run: { dir: true } } });
    s.deploy(undefined, { retain: true });
    await sysroot.reload();
    const fresh = sysroot.deployments().find((x) => x.checksum !== old.checksum)!;
    const r = await applySet({ sysroot, repo: store.repo, osname: 'testos', deployment: fresh, root: sysroot.deploymentPath(fresh) });
    expect(r.excluded.map((x) => x.name)).toEqual(['hello']);
    expect(r.excluded[0]!.reason).toMatch(/VERSION_ID/);
    expect(r.set.order).toEqual(['world']);
    expect(r.set.base).toBe(fresh.checksum);
    expect(await boundSet(sysroot, fresh)).toBe(r.set.commit);
    const live = await liveMerge(s.path, sysroot.deploymentPath(fresh), ['usr/share/hello/msg']);
    expect(live.merged).toEqual(['world']);
    expect(live.files['usr/share/hello/msg']).toBe('<missing>');

    // Rolling the OS back: the old deployment still has its own set.
    expect(await boundSet(sysroot, old)).toBe(oldSet);
    const again = await applySet({ sysroot, repo: store.repo, osname: 'testos', deployment: old, root: sysroot.deploymentPath(old) });
    expect(again.set.commit).toBe(oldSet);
    expect(again.excluded).toEqual([]);
    expect(existsSync(join(again.checkout, 'staged', 'hello'))).toBe(true);
  });

  it('drives systemd-sysext through the library: list, merge (verified), status, refresh, unmerge', async () => {
    const d = sysroot.deployments().find((x) => x.checksum === s.commits[0])!;
    const deployDir = sysroot.deploymentPath(d);
    const dist = join(import.meta.dirname, '..', '..', 'dist', 'lib', 'index.js');
    const driver = join(dir, 'driver.mjs');
    writeFileSync(
      driver,
      `import { listImages, mergeAndVerify, mergedExtensions, sysext, SysextError } from ${JSON.stringify(dist)};
const root = process.argv[2];
const out = {};
out.images = (await listImages({ root })).map((i) => i.name).sort();
out.merged = await mergeAndVerify('merge', ['hello'], { root });
out.status = await mergedExtensions(root);
out.refreshed = await mergeAndVerify('refresh', ['hello'], { root });
try { await mergeAndVerify('refresh', ['not-there'], { root }); } catch (e) { out.missing = [e instanceof SysextError, e.code, e.message]; }
await sysext('unmerge', { root });
out.after = await mergedExtensions(root);
console.log(JSON.stringify(out));
`,
    );
    const script = `mount --bind "$2" "$2" && mount --make-shared "$2" && mount --bind "$1" "$2/sysroot" && exec "$3" "$4" "$2"`;
    const r = await runInPrivateMountNamespace(script, { args: [s.path, deployDir, process.execPath, driver] });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.images).toEqual(['hello', 'world']);
    expect(out.merged.sort()).toEqual(['hello', 'world']);
    expect(out.status.usr.sort()).toEqual(['hello', 'world']);
    expect(out.refreshed.sort()).toEqual(['hello', 'world']);
    expect(out.missing.slice(0, 2)).toEqual([true, 'APPLY_FAILED']);
    expect(out.missing[2]).toMatch(/did not merge not-there/);
    expect(out.after).toEqual({ usr: [], opt: [] });
  });

  it('migrates the layout where run/extensions was switched on its own: one fixed link, and systemd-sysext still merges', async () => {
    const d = sysroot.deployments().find((x) => x.checksum === s.commits[0])!;
    const deployDir = sysroot.deploymentPath(d);
    const bound = (await boundSet(sysroot, d))!;
    // The old apply: both links absolute inside the deployment, each renamed on its own.
    for (const [link, target] of [
      ['run/extensions', `/ostree/deploy/testos/extensions/${bound}.0/staged`],
      ['run/ostree/extensions', `/ostree/deploy/testos/extensions/${bound}.0`],
    ] as const) {
      rmSync(join(deployDir, link), { force: true });
      symlinkSync(target, join(deployDir, link));
    }
    const r = await applySet({ sysroot, repo: store.repo, osname: 'testos', deployment: d, root: deployDir });
    expect(r.set.commit).toBe(bound);
    expect(readlinkSync(join(deployDir, 'run/extensions'))).toBe('ostree/extensions/staged');
    expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(`/ostree/deploy/testos/extensions/${bound}.0`);
    const live = await liveMerge(s.path, deployDir, ['usr/share/hello/msg']);
    expect(live.code, live.stderr).toBe(0);
    expect(live.merged.sort()).toEqual(['hello', 'world']);
    expect(live.files['usr/share/hello/msg']).toBe('hello from an extension');
  });

  it('switches confexts with the set: systemd-confext merges them live from 254; before 254 a refresh is refused with nothing switched', async () => {
    const installed = (await detectSystemd())!;
    const d = sysroot.deployments().find((x) => x.checksum === s.commits[0])!;
    const deployDir = sysroot.deploymentPath(d);
    const conf = join(dir, 'conf-site');
    makeTree(conf, { 'etc/extension-release.d/extension-release.site': 'ID=_any\n', 'etc/site/app.conf': 'from a confext\n' });
    await store.installFromDirectory(conf);
    // Made for this systemd where it has confexts, else for a newer target (252 cannot merge them).
    const target = installed.version >= 254 ? installed : systemdRules(257);
    const base = await baseFromDeployment(sysroot, d);
    const { record } = await new DeploymentSet({ repo: store.repo, osname: 'testos', base, systemd: target }).add('hello').add('site').commit();
    const before = readlinkSync(join(deployDir, 'run/ostree/extensions'));

    if (installed.version < 254) {
      const err = await applySet({
        sysroot,
        repo: store.repo,
        osname: 'testos',
        deployment: d,
        root: deployDir,
        set: record.commit,
        refresh: true,
        systemd: installed,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CONFEXT_UNSUPPORTED' });
      expect((err as Error).message).toMatch(/site.*systemd 252 cannot merge live.*nothing was switched/);
      expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(before);
    }
    // Without a refresh it applies: run/confexts (a fixed link) shows the set's confexts.
    const applied = await applySet({ sysroot, repo: store.repo, osname: 'testos', deployment: d, root: deployDir, set: record.commit });
    expect(readlinkSync(join(deployDir, 'run/confexts'))).toBe('ostree/extensions/confexts');
    expect(existsSync(join(applied.checkout, 'confexts/site/etc/site/app.conf'))).toBe(true);
    expect(existsSync(join(applied.checkout, 'staged/site'))).toBe(false);
    expect(existsSync(join(applied.checkout, 'staged/hello'))).toBe(true);
    // A checkout made before confexts had their own directory (every extension in staged/) gets it.
    execFileSync('cp', ['-al', join(applied.checkout, 'confexts/site'), join(applied.checkout, 'staged/site')]);
    rmSync(join(applied.checkout, 'confexts'), { recursive: true });
    await applySet({ sysroot, repo: store.repo, osname: 'testos', deployment: d, root: deployDir, set: record.commit });
    expect(readFileSync(join(applied.checkout, 'confexts/site/etc/site/app.conf'), 'utf8')).toBe('from a confext\n');
    expect(readdirSync(applied.checkout).filter((e) => e.startsWith('.'))).toEqual([]);
    if (installed.version < 254) return;

    // Live, as a booted host would: applySet's refresh runs systemd-sysext and systemd-confext.
    const dist = join(import.meta.dirname, '..', '..', 'dist', 'lib', 'index.js');
    const driver = join(dir, 'confext-driver.mjs');
    writeFileSync(
      driver,
      `import { applySet, deactivate, mergedExtensions, Sysroot } from ${JSON.stringify(dist)};
import { readFileSync } from 'node:fs';
const [sysrootPath, root, set] = process.argv.slice(2);
const sysroot = await Sysroot.load(sysrootPath);
const repo = await sysroot.repo();
const d = sysroot.deployments().find((x) => sysroot.deploymentPath(x) === root);
const r = await applySet({ sysroot, repo, osname: 'testos', deployment: d, root, set, refresh: true });
const out = { merged: r.merged, mergedConfexts: r.mergedConfexts, state: await mergedExtensions(root, ['usr', 'etc']) };
out.conf = readFileSync(root + '/etc/site/app.conf', 'utf8');
await deactivate({ root, unmerge: true });
out.after = await mergedExtensions(root, ['usr', 'etc']);
repo.close(); sysroot.close();
console.log(JSON.stringify(out));
`,
    );
    const script = `mount --bind "$2" "$2" && mount --make-shared "$2" && mount --bind "$1" "$2/sysroot" && exec "$3" "$4" "$1" "$2" "$5"`;
    const r = await runInPrivateMountNamespace(script, { args: [s.path, deployDir, process.execPath, driver, record.commit] });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.merged).toEqual(['hello']);
    expect(out.mergedConfexts).toEqual(['site']);
    expect(out.state).toEqual({ usr: ['hello'], etc: ['site'] });
    expect(out.conf).toBe('from a confext\n');
    expect(out.after).toEqual({ usr: [], etc: [] });
    // Put the earlier set back for the tests that follow.
    await applySet({ sysroot, repo: store.repo, osname: 'testos', deployment: d, root: deployDir, set: SET_CHECKOUT(before) });
  });

  it('allows one apply at a time per sysroot', async () => {
    const other = await Sysroot.load(s.path);
    await other.withLock(async () => {
      const err = await applySet({ sysroot, repo: store.repo, osname: 'testos', root: sysroot.deploymentPath(sysroot.deployments()[0]!) }).catch(
        (e: unknown) => e,
      );
      expect((err as { code?: string }).code).toBe('LOCKED');
    });
  });
});
