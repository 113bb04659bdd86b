// A module plugin shipped by the base OS in usr/lib/ostree-sysext/plugins: the set is voted on
// with it, and a package-database conflict is vetoed (a veto cannot be forced).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BASE_PLUGIN_DIR, DeploymentSet, ExtensionStore, Repo, SetRefusedError, baseFromDirectory } from 'ostree-sysext';

const work = mkdtempSync(join(tmpdir(), 'example-plugin-module-'));
function tree(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}
const ext = (name, packages) =>
  tree(join(work, name), {
    [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=_any\n',
    [`usr/share/pkgdb/${name}.list`]: packages,
    [`usr/share/${name}/README`]: `${name}\n`,
  });

try {
  // The base ships the plugin in its plugin directory.
  const base = tree(join(work, 'base'), { 'usr/lib/os-release': 'ID=pkgos\nVERSION_ID=1\n', 'usr/share/pkgdb/base.list': 'libc 2.36\nopenssl 3.0.11\n' });
  mkdirSync(join(base, BASE_PLUGIN_DIR), { recursive: true });
  copyFileSync(join(import.meta.dirname, 'plugins', 'package-db.mjs'), join(base, BASE_PLUGIN_DIR, 'package-db.mjs'));

  const repo = await Repo.create(join(work, 'repo'), { mode: 'bare-user-only', disableFsync: true });
  const store = new ExtensionStore(repo);
  await store.installFromDirectory(ext('web', 'nginx 1.22\nopenssl 3.0.11\n'));
  await store.installFromDirectory(ext('db', 'postgresql 15.4\n'));
  await store.installFromDirectory(ext('legacy-tls', 'openssl 1.1.1w\n'));

  const b = await baseFromDirectory(base);
  const good = new DeploymentSet({ repo: store.repo, osname: 'pkgos', base: b }).add('web').add('db');
  const { report } = await good.commit();
  console.log(`set web+db: ${report.verdict}`);
  for (const v of report.votes) console.log(`  ${v.plugin}: ${v.verdict}: ${v.message}`);

  const bad = new DeploymentSet({ repo: store.repo, osname: 'pkgos', base: b }).add('web').add('legacy-tls');
  try {
    await bad.commit({ force: true });
    console.log('set web+legacy-tls: accepted (unexpected)');
  } catch (e) {
    if (!(e instanceof SetRefusedError)) throw e;
    console.log(`set web+legacy-tls: ${e.report.verdict} (even with force)`);
    const v = e.report.votes.find((x) => x.plugin === 'package-db');
    console.log(`  ${v.plugin}: ${v.verdict}: ${v.message}`);
  }
  console.log(`current set: ${(await DeploymentSet.current(store.repo, 'pkgos')).order.join(', ')}`);
  repo.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
