// A vendor's image build: bake a set of extensions into an image commit of its OS, offline
// (no root, no mounts), exactly as systemd-sysext would overlay them on a booted system.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ExtensionStore, Repo, baseFromCommit, mergeOffline } from 'ostree-sysext';

const work = mkdtempSync(join(tmpdir(), 'example-image-build-'));
function tree(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

try {
  // The vendor's build repository and its OS commit.
  const repo = await Repo.create(join(work, 'repo'), { mode: 'archive', disableFsync: true });
  const os = tree(join(work, 'os'), {
    'usr/lib/os-release': 'ID=vendoros\nVERSION_ID=42\n',
    'usr/bin/vendor-shell': '#!/bin/sh\necho base shell\n',
    'usr/etc/vendor.conf': 'mode=base\n',
  });
  await repo.commit({ tree: os, ref: 'vendoros/x86_64/base', subject: 'VendorOS 42', version: '42' });
  const base = await baseFromCommit(repo, 'vendoros/x86_64/base');

  // The extensions of this image: a sysext, a confext (configuration) and one for another release.
  const store = new ExtensionStore(repo);
  await store.installFromDirectory(
    tree(join(work, 'ext-debug'), {
      'usr/lib/extension-release.d/extension-release.debug-tools': 'ID=vendoros\nVERSION_ID=42\nSYSEXT_VERSION_ID=1.4\n',
      'usr/bin/strace': 'fake strace\n',
    }),
  );
  await store.installFromDirectory(
    tree(join(work, 'ext-conf'), {
      'etc/extension-release.d/extension-release.site-config': 'ID=vendoros\nVERSION_ID=42\n',
      'etc/vendor.conf': 'mode=site\n',
    }),
  );
  await store.installFromDirectory(
    tree(join(work, 'ext-old'), {
      'usr/lib/extension-release.d/extension-release.legacy': 'ID=vendoros\nVERSION_ID=41\n',
      'usr/bin/legacy': 'old\n',
    }),
  );

  // Only what fits this OS goes into the image. The image ships systemd 254 (confexts need 254+),
  // whatever the build machine runs.
  const installed = await store.list({ base, compatibility: { systemdVersion: 254, architecture: 'x86-64' } });
  for (const e of installed) console.log(`${e.name}: ${e.state} (${e.reason.code})`);
  const fits = installed.filter((e) => e.state === 'compatible');

  const { commit, order } = await mergeOffline({
    repo,
    base,
    extensions: fits.map((e) => ({ name: e.name, commit: e.commit, kind: e.kind })),
    // An OSTree commit keeps default configuration in usr/etc.
    confextTarget: 'usr/etc',
    // The merge leaves out what the image's systemd would not merge: say which one it ships.
    systemdVersion: 254,
    commit: { ref: 'vendoros/x86_64/image', subject: 'VendorOS 42 image', version: '42.1' },
  });
  console.log(`image commit ${commit} on vendoros/x86_64/image`);
  console.log(`layers: ${order.join(', ')}`);
  console.log(`/usr/bin/strace: ${(await repo.readFile(commit, '/usr/bin/strace')).toString().trim()}`);
  console.log(`/usr/etc/vendor.conf: ${(await repo.readFile(commit, '/usr/etc/vendor.conf')).toString().trim()}`);
  console.log(`legacy in image: ${(await repo.query(commit, [{ op: 'stat', path: '/usr/bin/legacy', optional: true }])).results[0] !== null}`);
  console.log(`version: ${(await repo.loadCommit(commit)).version}`);
  repo.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
