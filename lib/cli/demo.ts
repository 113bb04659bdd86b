/**
 * `ostree-sysext demo`: a tour in a throwaway directory. It builds a small OS commit, deploys
 * it with `ostree admin` (root only; otherwise the OS commit itself is the base), builds and
 * installs two sample extensions and an incompatible one, shows the compatibility table and
 * the plugins' votes, commits and applies a set, merges offline into a directory and a
 * commit, and — as root — merges live with the real systemd-sysext in a private mount
 * namespace. Needs no test helpers: the few ostree CLI calls (`admin init-fs`, `os-init`,
 * `deploy`) are the ones the library has no equivalent for.
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { applySet } from '../sets/activate.js';
import { baseFromCommit, baseFromDeployment, type Base } from '../extension/base.js';
import { BASE_PLUGIN_DIR, DeploymentSet, SetRefusedError } from '../sets/deployment-set.js';
import { mergeOffline } from '../sets/merge.js';
import type { VoteReport } from '../sets/plugin.js';
import { Repo } from '../binding/repo.js';
import { ExtensionStore } from '../extension/store.js';
import { Sysroot } from '../binding/sysroot.js';
import type { Command } from './commands/index.js';
import type { Context } from './context.js';
import { CliError, EXIT, table, usage } from './output.js';

const run = promisify(execFile);
const OSNAME = 'demoos';
const KVER = '6.1.0-demo';

/** Writes `files` (relative path → content, or `{ link }` for a symlink, or `{ exec }` for a 0755 file) under `dir`. */
async function writeTree(dir: string, files: Record<string, string | { link: string } | { exec: string } | { dir: true }>): Promise<string> {
  for (const [rel, f] of Object.entries(files)) {
    const p = join(dir, rel);
    await mkdir(typeof f === 'object' && 'dir' in f ? p : dirname(p), { recursive: true });
    if (typeof f === 'string') await writeFile(p, f);
    else if ('link' in f) await symlink(f.link, p);
    else if ('exec' in f) {
      await writeFile(p, f.exec);
      await chmod(p, 0o755);
    }
  }
  return dir;
}

// A base plugin written in sh: approves, and records the set it was deployed with.
const STATE_PLUGIN = `#!/bin/sh
case "$1" in
  check) cat >/dev/null; echo '{"verdict":"approve","message":"the demo OS accepts any set"}' ;;
  deploy-finish) cat > input.json; grep -o '"name":"[^"]*"' input.json | cut -d'"' -f4 > extensions.txt; rm input.json ;;
  *) exit 2 ;;
esac
`;

function osTree(versionId: string): Record<string, string | { link: string } | { exec: string } | { dir: true }> {
  return {
    [`usr/lib/modules/${KVER}/vmlinuz`]: 'demo kernel\n',
    [`usr/lib/modules/${KVER}/initramfs.img`]: 'demo initramfs\n',
    'usr/lib/os-release': `ID=${OSNAME}\nNAME="Demo OS"\nVERSION_ID=${versionId}\n`,
    'usr/etc/os-release': { link: '../lib/os-release' },
    'usr/etc/hostname': 'demo\n',
    'usr/share/demo/motd': 'Welcome to Demo OS (no extensions)\n',
    'usr/bin/demo-hello': { exec: '#!/bin/sh\necho "hello from the base"\n' },
    [`${BASE_PLUGIN_DIR}/50-record-set`]: { exec: STATE_PLUGIN },
    // As on a booted host: the deployment sees the sysroot at /sysroot, /ostree leads into it.
    ostree: { link: 'sysroot/ostree' },
    sysroot: { dir: true },
    run: { dir: true },
  };
}

const EXTENSIONS: Array<{ name: string; what: string; files: Record<string, string | { exec: string }> }> = [
  {
    name: 'hello',
    what: `fits only ${OSNAME} 1`,
    files: {
      'usr/lib/extension-release.d/extension-release.hello': `ID=${OSNAME}\nVERSION_ID=1\nSYSEXT_VERSION_ID=1.0\n`,
      'usr/bin/demo-hello': { exec: '#!/bin/sh\necho "hello from the hello extension"\n' },
      'usr/share/hello/greeting': 'Hello from an extension!\n',
    },
  },
  {
    name: 'tools',
    what: 'fits any OS (ID=_any)',
    files: {
      'usr/lib/extension-release.d/extension-release.tools': 'ID=_any\nSYSEXT_VERSION_ID=2.3\n',
      'usr/share/tools/README': 'tools: extra utilities\n',
      'usr/lib/tools/version': '2.3\n',
    },
  },
  {
    name: 'fedora-only',
    what: 'made for another OS (incompatible)',
    files: {
      'usr/lib/extension-release.d/extension-release.fedora-only': 'ID=fedora\nVERSION_ID=40\n',
      'usr/share/fedora-only/README': 'not for this OS\n',
    },
  },
];

/** Runs a script in a private mount namespace (needs root), as the e2e tests do. */
function inPrivateNamespace(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const prelude = 'set -e\nmount --make-rprivate /\nmount -t tmpfs -o mode=0755 tmpfs /run\n';
  return new Promise((resolvePromise, reject) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', prelude + script, 'demo', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

const LIVE_SCRIPT = `
sysroot=$1 deploy=$2
mount --bind "$deploy" "$deploy" && mount --make-shared "$deploy"
mount --bind "$sysroot" "$deploy/sysroot"
systemd-sysext --root="$deploy" merge >&2
echo "==merged"; cat "$deploy/usr/.systemd-sysext/extensions"
echo "==greeting"; cat "$deploy/usr/share/hello/greeting"
echo "==hello"; "$deploy/usr/bin/demo-hello"
systemd-sysext --root="$deploy" unmerge >&2
`;

function sections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let cur = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('==')) out[(cur = line.slice(2))] = '';
    else if (cur) out[cur] += (out[cur] ? '\n' : '') + line;
  }
  for (const k of Object.keys(out)) out[k] = out[k]!.trim();
  return out;
}

async function demo(ctx: Context, v: Record<string, unknown>): Promise<unknown> {
  const out = ctx.out;
  const isRoot = process.getuid?.() === 0;
  const dir = typeof v.dir === 'string' ? resolve(v.dir) : await mkdtemp(join(tmpdir(), 'ostree-sysext-demo-'));
  if (typeof v.dir === 'string' && existsSync(dir) && readdirSync(dir).length > 0) throw usage(`${dir} is not empty`, 'give a new or empty directory to --dir');
  await mkdir(dir, { recursive: true });
  const step = (n: number, text: string) => out.info(`\n[${n}] ${text}`);
  out.info(`ostree-sysext demo in ${dir}`);

  // 1. The OS.
  const osSrc = await writeTree(join(dir, 'src', 'os'), osTree('1'));
  let sysroot: Sysroot | null = null;
  let repo: Repo;
  let base: Base;
  const osRef = `${OSNAME}/stable`;
  if (isRoot) {
    step(1, `OS: a sysroot with one deployment of ${OSNAME} 1 (ostree admin init-fs, os-init, deploy)`);
    const sysrootPath = join(dir, 'sysroot');
    await mkdir(sysrootPath, { recursive: true });
    await run('ostree', ['admin', 'init-fs', '--modern', sysrootPath]);
    await run('ostree', ['admin', 'os-init', `--sysroot=${sysrootPath}`, OSNAME]);
    repo = await Repo.open(join(sysrootPath, 'ostree', 'repo'), { disableFsync: true });
    await repo.commit({ tree: osSrc, ref: osRef, subject: `${OSNAME} 1`, version: '1' });
    await run('ostree', ['admin', 'deploy', `--sysroot=${sysrootPath}`, `--os=${OSNAME}`, '--karg-none', osRef]);
    sysroot = await Sysroot.load(sysrootPath);
    base = await baseFromDeployment(sysroot, sysroot.deployments()[0]!);
    out.info(`    deployment ${sysroot.deploymentPath(sysroot.deployments()[0]!)}`);
  } else {
    step(1, `OS: a commit of ${OSNAME} 1 in a repository (not root: \`ostree admin deploy\` needs root, so the OS commit itself is the base; no live merge)`);
    repo = await Repo.create(join(dir, 'repo'), { mode: 'bare-user-only', disableFsync: true });
    await repo.commit({ tree: osSrc, ref: osRef, subject: `${OSNAME} 1`, version: '1' });
    base = await baseFromCommit(repo, osRef);
  }
  out.info(`    base ${base.id.slice(0, 12)}: ID=${base.osRelease.ID} VERSION_ID=${base.osRelease.VERSION_ID}`);
  const store = new ExtensionStore(repo);

  // 2. Extensions.
  step(2, 'extensions: build three trees and install them (validated, committed on ostree-sysext/ext/NAME)');
  for (const e of EXTENSIONS) {
    const src = await writeTree(join(dir, 'src', e.name), e.files);
    const ext = await store.installFromDirectory(src);
    out.info(`    installed ${ext.name.padEnd(12)} ${ext.version ?? ''}  commit ${ext.commit.slice(0, 12)}  (${e.what})`);
  }

  // 3. Compatibility.
  step(3, 'compatibility with the base, by systemd-sysext 252 rules');
  const listed = await store.list({ base });
  out.info(
    table(
      ['NAME', 'COMPATIBLE', 'REASON'],
      listed.map((e) => [e.name, e.state === 'compatible' ? 'yes' : 'no', `${e.reason?.code}: ${e.reason?.message}`]),
    ).replace(/^/gm, '    '),
  );

  // 4. Votes.
  step(4, "plugins vote on sets (built-in release-compatibility and file-conflicts, and the base's own sh plugin)");
  const printVotes = (r: VoteReport) => r.votes.forEach((x) => out.info(`      ${x.verdict.padEnd(7)} ${x.plugin}: ${x.message}`));
  const bad = new DeploymentSet({ repo, osname: OSNAME, base }).add('hello').add('fedora-only');
  const refused = await bad.commit().catch((e: unknown) => e);
  if (!(refused instanceof SetRefusedError)) throw new Error('the demo expected the set with fedora-only to be refused');
  out.info('    set {hello, fedora-only}: refused, nothing committed');
  printVotes(refused.report);
  const set = new DeploymentSet({ repo, osname: OSNAME, base }).add('hello').add('tools');
  // hello replaces the base's /usr/bin/demo-hello: file-conflicts warns, and a warning passes with force.
  const { record, report } = await set.commit({ subject: 'Demo set', force: true });
  out.info(
    `    set {hello, tools}: ${report.verdict}${report.forced ? ' (passed with force: hello deliberately replaces a base file)' : ''}, committed ${record.commit.slice(0, 12)} on ostree-sysext/set/${OSNAME}`,
  );
  printVotes(report);

  // 5. Apply (a sysroot only).
  let applied: { checkout: string; runExtensions: string; state: string } | null = null;
  if (sysroot) {
    step(5, 'apply: check the set out, bind it to the deployment, point run/extensions at it');
    const d = sysroot.deployments()[0]!;
    const root = sysroot.deploymentPath(d);
    const a = await applySet({ sysroot, repo, osname: OSNAME, deployment: d, root });
    applied = {
      checkout: a.checkout,
      runExtensions: await readlink(join(root, 'run', 'extensions')),
      state: (await readFile(join(a.checkout, 'state', 'extensions.txt'), 'utf8')).trim().split('\n').join(', '),
    };
    out.info(`    ${join(root, 'run/extensions')} -> ${applied.runExtensions}`);
    out.info(`    state written by the base's plugin: ${join(a.checkout, 'state/extensions.txt')} (${applied.state})`);
  } else step(5, 'apply: skipped (needs a deployment, so root)');

  // 6. Offline merges.
  step(6, 'offline merge (no mounts): into a directory and into a commit');
  const members = (await set.members()).map((m) => ({ name: m.name, commit: m.commit, kind: m.kind }));
  const commitBase = await baseFromCommit(repo, osRef);
  const mergedDir = join(dir, 'merged');
  await mergeOffline({ repo, base: commitBase, extensions: members, directory: mergedDir });
  const merged = await mergeOffline({
    repo,
    base: commitBase,
    extensions: members,
    commit: { ref: `${OSNAME}/stable-with-extensions`, subject: 'Demo OS with hello and tools' },
  });
  const greeting = (await readFile(join(mergedDir, 'usr/share/hello/greeting'), 'utf8')).trim();
  out.info(`    ${mergedDir}/usr/share/hello/greeting: ${greeting}`);
  out.info(`    commit ${merged.commit!.slice(0, 12)} on ${OSNAME}/stable-with-extensions (order: ${merged.order.join(', ')})`);

  // 7. Live merge (root).
  let live: { merged: string[]; greeting: string; hello: string } | null = null;
  if (sysroot && isRoot) {
    step(7, 'live merge: the real systemd-sysext in a private mount namespace (nothing leaks out)');
    const d = sysroot.deployments()[0]!;
    const r = await inPrivateNamespace(LIVE_SCRIPT, [sysroot.path, sysroot.deploymentPath(d)]);
    const s = sections(r.stdout);
    if (r.code !== 0 || !s.merged)
      throw new CliError(`the live merge failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`, EXIT.FAILURE, 'APPLY_FAILED');
    live = { merged: s.merged.split('\n'), greeting: s.greeting ?? '', hello: s.hello ?? '' };
    out.info(`    merged: ${live.merged.join(', ')}`);
    out.info(`    /usr/share/hello/greeting: ${live.greeting}`);
    out.info(`    /usr/bin/demo-hello says: ${live.hello}`);
  } else step(7, 'live merge: skipped (needs root for mount namespaces)');

  out.info(`\nWhere to look:
    ${dir}/src                      the OS and extension trees
    ${repo.path}    the repository (refs: ostree refs --repo=${repo.path})
    ${mergedDir}                   the offline merge
  Try: ostree-sysext --${sysroot ? `sysroot ${sysroot.path}` : `repo ${repo.path}`} list${
    sysroot
      ? `
       ostree-sysext --sysroot ${sysroot.path} --root ${sysroot.deploymentPath(sysroot.deployments()[0]!)} status`
      : ''
  }
  Remove it all with: rm -rf ${dir}${sysroot ? ` (deployments are immutable: chattr -R -i ${dir} first)` : ''}`);
  return {
    dir,
    mode: sysroot ? 'sysroot' : 'commit',
    sysroot: sysroot?.path ?? null,
    repo: repo.path,
    base: { type: base.source.type, id: base.id, osRelease: base.osRelease },
    extensions: listed.map((e) => ({ name: e.name, commit: e.commit, compatible: e.state === 'compatible', reason: e.reason })),
    refused: refused.report,
    set: { commit: record.commit, order: record.order, votes: report },
    applied,
    offline: { directory: mergedDir, commit: merged.commit, ref: `${OSNAME}/stable-with-extensions`, greeting },
    live,
  };
}

/** The `demo` command. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'a tour in a throwaway sysroot: build, install, vote, apply, merge',
  synopsis: '',
  description:
    'Builds a small OS and deploys it (as root; otherwise uses its commit as the base and says so), builds two sample extensions and an incompatible one, installs them, shows the compatibility table and the votes, commits and applies a set, merges offline into a directory and a commit, and as root merges live with systemd-sysext in a private mount namespace. Everything goes into a new temporary directory (or --dir), left in place for you to look at. It ignores --sysroot and --repo.',
  options: { dir: { type: 'string', arg: 'DIR', description: 'work here instead of a new temporary directory' } },
  examples: ['ostree-sysext demo', 'ostree-sysext demo --json', 'sudo ostree-sysext demo --dir /tmp/tour'],
  args: [0, 0],
  run: (ctx, v) => demo(ctx, v),
};
