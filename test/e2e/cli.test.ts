// The ostree-sysext command, run as users run it: `node bin/ostree-sysext.js …` (and through the
// real `ostree` CLI as `ostree sysext …`), asserting on exit codes, --json results and the files,
// refs and links it leaves behind.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSystemd } from '../../lib/extension/systemd-detect.js';
import { Repo } from '../../lib/binding/repo.js';
import { Sysroot } from '../../lib/binding/sysroot.js';
import { makeTestSysroot, makeTree, type TestSysroot } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { startNginx } from '../helpers/nginx.js';
import { ostreeOk, run } from '../helpers/ostree-cli.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInPrivateMountNamespace } from '../helpers/sysext.js';
import { removeTree, tempDir } from '../helpers/tmp.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'ostree-sysext.js');
const dir = tempDir('cli-');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, OSTREE_SYSEXT_DEBUG: '', ...opts.env },
    maxBuffer: 64 << 20,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs with --json and returns the parsed envelope (asserting the exit code). */
function json<T = Record<string, any>>(args: string[], code = 0): { ok: boolean; result: T; error?: { code: string; exitCode: number; message: string } } {
  const r = cli([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
  return JSON.parse(r.stdout);
}

let n = 0;
function extTree(name: string, release: string, files: Record<string, string> = {}): string {
  const path = join(dir, `src-${name}-${++n}`);
  makeTree(path, { [`usr/lib/extension-release.d/extension-release.${name}`]: release, [`usr/share/${name}/file`]: `${name} ${n}\n`, ...files });
  return path;
}

describe('ostree-sysext on a repository (no root needed)', () => {
  let repoPath: string;
  let osDir: string;
  const R = () => ['--repo', repoPath];

  beforeAll(async () => {
    repoPath = join(dir, 'repo');
    const repo = await Repo.create(repoPath, { mode: 'bare-user-only' });
    osDir = join(dir, 'os');
    makeTree(osDir, { 'usr/lib/os-release': 'ID=testos\nVERSION_ID=1\n', 'usr/share/base/file': 'base\n', 'usr/bin/tool': 'base tool\n' });
    await repo.commit({ tree: osDir, ref: 'testos/stable', subject: 'os 1', version: '1' });
    repo.close();
  });

  it('prints help for every command, with examples, and exits 2 on usage errors', () => {
    const main = cli(['--help']);
    expect(main.code).toBe(0);
    const commands = [
      'list',
      'status',
      'add',
      'remove',
      'deploy',
      'undeploy',
      'rollback',
      'upgrade',
      'build',
      'check',
      'merge',
      'verify',
      'remote add',
      'remote list',
      'remote delete',
      'boot',
      'demo',
    ];
    for (const c of commands) {
      expect(main.stdout).toContain(`  ${c} `);
      const h = cli([...c.split(' '), '--help']);
      expect(h.code, c).toBe(0);
      expect(h.stdout, c).toContain(`Usage: ostree-sysext [OPTIONS] ${c}`);
      expect(h.stdout, c).toMatch(/Examples:\n {2}\S/);
      expect(h.stdout, c).toContain('Exit codes:');
    }
    expect(cli(['help', 'merge']).stdout).toContain('--directory DIR');
    expect(cli([]).code).toBe(2);
    const unknown = cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toBe("ostree-sysext: 'frobnicate' is not an ostree-sysext command (try: ostree-sysext --help)\n");
    expect(cli(['list', '--bogus']).code).toBe(2);
    expect(cli(['remote', 'frob']).code).toBe(2);
    expect(cli(['remove']).code).toBe(2);
    const version = cli(['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(resolve(BIN, '../../package.json'), 'utf8')).version);
  });

  // Each usage error: exit 2, nothing on stdout, one line on stderr naming what is wrong.
  function usageLine(args: string[], line: string): void {
    const r = cli(args);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.stdout, args.join(' ')).toBe('');
    expect(r.stderr, args.join(' ')).toBe(`${line}\n`);
  }

  it('names a misspelled option, an option missing its value, and a misspelled command', () => {
    usageLine(['--sysroot', dir, '--sysrot', dir, 'list'], "ostree-sysext: unknown option '--sysrot'. Did you mean '--sysroot'? (try: ostree-sysext --help)");
    usageLine(['--frobnicate', 'list'], "ostree-sysext: unknown option '--frobnicate' (try: ostree-sysext --help)");
    usageLine(['--sysroot'], "ostree-sysext: option '--sysroot' needs a value (try: ostree-sysext --help)");
    usageLine(['--sysroot', '-q', 'list'], "ostree-sysext: option '--sysroot' needs a value (try: ostree-sysext --help)");
    usageLine(['list', '--repo'], "ostree-sysext list: option '--repo' needs a value (try: ostree-sysext list --help)");
    usageLine(['list', '--bogus'], "ostree-sysext list: unknown option '--bogus' (try: ostree-sysext list --help)");
    usageLine(['list', '--bsae', 'x'], "ostree-sysext list: unknown option '--bsae'. Did you mean '--base'? (try: ostree-sysext list --help)");
    usageLine(['list', '-x'], "ostree-sysext list: unknown option '-x' (try: ostree-sysext list --help)");
    usageLine(
      ['list', '--systemd-version', '2x'],
      "ostree-sysext list: option '--systemd-version' wants a systemd version such as 257, got '2x' (try: ostree-sysext list --help)",
    );
    usageLine(['list', '--json=yes'], "ostree-sysext list: option '--json' takes no value (try: ostree-sysext list --help)");
    usageLine(['lst'], "ostree-sysext: 'lst' is not an ostree-sysext command. Did you mean 'list'? (try: ostree-sysext --help)");
    usageLine(['--repo', dir, 'rmeove', 'x'], "ostree-sysext: 'rmeove' is not an ostree-sysext command. Did you mean 'remove'? (try: ostree-sysext --help)");
    usageLine(['help', 'lst'], "ostree-sysext: 'lst' is not an ostree-sysext command. Did you mean 'list'? (try: ostree-sysext --help)");
    usageLine(['remote'], "ostree-sysext: 'remote' needs a command: add, list, delete (try: ostree-sysext remote --help)");
    usageLine(['remote', 'lsit'], "ostree-sysext: 'lsit' is not an ostree-sysext remote command. Did you mean 'list'? (try: ostree-sysext remote --help)");
    usageLine(['remote', 'frob'], "ostree-sysext: 'frob' is not an ostree-sysext remote command (try: ostree-sysext remote --help)");
    usageLine(['list', 'extra'], "ostree-sysext list: takes no arguments, got 'extra' (try: ostree-sysext list --help)");
    usageLine(['add'], 'ostree-sysext add: missing argument (ostree-sysext add REMOTE:REF | DIR | ARCHIVE) (try: ostree-sysext add --help)');
    usageLine(['rollback', 'a', 'b'], "ostree-sysext rollback: too many arguments: 'b' (ostree-sysext rollback [SET]) (try: ostree-sysext rollback --help)");
    // Errors from the library's argument checks do not name its parameters.
    usageLine([...R(), 'remove', ''], 'ostree-sysext remove: an argument is empty (try: ostree-sysext remove --help)');
    usageLine([...R(), 'check', '--base', ''], "ostree-sysext check: option '--base' needs a value (try: ostree-sysext check --help)");
    usageLine([...R(), 'check', '--base='], "ostree-sysext check: option '--base' needs a value (try: ostree-sysext check --help)");
    usageLine(
      [...R(), 'remote', 'add', 'x', 'notaurl'],
      'ostree-sysext remote add: the URL is not a valid URL: "notaurl" (try: ostree-sysext remote add --help)',
    );
    usageLine(
      [...R(), 'remote', 'add', 'a b', 'file:///x'],
      'ostree-sysext remote add: the name is not a valid remote name: string "a b" (try: ostree-sysext remote add --help)',
    );
    // With --json the same error is the envelope on stdout.
    const j = cli(['lst', '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'USAGE', exitCode: 2, message: "'lst' is not an ostree-sysext command. Did you mean 'list'?" });
    // Global options go before or after the command; a command's option may come before it too.
    expect(cli(['--repo', repoPath, '--base', 'testos/stable', 'list']).code).toBe(0);
    expect(cli(['list', '--repo', repoPath, '-q']).code).toBe(0);
    expect(cli(['list', `--repo=${repoPath}`]).code).toBe(0);
  });

  it('helps with commands that have subcommands, and keeps the global options in the main help', () => {
    for (const args of [
      ['remote', '--help'],
      ['help', 'remote'],
      ['remote', '-h'],
      ['--help', 'remote'],
    ]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^Usage: ostree-sysext \[OPTIONS\] remote COMMAND \[ARGS\.\.\.\]\n/);
      for (const sub of ['add', 'list', 'delete']) expect(r.stdout).toMatch(new RegExp(`^  remote ${sub} +\\S`, 'm'));
    }
    const sub = cli(['help', 'remote', 'add']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('Usage: ostree-sysext [OPTIONS] remote add NAME URL');
    const main = cli(['--help']).stdout;
    expect(main).toContain('--sysroot DIR');
    for (const c of ['list', 'remote add', 'deploy']) {
      const h = cli([...c.split(' '), '--help']).stdout;
      expect(h, c).not.toContain('--sysroot DIR');
      expect(h, c).toContain(
        "Global options: --sysroot, --repo, --os, --root, --force, --wait, --systemd-version, --json, --quiet, --help, --version (see 'ostree-sysext --help').",
      );
    }
  });

  it('fails with one clear line and no stack trace (unless OSTREE_SYSEXT_DEBUG=1)', () => {
    const r = cli(['--repo', join(dir, 'nope'), 'list']);
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ostree-sysext list: .*nope is not an OSTree repository \(try: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const e = json(['--repo', join(dir, 'nope'), 'list'], 4);
    expect(e.ok).toBe(false);
    expect(e.error).toMatchObject({ code: 'NOT_FOUND', exitCode: 4 });
    const debug = cli([...R(), 'remove', 'not-installed'], { env: { OSTREE_SYSEXT_DEBUG: '1' } });
    expect(debug.code).toBe(4);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('adds from a directory and an archive, lists, checks, removes', async () => {
    const hello = extTree('hello', 'ID=testos\nVERSION_ID=1\nSYSEXT_VERSION_ID=1.0\n');
    const added = json([...R(), 'add', hello]);
    expect(added.result.extension).toMatchObject({ name: 'hello', kind: 'sysext', version: '1.0', origin: { builder: 'directory' } });
    expect(ostreeOk([`--repo=${repoPath}`, 'rev-parse', 'ostree-sysext/ext/hello']).trim()).toBe(added.result.extension.commit);
    // The same name again is refused (3), unless --replace.
    expect(cli([...R(), 'add', hello]).code).toBe(3);
    expect(cli([...R(), 'add', hello, '--replace', '--quiet']).code).toBe(0);

    const otherSrc = extTree('other', 'ID=fedora\nVERSION_ID=40\n');
    const tarball = join(dir, 'other.tar.gz');
    run('tar', ['-czf', tarball, '-C', otherSrc, '.']);
    expect(json([...R(), 'add', tarball]).result.extension).toMatchObject({ name: 'other', origin: { builder: 'archive' } });

    // An invalid tree: exit 1, one line naming the problem.
    const broken = join(dir, 'broken');
    makeTree(broken, { 'usr/lib/os-release': 'ID=x\n' });
    const bad = cli([...R(), 'add', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli([...R(), 'add', join(dir, 'does-not-exist')]).code).toBe(4);

    const listed = json([...R(), 'list', '--base', 'testos/stable']).result;
    expect(listed.extensions.map((e: { name: string; state: string }) => [e.name, e.state])).toEqual([
      ['hello', 'compatible'],
      ['other', 'incompatible'],
    ]);
    const text = cli([...R(), 'list']);
    expect(text.stdout).toMatch(/^NAME +KIND +VERSION/);
    expect(text.stdout).toMatch(/\nhello +sysext +1\.0 /);

    const check = json([...R(), 'check', '--base', osDir], 3).result;
    expect(check.results.map((r: { name: string; compatible: boolean; reason: { code: string } }) => [r.name, r.compatible, r.reason.code])).toEqual([
      ['hello', true, 'MATCH'],
      ['other', false, 'ID_MISMATCH'],
    ]);
    expect(cli([...R(), 'check', 'hello', '--base', 'testos/stable']).code).toBe(0);
    // The systemd whose rules apply: an ID from the base's ID_LIKE fits 258 (and a backported
    // 257), not 252; by default the installed systemd decides, as detectSystemd finds it.
    const likeBase = join(dir, 'like-os');
    makeTree(likeBase, { 'usr/lib/os-release': 'ID=derived\nID_LIKE="upstream other"\nVERSION_ID=1\n' });
    const likeExt = extTree('likeext', 'ID=upstream\nVERSION_ID=1\n');
    const verdict = (...extra: string[]) =>
      json([...R(), ...extra, 'check', likeExt, '--base', likeBase], extra.includes('258') ? 0 : 3).result.results[0].reason.code;
    expect(verdict('--systemd-version', '252')).toBe('ID_MISMATCH');
    expect(verdict('--systemd-version', '258')).toBe('MATCH');
    const installed = await detectSystemd();
    const byDefault = cli([...R(), 'check', likeExt, '--base', likeBase]);
    expect(byDefault.code).toBe(installed?.idLike ? 0 : 3);
    const dirCheck = cli([...R(), 'check', otherSrc, '--base', osDir]);
    expect(dirCheck.code).toBe(3);
    expect(dirCheck.stdout).toMatch(/other +sysext +no +ID_MISMATCH: /);
    expect(cli([...R(), 'check', '--base', 'no/such/ref']).code).toBe(4);

    expect(json([...R(), 'remove', 'other']).result).toEqual({ removed: ['other'] });
    expect(cli([...R(), 'remove', 'other']).code).toBe(4);
    expect(ostreeOk([`--repo=${repoPath}`, 'refs']).split('\n')).not.toContain('ostree-sysext/ext/other');
  });

  it('merges offline into a directory and into a commit', () => {
    extTree('unused', 'ID=_any\n');
    const tools = extTree('tools', 'ID=_any\n', { 'usr/bin/tool': 'tool from the extension\n' });
    json([...R(), 'add', tools]);
    const out = join(dir, 'merged');
    const m = json([...R(), 'merge', 'tools', 'hello', '--base', 'testos/stable', '--directory', out]).result;
    expect(m.order).toEqual(['hello', 'tools']);
    expect(readFileSync(join(out, 'usr/bin/tool'), 'utf8')).toBe('tool from the extension\n');
    expect(readFileSync(join(out, 'usr/share/base/file'), 'utf8')).toBe('base\n');
    expect(existsSync(join(out, 'usr/share/hello/file'))).toBe(true);
    const c = json([...R(), 'merge', 'tools', '--base', 'testos/stable', '--ref', 'testos/with-tools', '--subject', 'with tools']).result;
    expect(ostreeOk([`--repo=${repoPath}`, 'rev-parse', 'testos/with-tools']).trim()).toBe(c.commit);
    expect(ostreeOk([`--repo=${repoPath}`, 'cat', 'testos/with-tools', '/usr/bin/tool'])).toBe('tool from the extension\n');
    expect(cli([...R(), 'merge', 'tools', '--base', 'testos/stable']).code).toBe(2);
  });

  it('builds through a builder loaded from a module, and upgrades with it', () => {
    const mod = join(dir, 'counter-builder.mjs');
    const counter = join(dir, 'counter.txt');
    writeFileSync(counter, '1');
    writeFileSync(
      mod,
      `import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
export default {
  name: 'counter',
  async checkUpdate(req) {
    const now = readFileSync(req.context.file, 'utf8');
    return now === req.context.seen ? { status: 'none', message: 'same count' } : { status: 'available', message: 'count is ' + now };
  },
  async build(req) {
    const now = readFileSync(req.context.file, 'utf8');
    const t = mkdtempSync(join(tmpdir(), 'counter-'));
    mkdirSync(join(t, 'usr/lib/extension-release.d'), { recursive: true });
    writeFileSync(join(t, 'usr/lib/extension-release.d/extension-release.counter'), 'ID=_any\\nSYSEXT_VERSION_ID=' + now + '\\n');
    return { tree: t, context: { file: req.context.file, seen: now } };
  },
};
`,
    );
    expect(cli([...R(), 'build', 'counter']).code).toBe(4); // not registered without --module
    expect(cli([...R(), 'build', 'directory', '--context', 'not json']).code).toBe(2);
    const built = json([...R(), 'build', 'counter', '--module', mod, '--context', JSON.stringify({ file: counter })]).result;
    expect(built.extension).toMatchObject({ name: 'counter', version: '1', origin: { builder: 'counter' } });
    const none = json([...R(), 'upgrade', 'counter', '--module', mod]).result;
    expect(none.outcomes[0]).toMatchObject({ name: 'counter', result: 'skipped', check: { status: 'none' } });
    writeFileSync(counter, '2');
    const up = json([...R(), 'upgrade', 'counter', '--module', mod]).result;
    expect(up.outcomes[0]).toMatchObject({ name: 'counter', result: 'updated', from: built.extension.commit });
    expect(json([...R(), 'list']).result.extensions.find((e: { name: string }) => e.name === 'counter').version).toBe('2');
    // Without the module the builder is unknown: skipped, not failed.
    expect(json([...R(), 'upgrade', 'counter']).result.outcomes[0]).toMatchObject({ result: 'skipped', check: { status: 'unknown' } });
  });

  describe('remotes, pulls with progress, signatures', () => {
    let key: GpgKey;
    let vendor: string;
    beforeAll(async () => {
      key = generateKey('cli vendor');
      vendor = join(dir, 'vendor');
      const v = await Repo.create(vendor, { mode: 'archive' });
      await v.commit({
        tree: extTree('vendored', 'ID=_any\nSYSEXT_VERSION_ID=5\n', { 'usr/share/vendored/big': 'x'.repeat(100_000) }),
        ref: 'ext/vendored',
        subject: 'v5',
      });
      await v.signCommit('ext/vendored', { keyId: key.keyId, homedir: key.homedir });
      await v.commit({ tree: extTree('unsigned', 'ID=_any\n'), ref: 'ext/unsigned', subject: 'unsigned' });
      await v.regenerateSummary();
      v.close();
    });
    afterAll(() => key?.dispose());

    it('adds, lists and deletes remotes', () => {
      const withKey = cli([...R(), 'remote', 'add', 'vendor', `file://${vendor}`, '--gpg-import', key.publicKeyFile, '--json']);
      expect(withKey.code, withKey.stderr).toBe(0);
      expect(withKey.stderr).toBe('');
      expect(JSON.parse(withKey.stdout).result).toMatchObject({ remote: { name: 'vendor', url: `file://${vendor}`, gpgVerify: true }, keysImported: 1 });
      expect(cli([...R(), 'remote', 'add', 'vendor', `file://${vendor}`]).code).toBe(1);
      // The remote has its key already: no warning.
      const again = cli([...R(), 'remote', 'add', 'vendor', `file://${vendor}`, '--if-not-exists']);
      expect(again.code).toBe(0);
      expect(again.stderr).toBe('');
      // GPG on and no key: added, with a warning saying what will fail and what to do.
      const noKeys = cli([...R(), 'remote', 'add', 'nokeys', `file://${vendor}`]);
      expect(noKeys.code).toBe(0);
      expect(noKeys.stderr).toBe(
        `warning: remote nokeys verifies GPG signatures but has no key: pulls fail until you import the vendor's key (ostree-sysext remote add nokeys file://${vendor} --gpg-import KEYFILE --replace), unless it is in /usr/share/ostree/trusted.gpg.d\n`,
      );
      json([...R(), 'remote', 'delete', 'nokeys']);
      expect(cli([...R(), 'remote', 'add', 'plain', `file://${vendor}`, '--no-gpg-verify']).stderr).toBe('');
      json([...R(), 'remote', 'delete', 'plain']);
      json([...R(), 'remote', 'add', 'tmp', 'https://example.invalid/repo', '--no-gpg-verify']);
      expect(json([...R(), 'remote', 'list']).result.remotes.map((r: { name: string; gpgVerify: boolean }) => [r.name, r.gpgVerify])).toEqual([
        ['tmp', false],
        ['vendor', true],
      ]);
      expect(cli([...R(), 'remote', 'list']).stdout).toMatch(/tmp +https:\/\/example\.invalid\/repo +off/);
      json([...R(), 'remote', 'delete', 'tmp']);
      expect(cli([...R(), 'remote', 'delete', 'tmp']).code).toBe(4);
      expect(cli([...R(), 'remote', 'delete', 'tmp', '--if-exists']).code).toBe(0);
    });

    it('installs REMOTE:REF with progress lines, refuses unsigned content (6), verifies signatures and fsck', () => {
      const r = cli([...R(), 'add', 'vendor:ext/vendored']);
      expect(r.code, r.stderr).toBe(0);
      // A local (file://) pull counts no objects while it runs: its summary is shown at the end.
      expect(r.stderr).toMatch(/^pull vendor:ext\/vendored: \d+ metadata, \d+ content objects imported.*\npull vendor:ext\/vendored: done \([\d.]+ s\)\n$/);
      expect(r.stderr).not.toMatch(/ 0\/0 objects/);
      expect(r.stdout).toMatch(/installed vendored 5/);
      const unsigned = cli([...R(), 'add', 'vendor:ext/unsigned']);
      expect(unsigned.code).toBe(6);
      expect(unsigned.stderr).toMatch(/GPG|signature/i);
      // A pull that fails before fetching anything prints its error line and no progress.
      const missing = cli([...R(), 'add', 'vendor:ext/missing']);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr.trim().split('\n'), missing.stderr).toHaveLength(1);
      expect(missing.stderr).toMatch(/^ostree-sysext add: /);
      expect(missing.stderr).not.toMatch(/objects|B\/s/);

      const v = json([...R(), 'verify', 'vendored', 'hello']).result;
      expect(v.extensions.map((e: { name: string; status: string }) => [e.name, e.status])).toEqual([
        ['vendored', 'valid'],
        ['hello', 'unsigned'],
      ]);
      expect(v.extensions[0].signatures[0].fingerprint).toBe(key.fingerprint);
      expect(v.fsck).toMatchObject({ ok: true, missing: [], corrupt: [] });
      // Without a terminal, fsck says once what it checks (it reports no progress to draw).
      const plain = cli([...R(), 'verify', 'hello']);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toMatch(/^hello: unsigned \(local build; nothing to verify against\)\nfsck: ok: /);
      expect(plain.stderr).toBe(`fsck: checking every object of ${repoPath}\n`);
      // Pulled from a remote that does not require signatures: unsigned, and not called a local build.
      json([...R(), 'remote', 'add', 'plain', `file://${vendor}`, '--no-gpg-verify']);
      json([...R(), 'add', 'plain:ext/unsigned']);
      const pulled = cli([...R(), 'verify', 'unsigned', '--no-fsck']);
      expect(pulled.code).toBe(0);
      expect(pulled.stdout).toBe('unsigned: unsigned (pulled from remote plain, which does not require signatures)\n');
      json([...R(), 'remove', 'unsigned']);
      json([...R(), 'remote', 'delete', 'plain']);
      // Against the vendor's keys, a local build is unsigned: verification fails.
      expect(json([...R(), 'verify', 'hello', '--remote', 'vendor', '--no-fsck'], 6).result.extensions[0].status).toBe('invalid');
      // A damaged object: fsck reports it.
      const c = json([...R(), 'list']).result.extensions.find((e: { name: string }) => e.name === 'hello').commit;
      const obj = join(repoPath, 'objects', c.slice(0, 2), `${c.slice(2)}.commit`);
      const saved = readFileSync(obj);
      chmodSync(obj, 0o644);
      writeFileSync(obj, Buffer.concat([saved, Buffer.from('garbage')]));
      try {
        const bad = json([...R(), 'verify', 'vendored'], 6).result;
        expect(bad.fsck.ok).toBe(false);
      } finally {
        writeFileSync(obj, saved);
      }
    });

    it('draws a progress bar when stderr, where it goes, is a terminal', async () => {
      // script(1) gives the command a terminal; its output is what the terminal showed.
      const onTerminal = (shell: string) => spawnSync('script', ['-qec', shell, '/dev/null'], { encoding: 'utf8' });
      const cmd = `${process.execPath} ${BIN} --repo ${repoPath}`;
      // Over HTTP, libostree counts objects as they arrive.
      const server = await startNginx({ root: vendor });
      try {
        json([...R(), 'remote', 'add', 'web', server.url, '--no-gpg-verify']);
        // A pull over HTTP that fails at once: its error line only, no `0/0 objects`.
        const failed = cli([...R(), 'add', 'web:ext/missing']);
        expect(failed.code).toBe(4);
        expect(failed.stderr).toMatch(/^ostree-sysext add: [^\n]*ext\/missing[^\n]*\n$/);
        expect(failed.stderr).not.toMatch(/objects|B\/s/);
        const bar = /\r\x1b\[2Kpull web:ext\/vendored \[[#-]{24}\] \d+\/\d+ objects, [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)\/s/;
        json([...R(), 'remove', 'vendored']);
        // stdout redirected to a file, stderr on the terminal: the bar is drawn.
        const out = join(dir, 'add-stdout');
        const r = onTerminal(`${cmd} add web:ext/vendored >${out}`);
        expect(r.status, r.stdout).toBe(0);
        expect(r.stdout).toMatch(bar);
        expect(readFileSync(out, 'utf8')).toMatch(/^installed vendored 5 /);
        json([...R(), 'remove', 'vendored']);
        // stderr redirected to a file, stdout on the terminal: plain lines, no escape codes.
        const err = join(dir, 'add-stderr');
        const r2 = onTerminal(`${cmd} add web:ext/vendored 2>${err}`);
        expect(r2.status, r2.stdout).toBe(0);
        const lines = readFileSync(err, 'utf8');
        expect(lines).not.toContain('\x1b');
        expect(lines).toMatch(/^pull web:ext\/vendored: [1-9]\d*\/\d+ objects, [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)\/s\npull web:ext\/vendored: done/m);
        // fsck reports no progress: on a terminal, what runs and the seconds elapsed, cleared before the result.
        const f = onTerminal(`${cmd} verify hello`);
        expect(f.status, f.stdout).toBe(0);
        expect(f.stdout).toMatch(
          new RegExp(`\\r\\x1b\\[2Kfsck: checking every object of ${repoPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ s\\)\\r\\x1b\\[2Kfsck: ok: `),
        );
        json([...R(), 'remove', 'vendored']);
        json([...R(), 'remote', 'delete', 'web']);
        json([...R(), 'add', 'vendor:ext/vendored']);
      } finally {
        await server.stop();
      }
    });
  });

  it('runs as `ostree sysext …` through the real ostree CLI', () => {
    const path = join(dir, 'path');
    mkdirSync(path, { recursive: true });
    symlinkSync(BIN, join(path, 'ostree-sysext'));
    const r = spawnSync('ostree', ['sysext', '--repo', repoPath, 'list', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${path}:${process.env.PATH}` },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).result.extensions.map((e: { name: string }) => e.name)).toContain('hello');
    const h = spawnSync('ostree', ['sysext', '--help'], { encoding: 'utf8', env: { ...process.env, PATH: `${path}:${process.env.PATH}` } });
    expect(h.stdout).toContain('Usage: ostree-sysext');
  });
});

describeAsRoot('ostree-sysext on a sysroot (deploy, apply, boot, live merge)', () => {
  let s: TestSysroot;
  let deployDir: string;
  const S = () => ['--sysroot', s.path, '--root', deployDir];

  beforeAll(async () => {
    s = makeTestSysroot(join(dir, 'sysroot'), {
      osname: 'testos',
      deployments: 1,
      tree: { extra: { ostree: { symlink: 'sysroot/ostree' }, sysroot: { dir: true }, run: { dir: true }, 'usr/share/base/file': 'base\n' } },
    });
    const sysroot = await Sysroot.load(s.path);
    deployDir = sysroot.deploymentPath(sysroot.deployments()[0]!);
    sysroot.close();
    for (const [name, release] of [
      ['alpha', 'ID=testos\nVERSION_ID=1\n'],
      ['beta', 'ID=_any\n'],
      ['gamma', 'ID=fedora\n'],
    ] as const) {
      expect(cli(['--sysroot', s.path, 'add', extTree(name, release)]).code).toBe(0);
    }
  });

  it('deploys (plugins vote), undeploys, rolls back, and systemd-sysext merges what it set up', async () => {
    const vetoed = cli([...S(), 'deploy', 'alpha', 'gamma']);
    expect(vetoed.code).toBe(3);
    expect(vetoed.stdout).toMatch(/veto +release-compatibility: gamma/);
    expect(vetoed.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli([...S(), 'deploy', 'nope']).code).toBe(4);

    const d = json([...S(), 'deploy', 'alpha', 'beta']).result;
    expect(d.set.order).toEqual(['alpha', 'beta']);
    expect(d.votes.votes.map((v: { plugin: string; verdict: string }) => [v.plugin, v.verdict])).toEqual([
      ['release-compatibility', 'approve'],
      ['file-conflicts', 'approve'],
    ]);
    expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(`/ostree/deploy/testos/extensions/${d.set.commit}.0`);
    // One rename switches everything: run/extensions is a fixed link beneath run/ostree/extensions.
    expect(readlinkSync(join(deployDir, 'run/extensions'))).toBe('ostree/extensions/staged');
    expect(ostreeOk([`--repo=${s.repoPath}`, 'rev-parse', 'ostree-sysext/set/testos']).trim()).toBe(d.set.commit);

    const st = json([...S(), 'status']).result;
    expect(st).toMatchObject({ osname: 'testos', set: { commit: d.set.commit, order: ['alpha', 'beta'] }, active: { set: d.set.commit } });
    expect(st.deployments[0].set).toBe(d.set.commit);
    expect(
      json(['--sysroot', s.path, 'list'])
        .result.extensions.filter((e: { activeIn: string[] }) => e.activeIn.includes('testos'))
        .map((e: { name: string }) => e.name),
    ).toEqual(['alpha', 'beta']);
    expect(cli(['--sysroot', s.path, 'remove', 'alpha']).code).toBe(3);
    expect(json([...S(), 'check', 'gamma', '--vote'], 3).result.votes.verdict).toBe('veto');

    const u = json([...S(), 'undeploy', 'alpha']).result;
    expect(u.set.order).toEqual(['beta']);
    const shortId = /^current set ([0-9a-f]{12}) /m.exec(cli([...S(), 'status']).stdout)?.[1];
    expect(shortId).toBe(u.set.commit.slice(0, 12));
    expect(cli([...S(), 'undeploy', 'alpha']).code).toBe(4);
    const live1 = await runInPrivateMountNamespace(
      `mount --bind "$2" "$2" && mount --make-shared "$2"; mount --bind "$1" "$2/sysroot"; systemd-sysext --root="$2" merge >&2; cat "$2/usr/.systemd-sysext/extensions"; systemd-sysext --root="$2" unmerge >&2`,
      { args: [s.path, deployDir] },
    );
    expect(live1.stdout.trim().split('\n'), live1.stderr).toEqual(['beta']);

    const rb = json([...S(), 'rollback']).result;
    expect(rb.set.order).toEqual(['alpha', 'beta']);
    expect(rb.set.extensions).toEqual(d.set.extensions);
    expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(`/ostree/deploy/testos/extensions/${rb.set.commit}.0`);
    const live2 = await runInPrivateMountNamespace(
      `mount --bind "$2" "$2" && mount --make-shared "$2"; mount --bind "$1" "$2/sysroot"; systemd-sysext --root="$2" merge >&2; cat "$2/usr/.systemd-sysext/extensions"; cat "$2/usr/share/alpha/file"; systemd-sysext --root="$2" unmerge >&2`,
      { args: [s.path, deployDir] },
    );
    expect(live2.stdout, live2.stderr).toMatch(/^alpha\nbeta\nalpha \d+\n$/);
    expect(cli([...S(), 'rollback', 'f'.repeat(64)]).code).toBe(4);
    // The short id `status` printed works (a unique prefix); errors name no internal parameter.
    const byPrefix = json([...S(), 'rollback', shortId!]).result;
    expect(byPrefix.set.extensions).toEqual(u.set.extensions);
    const notId = cli([...S(), 'rollback', 'zz']);
    expect(notId.code).toBe(2);
    expect(notId.stderr).toBe(
      "ostree-sysext rollback: 'zz' is not a set id (4 to 64 hex digits, as `ostree-sysext status` prints them) (try: see the sets with `ostree-sysext status --json`)\n",
    );
    const unknownId = cli([...S(), 'rollback', 'ffffffffffff']);
    expect(unknownId.code).toBe(4);
    expect(unknownId.stderr).toBe(
      'ostree-sysext rollback: no set of testos has the id ffffffffffff (try: see the history with `ostree-sysext status --json`)\n',
    );
    expect(json([...S(), 'rollback', rb.set.commit.slice(0, 12)]).result.set.extensions).toEqual(d.set.extensions);

    // Offline merge of the current set onto the deployment's commit.
    const out = join(dir, 'sysroot-merged');
    json([...S(), 'merge', '--directory', out]);
    expect(readFileSync(join(out, 'usr/share/alpha/file'), 'utf8')).toMatch(/^alpha/);
  });

  it('upgrades an extension in the set and applies the new set', () => {
    const src = extTree('delta', 'ID=_any\nSYSEXT_VERSION_ID=1\n');
    json(['--sysroot', s.path, 'add', src]);
    json([...S(), 'deploy', 'delta']);
    writeFileSync(join(src, 'usr/lib/extension-release.d/extension-release.delta'), 'ID=_any\nSYSEXT_VERSION_ID=2\n');
    const up = json([...S(), 'upgrade', 'delta']).result;
    expect(up.outcomes[0]).toMatchObject({ name: 'delta', result: 'updated' });
    expect(up.set.extensions.delta).toBe(up.outcomes[0].to);
    expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(`/ostree/deploy/testos/extensions/${up.set.commit}.0`);
    // run/ostree/extensions is an absolute link as seen from inside the deployment (/ostree → the sysroot's).
    expect(
      readFileSync(
        join(s.path, readlinkSync(join(deployDir, 'run/ostree/extensions')), 'staged', 'delta/usr/lib/extension-release.d/extension-release.delta'),
        'utf8',
      ),
    ).toContain('SYSEXT_VERSION_ID=2');
    const noApply = json([...S(), 'upgrade', 'delta', '--no-apply']).result;
    expect(noApply.set).toBeUndefined();
  });

  it('a warning accepted with --force does not block changing other members; the refusal names the command showing the votes', () => {
    // shadow replaces a file of the base: file-conflicts warns.
    json(['--sysroot', s.path, 'add', extTree('shadow', 'ID=_any\n', { 'usr/share/base/file': 'shadowed\n' })]);
    json(['--sysroot', s.path, 'add', extTree('epsilon', 'ID=_any\n')]);
    json(['--sysroot', s.path, 'add', extTree('clash', 'ID=_any\n', { 'usr/share/base/file': 'clash\n' })]);
    const refused = cli([...S(), 'deploy', 'shadow']);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toMatch(/^ {2}warn +file-conflicts: 1 conflicting path\(s\): \/usr\/share\/base\/file /m);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    const see = `ostree-sysext --sysroot ${s.path} check --vote shadow`;
    expect(refused.stderr).toMatch(/^ostree-sysext deploy: the set was refused \(warnings pass with force\): /);
    expect(refused.stderr).toContain(` (try: see every vote with \`${see}\`; warnings (not vetoes) pass with --force)\n`);
    // With --json the refusal carries the votes.
    const refusedJson = json([...S(), 'deploy', 'shadow'], 3);
    expect(refusedJson.error).toMatchObject({ code: 'SET_REFUSED', votes: { verdict: 'warn', accepted: false } });
    // That command shows the same vote.
    const shown = cli(see.split(' ').slice(1));
    expect(shown.code).toBe(3);
    expect(shown.stdout).toMatch(/^ {2}warn +file-conflicts: 1 conflicting path\(s\): \/usr\/share\/base\/file /m);
    json([...S(), '--force', 'deploy', 'shadow']);
    // The warning about shadow was accepted: changing other members is not refused for it.
    for (const args of [
      ['deploy', 'epsilon'],
      ['undeploy', 'epsilon'],
    ]) {
      const r = cli([...S(), ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^accepted with --force before, still accepted: file-conflicts: 1 conflicting path\(s\): \/usr\/share\/base\/file /m);
    }
    // A new conflict was never accepted: refused.
    expect(cli([...S(), 'deploy', 'clash']).code).toBe(3);
    json([...S(), 'undeploy', 'shadow']);
    expect(json([...S(), 'status']).result.set.order).not.toContain('shadow');
  });

  it('boot re-applies the bound set, and re-checks it for a new deployment', async () => {
    const current = json([...S(), 'status']).result.set.commit;
    const runExt = join(deployDir, 'run/extensions');
    run('rm', ['-f', runExt, join(deployDir, 'run/ostree/extensions')]);
    const booted = json([...S(), 'boot']).result;
    expect(booted.applied.set).toBe(current);
    expect(readlinkSync(join(deployDir, 'run/ostree/extensions'))).toBe(`/ostree/deploy/testos/extensions/${current}.0`);
    // The deployment has no /opt and its root is immutable: systemd-sysext.service gets /usr only
    // (its drop-in reads this file); sets-live.test.ts merges with it on 252, 254, 257 and 262.
    expect(existsSync(join(deployDir, 'opt'))).toBe(false);
    expect(booted.environment).toEqual({ SYSTEMD_SYSEXT_HIERARCHIES: '/usr' });
    expect(readFileSync(join(deployDir, 'run/ostree-sysext/systemd-sysext.env'), 'utf8')).toBe('SYSTEMD_SYSEXT_HIERARCHIES=/usr\n');
    expect(readlinkSync(runExt)).toBe('ostree/extensions/staged');

    // OS 2: alpha pins VERSION_ID=1 and is left out of the new deployment's set.
    s.commitOs('2', { extra: { ostree: { symlink: 'sysroot/ostree' }, sysroot: { dir: true }, run: { dir: true } } });
    s.deploy(undefined, { retain: true });
    const sysroot = await Sysroot.load(s.path);
    const fresh = sysroot.deployments()[0]!;
    const freshDir = sysroot.deploymentPath(fresh);
    sysroot.close();
    const b = cli(['--sysroot', s.path, '--root', freshDir, 'boot', '--json']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/warning: left out alpha: .*VERSION_ID/);
    const applied = JSON.parse(b.stdout).result.applied;
    expect(applied.excluded.map((x: { name: string }) => x.name)).toEqual(['alpha']);
    const staged = join(s.path, readlinkSync(join(freshDir, 'run/ostree/extensions')), 'staged');
    expect(existsSync(join(staged, 'alpha'))).toBe(false);
    expect(existsSync(join(staged, 'beta'))).toBe(true);
  });

  it('exits 5 while another process holds the sysroot lock', async () => {
    const other = await Sysroot.load(s.path);
    try {
      await other.withLock(async () => {
        const r = await new Promise<Run>((res) => {
          const child = spawn(process.execPath, [BIN, ...S(), 'deploy', 'beta'], { stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (x) => (stdout += x));
          child.stderr.on('data', (x) => (stderr += x));
          child.on('close', (code) => res({ code, stdout, stderr }));
        });
        expect(r.code, r.stderr).toBe(5);
        expect(r.stderr).toMatch(/lock.*\(try: .*--wait\)/);
      });
    } finally {
      other.close();
    }
  });

  it('boot with nothing ever deployed does nothing and exits 0', () => {
    const fresh = makeTestSysroot(join(dir, 'empty-sysroot'), { osname: 'emptyos', deployments: 1 });
    const r = json(['--sysroot', fresh.path, 'boot']);
    expect(r.result).toEqual({ applied: null });
  });

  it('the demo runs end to end, live merge included', () => {
    const demoDir = join(dir, 'demo');
    const r = json(['demo', '--dir', demoDir]).result;
    expect(r.mode).toBe('sysroot');
    expect(r.extensions.map((e: { name: string; compatible: boolean }) => [e.name, e.compatible])).toEqual([
      ['fedora-only', false],
      ['hello', true],
      ['tools', true],
    ]);
    expect(r.refused.votes.find((v: { plugin: string }) => v.plugin === 'release-compatibility').verdict).toBe('veto');
    expect(r.set.order).toEqual(['hello', 'tools']);
    expect(r.applied.state).toBe('hello, tools');
    expect(readFileSync(join(r.offline.directory, 'usr/share/hello/greeting'), 'utf8')).toBe('Hello from an extension!\n');
    expect(ostreeOk([`--repo=${r.repo}`, 'rev-parse', r.offline.ref]).trim()).toBe(r.offline.commit);
    expect(r.live).toEqual({ merged: ['hello', 'tools'], greeting: 'Hello from an extension!', hello: 'hello from the hello extension' });
    const text = cli(['demo', '--dir', demoDir]);
    expect(text.code).toBe(2); // not empty
  });

  it('the demo without root uses a commit base and says so', () => {
    // Outside the 0700 test directory, so that nobody can reach it.
    const demoDir = mkdtempSync(join(tmpdir(), 'cli-demo-user-'));
    afterAll(() => removeTree(demoDir));
    chmodSync(demoDir, 0o755);
    run('chown', ['nobody', demoDir]);
    const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, 'demo', '--dir', demoDir], {
      encoding: 'utf8',
      env: { ...process.env, HOME: demoDir },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/not root: `ostree admin deploy` needs root, so the OS commit itself is the base/);
    expect(r.stdout).toMatch(/live merge: skipped/);
    expect(readFileSync(join(demoDir, 'merged/usr/share/hello/greeting'), 'utf8')).toBe('Hello from an extension!\n');
  });

  it("README's 30-second tour works word for word", () => {
    const readme = readFileSync(resolve(BIN, '../../README.md'), 'utf8');
    const block = /## 30-second tour[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    const tourDir = /--dir (\S+)/.exec(block)![1]!;
    removeTree(tourDir);
    afterAll(() => removeTree(tourDir));
    // Run where a user runs it: a project with the package installed (node_modules/.bin), so npx
    // takes that bin. (In the clone itself npm 11's npx installs the clone into its cache, which
    // runs the install script: an unlocked rebuild of build/ under the other tests' feet.)
    const project = join(dir, 'tour-project');
    mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tour', private: true }));
    symlinkSync(resolve(BIN, '../..'), join(project, 'node_modules', 'ostree-sysext'));
    symlinkSync('../ostree-sysext/bin/ostree-sysext.js', join(project, 'node_modules', '.bin', 'ostree-sysext'));
    const outputs: string[] = [];
    for (const line of lines) {
      const r = spawnSync('bash', ['-c', line], { cwd: project, encoding: 'utf8', env: { ...process.env, OSTREE_SYSEXT_DEBUG: '' } });
      const expected = /# exit (\d+)/.exec(line)?.[1] ?? '0';
      expect(r.status, `${line}\n${r.stderr}`).toBe(Number(expected));
      outputs.push(r.stdout);
    }
    expect(outputs[1]).toMatch(/fedora-only +sysext/);
    expect(outputs[2]).toMatch(/fedora-only +sysext +no +ID_MISMATCH/);
    const status = JSON.parse(outputs.at(-1)!);
    expect(status.result.set.order).toEqual(['hello', 'tools']);
    // The demo forced a warning about hello: undeploying tools is not refused for it.
    const sysroot = /--sysroot (\S+)/.exec(block)![1]!;
    const und = cli(['--sysroot', sysroot, 'undeploy', 'tools']);
    expect(und.code, und.stderr).toBe(0);
    expect(und.stdout).toMatch(/^accepted with --force before, still accepted: file-conflicts: /m);
  });

  it('SIGINT cancels a running pull: exit 130, nothing installed', async () => {
    const served = join(dir, 'served');
    const v = await Repo.create(served, { mode: 'archive' });
    const files: Record<string, string> = { 'usr/lib/extension-release.d/extension-release.huge': 'ID=_any\n' };
    for (let i = 0; i < 3000; i++) files[`usr/share/huge/f${i}`] = `file ${i} ${'y'.repeat(i % 700)}\n`;
    const src = join(dir, 'huge-src');
    makeTree(src, files);
    await v.commit({ tree: src, ref: 'ext/huge', subject: 'huge' });
    await v.regenerateSummary();
    v.close();
    const server = await startNginx({ root: served });
    try {
      expect(cli(['--sysroot', s.path, 'remote', 'add', 'served', server.url, '--no-gpg-verify']).code).toBe(0);
      const r = await new Promise<Run>((res) => {
        const child = spawn(process.execPath, [BIN, '--sysroot', s.path, 'add', 'served:ext/huge'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (x) => (stdout += x));
        child.stderr.on('data', (x) => {
          stderr += x;
          if (/objects/.test(stderr) && !child.killed) child.kill('SIGINT');
        });
        child.on('close', (code) => res({ code, stdout, stderr }));
      });
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(/^ostree-sysext add: interrupted/m);
      expect(ostreeOk([`--repo=${s.repoPath}`, 'refs']).split('\n')).not.toContain('ostree-sysext/ext/huge');
    } finally {
      await server.stop();
    }
  });
});
