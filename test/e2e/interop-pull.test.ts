// Interoperability with the reference implementation over real HTTP (nginx): the ostree CLI
// pulls what this library published (GPG-signed commits, a signed summary, static deltas),
// and this library pulls what the CLI published, verifying the same signatures.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import { Repo } from '../../lib/binding/repo.js';
import { makeManyFiles, makeTree } from '../helpers/fixtures.js';
import { generateKey, type GpgKey } from '../helpers/gpg.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { ostree, ostreeRepo } from '../helpers/ostree-cli.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-interop-');
const www = join(base, 'www');

/** Runs the CLI without blocking the loop (nginx and the test share this process). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('ostree', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describeAsRoot('pull interoperability with the ostree CLI', () => {
  let nginx: NginxServer;
  let key: GpgKey;
  // Published by the library.
  let libV1: string;
  let libV2: string;
  // Published by the CLI.
  let cliV1: string;
  let cliV2: string;

  const deltaRequests = (repo: string): string[] => nginx.requests().filter((l) => l.startsWith(`200 /${repo}/deltas/`) && l.split('/')[4]!.includes('-'));

  beforeAll(async () => {
    key = generateKey('Interop publisher');
    mkdirSync(www);
    makeManyFiles(join(base, 'v1'), 120);
    makeTree(join(base, 'v1'), { 'usr/lib/os-release': 'ID=interop\nVERSION_ID=1\n' });
    makeManyFiles(join(base, 'v2'), 120);
    makeTree(join(base, 'v2'), { 'usr/lib/os-release': 'ID=interop\nVERSION_ID=2\n', 'd000/f00001': 'changed\n' });

    // The library publishes: signed commits, a signed summary, from-scratch and from→to deltas.
    const pub = await Repo.create(join(www, 'lib'), { mode: 'archive', disableFsync: true });
    libV1 = await pub.commit({ tree: join(base, 'v1'), ref: 'os/main', subject: 'v1' });
    libV2 = await pub.commit({ tree: join(base, 'v2'), ref: 'os/main', subject: 'v2' });
    for (const c of [libV1, libV2]) await pub.signCommit(c, { keyId: key.keyId, homedir: key.homedir });
    await pub.generateDelta({ to: libV1, summary: false });
    await pub.generateDelta({ from: libV1, to: libV2, summary: { keyIds: [key.keyId], homedir: key.homedir } });

    // The CLI publishes the same trees the same way.
    const cp = join(www, 'cli');
    ostreeRepo(cp, ['init', '--mode=archive']);
    const sign = [`--gpg-sign=${key.keyId}`, `--gpg-homedir=${key.homedir}`];
    cliV1 = ostreeRepo(cp, ['commit', '-b', 'os/main', `--tree=dir=${join(base, 'v1')}`, '-s', 'v1', ...sign]).trim();
    cliV2 = ostreeRepo(cp, ['commit', '-b', 'os/main', `--tree=dir=${join(base, 'v2')}`, '-s', 'v2', ...sign]).trim();
    ostreeRepo(cp, ['static-delta', 'generate', '--empty', `--to=${cliV1}`]);
    ostreeRepo(cp, ['static-delta', 'generate', `--from=${cliV1}`, `--to=${cliV2}`]);
    ostreeRepo(cp, ['summary', '-u', ...sign]);

    nginx = await startNginx({ root: www, accessLog: true });
  });
  afterAll(async () => {
    await nginx?.stop();
    key?.dispose();
  });

  it('the ostree CLI pulls what the library published: signatures, signed summary and a delta', async () => {
    const repo = join(base, 'cli-client');
    ostreeRepo(repo, ['init', '--mode=bare-user-only']);
    ostreeRepo(repo, ['remote', 'add', `--gpg-import=${key.publicKeyFile}`, '--set=gpg-verify-summary=true', 'origin', `${nginx.url}/lib`]);
    let r = await cli([`--repo=${repo}`, 'pull', 'origin', `os/main@${libV1}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(ostreeRepo(repo, ['rev-parse', 'origin:os/main']).trim()).toBe(libV1);
    r = await cli([`--repo=${repo}`, 'pull', '--require-static-deltas', 'origin', 'os/main']);
    expect(r.code, r.stderr).toBe(0);
    expect(ostreeRepo(repo, ['rev-parse', 'origin:os/main']).trim()).toBe(libV2);
    expect(deltaRequests('lib').map((l) => l.split('/').at(-1))).toEqual(['superblock', '0']);
    const show = ostreeRepo(repo, ['show', '--gpg-verify-remote=origin', libV2]);
    expect(show).toContain('Good signature from "Interop publisher <test@ostree-sysext.invalid>"');
    expect(ostreeRepo(repo, ['cat', 'origin:os/main', '/usr/lib/os-release'])).toBe('ID=interop\nVERSION_ID=2\n');
    expect(ostree([`--repo=${repo}`, 'fsck']).status).toBe(0);

    // And it refuses the library's commits without the key, as it should.
    const untrusting = join(base, 'cli-untrusting');
    ostreeRepo(untrusting, ['init', '--mode=bare-user-only']);
    ostreeRepo(untrusting, ['remote', 'add', 'origin', `${nginx.url}/lib`]);
    r = await cli([`--repo=${untrusting}`, 'pull', 'origin', 'os/main']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/public key not found|signature/i);
  });

  it('the library pulls what the ostree CLI published, verifying its signatures, summary and delta', async () => {
    const repo = await Repo.create(join(base, 'lib-client'), { disableFsync: true });
    await repo.addRemote('origin', { url: `${nginx.url}/cli`, gpgVerifySummary: true });
    expect(await repo.importRemoteKeys('origin', key.publicKeyFile)).toBe(1);
    expect(await repo.listRemoteRefs('origin')).toEqual({ 'os/main': cliV2 });
    const summary = await repo.fetchRemoteSummary('origin');
    expect(summary.signatures).not.toBeNull();

    const first = await repo.pull('origin', { refs: ['os/main'], commits: [cliV1] });
    expect(first.refs).toEqual({ 'origin:os/main': cliV1 });
    const before = deltaRequests('cli').length;
    const second = await repo.pull('origin', { refs: ['os/main'], requireStaticDeltas: true });
    expect(second.refs).toEqual({ 'origin:os/main': cliV2 });
    expect(second.progress.fetchedDeltaParts).toBeGreaterThan(0);
    expect(deltaRequests('cli').length).toBeGreaterThan(before);

    const v = await repo.verifyCommit('origin:os/main', { remote: 'origin' });
    expect(v.valid).toBe(true);
    expect(v.signatures.map((s) => [s.keyId, s.user])).toEqual([[key.keyId, 'Interop publisher']]);
    expect((await repo.readFile('origin:os/main', '/usr/lib/os-release')).toString()).toBe('ID=interop\nVERSION_ID=2\n');
    expect((await repo.readFile('origin:os/main', '/d000/f00001')).toString()).toBe('changed\n');
    expect((await repo.fsck()).ok).toBe(true);
    // Same trees, same content checksums, whichever tool committed them.
    const lib = await Repo.open(join(www, 'lib'));
    expect((await repo.loadCommit(cliV2)).contentChecksum).toBe((await lib.loadCommit(libV2)).contentChecksum);
  });

  it('the library refuses the CLI’s repository when it does not trust the key', async () => {
    const repo = await Repo.create(join(base, 'lib-untrusting'), { disableFsync: true });
    await repo.addRemote('origin', { url: `${nginx.url}/cli` });
    const e = (await repo.pull('origin', { refs: ['os/main'] }).catch((x: unknown) => x)) as OstreeError;
    expect(e).toBeInstanceOf(OstreeError);
    expect(e.code).toBe('GPG_MISSING_KEY');
    expect(await repo.listRefs()).toEqual({});
  });
});
