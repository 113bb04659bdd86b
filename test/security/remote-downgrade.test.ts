import { spawn, spawnSync } from 'node:child_process';
// A mirror that replays an older commit of a ref (with the summary of that time): upgrade and
// pull-based reinstall must refuse to go back (ExtensionError DOWNGRADE, or a veto when the
// older commit is already known locally), leave the installed commit in place, and go back
// only with allowDowngrade. Each scenario runs in a child process against dist/.
import { cpSync, createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/binding/repo.js';
import { childEnv } from '../helpers/child.js';
import { makeTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { attack, REPORT } from './attack.js';

const dir = tempDir('remote-downgrade-');
let server: Server;
let url = '';
let oldCommit = '';
let newCommit = '';

beforeAll(async () => {
  const vendor = join(dir, 'vendor');
  const repo = await Repo.create(vendor, { mode: 'archive', disableFsync: true });
  const tree = (v: string) => {
    const t = join(dir, `tree-${v}`);
    makeTree(t, { 'usr/lib/extension-release.d/extension-release.x': `ID=_any\nSYSEXT_VERSION_ID=${v}\n`, 'usr/share/x/version': `${v}\n` });
    return t;
  };
  const now = Math.floor(Date.now() / 1000);
  oldCommit = await repo.commit({ tree: tree('1'), ref: 'ext/x', subject: 'x 1', timestamp: now - 3600 });
  await repo.regenerateSummary();
  cpSync(vendor, join(dir, 'old'), { recursive: true });
  newCommit = await repo.commit({ tree: tree('2'), ref: 'ext/x', subject: 'x 2', timestamp: now });
  await repo.regenerateSummary();
  cpSync(vendor, join(dir, 'new'), { recursive: true });
  repo.close();
  // /old/… serves the repository as it was at version 1, /new/… as it is now.
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!));
    const file = join(dir, path);
    if (!/^\/(old|new)\//.test(path) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200);
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

// Child: args = [client repo, base url, scenario]. Prints what each step gave and where the
// extension ref points at the end.
const SCENARIO = `${REPORT}
const [path, base, scenario] = args;
const repo = await lib.Repo.create(path, { mode: 'bare-user-only', disableFsync: true });
const store = new lib.ExtensionStore(repo);
const out = {};
const outcome = (o) => ({ result: o.result, status: o.check.status, message: o.check.message, error: o.error ? { name: o.error.name, code: o.error.code } : null, to: o.to });
const err = (e) => ({ name: e.name, code: e.code ?? null, message: String(e.message) });
if (scenario === 'known') {
  await repo.addRemote('mirror', { url: base + '/old', gpgVerify: false });
  out.first = (await store.installFromRemote('mirror', 'ext/x')).commit;
  await repo.changeRemote('mirror', { url: base + '/new' });
  out.up = (await store.upgrade()).map(outcome)[0];
} else {
  await repo.addRemote('mirror', { url: base + '/new', gpgVerify: false });
  out.first = (await store.installFromRemote('mirror', 'ext/x')).commit;
}
// The mirror now replays the old state.
await repo.changeRemote('mirror', { url: base + '/old' });
if (scenario === 'cli') {
  console.log(JSON.stringify(out));
  process.exit(0);
}
out.replay = (await store.upgrade()).map(outcome)[0];
out.reinstall = await store.installFromRemote('mirror', 'ext/x', { name: 'x', replace: true }).then((x) => ({ ok: x.commit }), err);
out.installed = (await store.get('x')).commit;
if (scenario === 'allowed') {
  out.allowed = (await store.upgrade({ allowDowngrade: true })).map(outcome)[0];
  out.installedAfterAllow = (await store.get('x')).commit;
}
console.log(JSON.stringify(out));
`;

async function scenario(name: 'known' | 'unknown' | 'allowed' | 'cli'): Promise<Record<string, any>> {
  const r = await attack(SCENARIO, [join(dir, `client-${name}`), url, name], { timeoutMs: 120_000 });
  expect({ code: r.code, signal: r.signal }, r.stderr.slice(-2000)).toEqual({ code: 0, signal: null });
  return r.report as Record<string, any>;
}

describe('a mirror replaying an older commit', () => {
  it('the older commit never seen here: upgrade fails with DOWNGRADE, reinstall throws DOWNGRADE, the new commit stays', async () => {
    const r = await scenario('unknown');
    expect(r.first).toBe(newCommit);
    expect(r.replay).toMatchObject({ result: 'failed', error: { name: 'ExtensionError', code: 'DOWNGRADE' }, to: newCommit });
    expect(r.reinstall).toMatchObject({ name: 'ExtensionError', code: 'DOWNGRADE' });
    expect(r.reinstall.message).toMatch(/older than the installed/);
    expect(r.installed).toBe(newCommit);
  });

  it('the older commit known here (installed before): the check vetoes it, nothing changes', async () => {
    const r = await scenario('known');
    expect(r.first).toBe(oldCommit);
    expect(r.up).toMatchObject({ result: 'updated', to: newCommit });
    expect(r.replay).toMatchObject({ result: 'vetoed', status: 'veto', to: newCommit });
    expect(r.replay.message).toMatch(/older than the installed .*allowDowngrade/);
    expect(r.reinstall).toMatchObject({ name: 'ExtensionError', code: 'DOWNGRADE' });
    expect(r.installed).toBe(newCommit);
  });

  it('the command refuses too, and goes back only with --allow-downgrade', async () => {
    const r = await scenario('cli');
    expect(r.first).toBe(newCommit);
    const repoPath = join(dir, 'client-cli');
    // Asynchronously: the mirror is served from this process.
    const cli = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'ostree-sysext.js'), '--repo', repoPath, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: childEnv,
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
        child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const installed = () => spawnSync('ostree', [`--repo=${repoPath}`, 'rev-parse', 'ostree-sysext/ext/x'], { encoding: 'utf8' }).stdout.trim();
    const refused = await cli('upgrade');
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stdout + refused.stderr).toMatch(/older than the installed/);
    expect(installed()).toBe(newCommit);
    const back = await cli('upgrade', '--allow-downgrade');
    expect(back.status, back.stderr).toBe(0);
    expect(installed()).toBe(oldCommit);
  });

  it('allowDowngrade: true goes back on purpose', async () => {
    const r = await scenario('allowed');
    expect(r.installed).toBe(newCommit);
    expect(r.allowed).toMatchObject({ result: 'updated', to: oldCommit });
    expect(r.installedAfterAllow).toBe(oldCommit);
  });
});
