// A vendor updater on an OSTree host: install an extension from the vendor's OSTree remote
// with progress, abort a pull halfway, upgrade when the vendor publishes a new version, apply
// the new set, and roll back. The vendor repository is one this example creates, served by a
// local nginx (file:// when nginx is not installed); the host is a throwaway sysroot deployed
// with `ostree admin` (which needs root).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AbortError, DeploymentSet, ExtensionStore, Repo, Sysroot, applySet, baseFromDeployment } from 'ostree-sysext';

if (process.getuid?.() !== 0) {
  console.error('updater: needs root (the example host is made with `ostree admin deploy`)');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'example-updater-'));
let server = null;
function tree(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    if (content === null) mkdirSync(join(dir, rel), { recursive: true });
    else if (typeof content === 'object') symlinkSync(content.link, join(dir, rel));
    else writeFileSync(join(dir, rel), content);
  }
  return dir;
}
const ostree = (...args) => execFileSync('ostree', args, { encoding: 'utf8' });

/** Serves `dir` with nginx on a free 127.0.0.1 port; returns its URL and a stop function. */
async function serve(dir) {
  const port = await new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => res(p));
    });
  });
  const prefix = join(work, 'nginx');
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off; user root root; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log;
events {} http { access_log off; client_body_temp_path ${prefix}/tmp; proxy_temp_path ${prefix}/tmp;
fastcgi_temp_path ${prefix}/tmp; uwsgi_temp_path ${prefix}/tmp; scgi_temp_path ${prefix}/tmp;
server { listen 127.0.0.1:${port}; root ${dir}; } }`,
  );
  const child = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], { stdio: 'ignore' });
  for (
    let i = 0;
    i < 200 &&
    !(await fetch(`http://127.0.0.1:${port}/config`).then(
      () => true,
      () => false,
    ));
    i++
  )
    await new Promise((r) => setTimeout(r, 25));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

const bar = (p) => `${p.fetched}/${Math.max(p.requested, p.fetched)} objects, ${p.bytesTransferred} bytes${p.done ? ' (done)' : ''}`;

try {
  // The vendor: an archive repository served as file://, with one extension and one big one.
  const vendor = await Repo.create(join(work, 'vendor'), { mode: 'archive', disableFsync: true });
  const publish = async (version) => {
    const src = tree(join(work, `vendor-tools-${version}`), {
      'usr/lib/extension-release.d/extension-release.vendor-tools': `ID=hostos\nVERSION_ID=1\nSYSEXT_VERSION_ID=${version}\n`,
      'usr/share/vendor-tools/version': `${version}\n`,
    });
    await vendor.commit({ tree: src, ref: 'extensions/vendor-tools', subject: `vendor-tools ${version}`, version });
    await vendor.regenerateSummary();
  };
  await publish('1.0');
  const big = {};
  for (let i = 0; i < 2000; i++) big[`usr/share/big/f${i}`] = `file ${i} ${'x'.repeat(i % 500)}\n`;
  big['usr/lib/extension-release.d/extension-release.big'] = 'ID=_any\n';
  await vendor.commit({ tree: tree(join(work, 'big'), big), ref: 'extensions/big', subject: 'big' });
  await vendor.regenerateSummary();

  // The host: a sysroot with one deployment of hostos 1.
  const sysrootPath = join(work, 'sysroot');
  mkdirSync(sysrootPath);
  ostree('admin', 'init-fs', '--modern', sysrootPath);
  ostree('admin', 'os-init', `--sysroot=${sysrootPath}`, 'hostos');
  ostree(
    `--repo=${sysrootPath}/ostree/repo`,
    'commit',
    '--branch=hostos/stable',
    `--tree=dir=${tree(join(work, 'os'), {
      'usr/lib/modules/6.1.0/vmlinuz': 'kernel\n',
      'usr/lib/modules/6.1.0/initramfs.img': 'initramfs\n',
      'usr/lib/os-release': 'ID=hostos\nVERSION_ID=1\n',
      'usr/etc/os-release': { link: '../lib/os-release' },
      // The deployment root is immutable: run/ (where run/extensions goes) must come with the OS.
      run: null,
    })}`,
  );
  ostree('admin', 'deploy', `--sysroot=${sysrootPath}`, '--os=hostos', '--karg-none', 'hostos/stable');
  const sysroot = await Sysroot.load(sysrootPath);
  const deployment = sysroot.deployments()[0];
  const root = sysroot.deploymentPath(deployment);
  const repo = await sysroot.repo();
  const store = new ExtensionStore(repo);
  // gpgVerify: false keeps the example short; a real vendor signs and you import its key.
  server = existsSync('/usr/sbin/nginx') ? await serve(join(work, 'vendor')) : null;
  const url = server?.url ?? `file://${join(work, 'vendor')}`;
  console.log(`vendor remote: ${server ? 'nginx' : 'file://'}`);
  await repo.addRemote('vendor', { url, gpgVerify: false });

  // 1. A pull cancelled halfway: nothing is installed.
  const ac = new AbortController();
  try {
    await store.installFromRemote('vendor', 'extensions/big', {
      signal: ac.signal,
      onProgress: (p) => {
        if ((p.fetched > 0 || p.done) && !ac.signal.aborted) {
          console.log(`pull big: ${bar(p)} -> abort`);
          ac.abort();
        }
      },
    });
    console.log('pull big: finished before the abort');
  } catch (e) {
    if (!(e instanceof AbortError)) throw e;
    console.log(`pull big: aborted (${e.name}); installed: ${(await store.names()).join(', ') || 'nothing'}`);
  }

  // 2. Install with progress, deploy and apply.
  let last;
  const tools = await store.installFromRemote('vendor', 'extensions/vendor-tools', { onProgress: (p) => (last = p) });
  console.log(`installed ${tools.name} ${tools.version}: ${bar(last)}`);
  const base = await baseFromDeployment(sysroot, deployment);
  const set = new DeploymentSet({ repo: store.repo, osname: 'hostos', base }).add('vendor-tools');
  const first = await set.commit();
  await applySet({ sysroot, repo: store.repo, osname: 'hostos', deployment, root });
  // run/ostree/extensions names the active set's checkout (absolute inside a deployment, where
  // /ostree is the sysroot's); run/extensions is a fixed link to its staged/ directory.
  const active = () => {
    const link = readlinkSync(join(root, 'run/ostree/extensions'));
    const checkout = link.startsWith('/') ? join(sysrootPath, link) : join(root, 'run/ostree', link);
    return readFileSync(join(checkout, 'staged/vendor-tools/usr/share/vendor-tools/version'), 'utf8').trim();
  };
  console.log(`applied set ${first.record.commit.slice(0, 12)}: vendor-tools ${active()}`);

  // 3. The vendor publishes 1.1: upgrade, then a new set with it, applied.
  await publish('1.1');
  const [outcome] = await store.upgrade();
  console.log(`upgrade ${outcome.name}: ${outcome.result} (${outcome.check.message})`);
  const next = await DeploymentSet.fromCurrent({ repo: store.repo, osname: 'hostos', base });
  next.add('vendor-tools');
  const second = await next.commit({ subject: 'vendor-tools 1.1' });
  await applySet({ sysroot, repo: store.repo, osname: 'hostos', deployment, root, set: second.record.commit });
  console.log(`applied set ${second.record.commit.slice(0, 12)}: vendor-tools ${active()}`);

  // 4. Roll back to the previous set.
  const back = await DeploymentSet.rollback(store.repo, 'hostos');
  await applySet({ sysroot, repo: store.repo, osname: 'hostos', deployment, root, set: back.commit });
  console.log(`rolled back to set ${back.commit.slice(0, 12)}: vendor-tools ${active()}`);
  console.log(`set history: ${(await DeploymentSet.history(store.repo, 'hostos')).map((r) => r.subject).join(' <- ')}`);
  repo.close();
  sysroot.close();
} finally {
  server?.stop();
  // Deployment roots are immutable (chattr +i).
  spawnSync('chattr', ['-R', '-f', '-i', work], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
