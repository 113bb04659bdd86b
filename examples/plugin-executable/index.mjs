// An executable plugin in another language (Python): it votes, and generates a state file
// (manifest.json) that is committed with the set, in its state/ directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DeploymentSet, ExtensionStore, Repo, baseFromDirectory, executablePlugin } from 'ostree-sysext';

const work = mkdtempSync(join(tmpdir(), 'example-plugin-executable-'));
function tree(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

try {
  const base = await baseFromDirectory(tree(join(work, 'base'), { 'usr/lib/os-release': 'ID=pyos\nVERSION_ID=7\n' }));
  const repo = await Repo.create(join(work, 'repo'), { mode: 'bare-user-only', disableFsync: true });
  const store = new ExtensionStore(repo);
  for (const [name, version] of [
    ['editor', '9.0'],
    ['compilers', '12.2'],
    ['docs', '1'],
    ['games', '0.1'],
  ]) {
    await store.installFromDirectory(
      tree(join(work, name), {
        [`usr/lib/extension-release.d/extension-release.${name}`]: `ID=pyos\nVERSION_ID=7\nSYSEXT_VERSION_ID=${version}\n`,
        [`usr/share/${name}/README`]: `${name}\n`,
      }),
    );
  }
  const plugin = executablePlugin(join(import.meta.dirname, 'plugins', 'manifest.py'), 'manifest');

  const set = new DeploymentSet({ repo: store.repo, osname: 'pyos', base, plugins: [plugin] }).add('editor').add('compilers');
  const { record, report } = await set.commit();
  console.log(`vote: ${report.votes.find((v) => v.plugin === 'manifest').message}`);
  const manifest = JSON.parse((await repo.readFile(record.commit, '/state/manifest.json')).toString());
  console.log(`state/manifest.json: ${manifest.extensions.map((e) => `${e.name}@${e.version}`).join(', ')} on ${manifest.os} ${manifest.osVersion}`);

  // Four extensions: the plugin warns; a warning passes only with force.
  const big = await DeploymentSet.fromCurrent({ repo: store.repo, osname: 'pyos', base, plugins: [plugin] });
  big.add('docs').add('games');
  const vote = await big.vote();
  console.log(`4 extensions: ${vote.verdict}, accepted: ${vote.accepted}`);
  const forced = await big.commit({ force: true });
  const m2 = JSON.parse((await repo.readFile(forced.record.commit, '/state/manifest.json')).toString());
  console.log(`with force: ${m2.extensions.length} extensions in state/manifest.json`);
  repo.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
