// Pulls over HTTP from a real nginx: a 5,000-file commit with live progress while the event
// loop keeps turning (measured, with a control that proves the measurement can fail), timed
// against `ostree pull` from the same server; cancel half-way then resume; static deltas;
// pull flags; and concurrent pulls into one repository from two handles and a CLI process.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import type { PullProgress } from '../../lib/binding/pull.js';
import { Repo } from '../../lib/binding/repo.js';
import { makeManyFiles, makeTree } from '../helpers/fixtures.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { ostreeRepo } from '../helpers/ostree-cli.js';
import { describeAsRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const FILES = 5000;
const base = tempDir('ostree-sysext-pull-http-');
const www = join(base, 'www');
let n = 0;
const fresh = (): Promise<Repo> => Repo.create(join(base, `client-${++n}`), { disableFsync: true });

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const ms = (x: number): string => `${x.toFixed(1)} ms`;

describeAsRoot('pull over HTTP (nginx)', () => {
  let nginx: NginxServer;
  let big: string;
  let smallA: string;
  let smallB: string;
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    mkdirSync(www);
    const server = await Repo.create(join(www, 'repo'), { mode: 'archive', disableFsync: true });
    big = await server.commit({ tree: makeManyFiles(join(base, 'many'), FILES), ref: 'big', subject: `${FILES} files` });
    makeTree(join(base, 'a'), { 'a.txt': 'a\n' });
    makeTree(join(base, 'b'), { 'b.txt': 'b\n' });
    smallA = await server.commit({ tree: join(base, 'a'), ref: 'small/a', subject: 'a' });
    smallB = await server.commit({ tree: join(base, 'b'), ref: 'small/b', subject: 'b' });
    await server.regenerateSummary();

    const deltas = await Repo.create(join(www, 'delta'), { mode: 'archive', disableFsync: true });
    makeManyFiles(join(base, 'd1'), 200);
    v1 = await deltas.commit({ tree: join(base, 'd1'), ref: 'os/main', subject: 'v1' });
    makeTree(join(base, 'd1'), Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`d000/f0000${i}`, `changed ${i}\n`])));
    v2 = await deltas.commit({ tree: join(base, 'd1'), ref: 'os/main', subject: 'v2' });
    await deltas.generateDelta({ to: v1, summary: false });
    await deltas.generateDelta({ from: v1, to: v2 });

    nginx = await startNginx({
      root: www,
      accessLog: true,
      locations: `location /private/ { if ($http_x_token != "s3cret") { return 403; } alias ${www}/repo/; }`,
    });
  });
  afterAll(() => nginx?.stop());

  it(`pulls a ${FILES}-file commit with live progress while the event loop keeps turning`, async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/repo`, gpgVerify: false });
    const snapshots: Array<PullProgress & { at: number }> = [];
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const t0 = performance.now();
    delay.enable();
    const before = nginx.requests().length;
    const r = await repo.pull('origin', { refs: ['big'], onProgress: (p) => snapshots.push({ ...p, at: performance.now() }) });
    const served = nginx.requests().slice(before);
    delay.disable();
    const libMs = performance.now() - t0;
    const p99 = delay.percentile(99) / 1e6;
    const max = delay.max / 1e6;

    expect(r.refs).toEqual({ 'origin:big': big });
    expect(r.progress.done).toBe(true);
    // The counters are libostree's own accounting, which is not one per download: with this
    // server's one missing detached-metadata file (404), 2022.7 ends at fetched = requested =
    // objects served + 2, 2025.2 at requested = fetched + 1 (the 404 stays "requested").
    // Version-independent: every object served is counted, and what is left outstanding at
    // the end is at most the detached metadata the server does not have.
    const objects200 = served.filter((l) => /^200 \/repo\/objects\//.test(l)).length;
    const missingMeta = served.filter((l) => /^404 \/repo\/objects\/.*\.commitmeta$/.test(l)).length;
    console.log(
      `pull counters: fetched ${r.progress.fetched}, requested ${r.progress.requested}, objects served ${objects200}, missing detached metadata ${missingMeta}`,
    );
    expect(missingMeta).toBe(1);
    expect(r.progress.fetched).toBeGreaterThanOrEqual(objects200);
    expect(r.progress.fetched).toBeLessThanOrEqual(objects200 + missingMeta + 1);
    expect(r.progress.requested - r.progress.fetched).toBeGreaterThanOrEqual(0);
    expect(r.progress.requested - r.progress.fetched).toBeLessThanOrEqual(missingMeta);
    expect(r.progress.fetched).toBeGreaterThanOrEqual(FILES);
    expect(r.progress.bytesTransferred).toBeGreaterThan(0);
    // Live: several snapshots mid-pull, the first well before the end, counts never going back.
    const live = snapshots.filter((s) => !s.done);
    expect(live.length).toBeGreaterThanOrEqual(3);
    expect(live.some((s) => s.fetched > 0 && s.fetched < r.progress.fetched)).toBe(true);
    expect(t0 + libMs - live[0]!.at).toBeGreaterThan(200);
    for (let i = 1; i < snapshots.length; i++) {
      expect(snapshots[i]!.fetched).toBeGreaterThanOrEqual(snapshots[i - 1]!.fetched);
      expect(snapshots[i]!.bytesTransferred).toBeGreaterThanOrEqual(snapshots[i - 1]!.bytesTransferred);
    }
    expect(snapshots.at(-1)!.done).toBe(true);
    expect(live.some((s) => /^Receiving (objects|metadata objects): /.test(s.status))).toBe(true);
    expect((await repo.readFile('origin:big', '/d049/f04999')).toString()).toBe('file 4999\n');
    expect((await repo.fsck()).ok).toBe(true);

    // The same commit with `ostree pull` from the same server, for comparison.
    const cli = join(base, 'cli-repo');
    ostreeRepo(cli, ['init', '--mode=bare-user-only']);
    ostreeRepo(cli, ['config', 'set', 'core.fsync', 'false']);
    ostreeRepo(cli, ['remote', 'add', '--no-gpg-verify', 'origin', `${nginx.url}/repo`]);
    const t1 = performance.now();
    const c = await run('ostree', [`--repo=${cli}`, 'pull', 'origin', 'big']);
    const cliMs = performance.now() - t1;
    expect(c.code, c.stderr).toBe(0);
    expect(ostreeRepo(cli, ['rev-parse', 'origin:big']).trim()).toBe(big);

    console.log(
      `[pull-figures] ${FILES}-file HTTP pull: library ${ms(libMs)} (${snapshots.length} progress snapshots), ostree pull ${ms(cliMs)}; ` +
        `event-loop delay during the library pull: p99 ${ms(p99)}, max ${ms(max)}`,
    );
    // Sanity bounds only (the figures are the benchmark's job): the pull runs on its own
    // thread and the loop only receives snapshots, so it never stalls for the pull's duration.
    expect(p99).toBeLessThan(50);
    expect(max).toBeLessThan(Math.min(500, libMs / 2));
  });

  it('control: the event-loop measurement does catch a deliberately blocked loop', async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await new Promise((res) => setTimeout(res, 30));
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // block the loop on purpose
    }
    await new Promise((res) => setTimeout(res, 30));
    delay.disable();
    expect(delay.max / 1e6).toBeGreaterThan(250);
  });

  it('cancels half-way within a second; the ref stays unset, fsck is clean, and a later pull resumes', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/repo`, gpgVerify: false });
    const ac = new AbortController();
    let abortedAt = 0;
    let fetchedAtAbort = 0;
    const e = await repo
      .pull('origin', {
        refs: ['big'],
        signal: ac.signal,
        onProgress: (p) => {
          if (!abortedAt && p.fetched >= FILES / 2) {
            fetchedAtAbort = p.fetched;
            abortedAt = performance.now();
            ac.abort();
          }
        },
      })
      .catch((x: unknown) => x);
    const latency = performance.now() - abortedAt;
    expect(abortedAt).toBeGreaterThan(0);
    expect((e as Error).name).toBe('AbortError');
    expect((e as Error).message).toContain(`pull big from remote 'origin' (${nginx.url}/repo): aborted`);
    expect(latency).toBeLessThan(1000);
    expect(await repo.resolve('origin:big', { allowMissing: true })).toBeNull();
    expect((await repo.fsck()).ok).toBe(true);

    const again = await repo.pull('origin', { refs: ['big'] });
    expect(again.refs).toEqual({ 'origin:big': big });
    // Resumed: the objects fetched before the abort were kept and are not fetched again.
    expect(again.progress.fetched).toBeLessThan(FILES + 100 - fetchedAtAbort / 2);
    const fsck = await repo.fsck();
    expect(fsck).toMatchObject({ ok: true, partialCommits: 0, commitsChecked: 1 });
    expect((await repo.readFile('origin:big', '/d000/f00000')).toString()).toBe('file 0\n');
    console.log(
      `[pull-figures] cancel latency (abort() → rejection): ${ms(latency)} at ${fetchedAtAbort}/${FILES}; resume fetched ${again.progress.fetched} objects`,
    );
  });

  it('pulls through static deltas (from scratch, then from→to) when required', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/delta`, gpgVerify: false });
    const deltaRequests = (from: boolean): string[] =>
      nginx.requests().filter((l) => /^200 \/delta\/deltas\//.test(l) && l.split('/')[4]!.includes('-') === from);
    const objectRequests = (): number => nginx.requests().filter((l) => /\/delta\/objects\/.*\.filez/.test(l)).length;
    const first = await repo.pull('origin', { refs: ['os/main'], commits: [v1], requireStaticDeltas: true });
    expect(first.refs).toEqual({ 'origin:os/main': v1 });
    expect(first.progress.totalDeltaParts).toBeGreaterThan(0);
    expect(first.progress.fetchedDeltaParts).toBe(first.progress.totalDeltaParts);
    expect(deltaRequests(false).map((l) => l.split('/').at(-1))).toEqual(['superblock', '0']);
    // libostree 2022.7 also fetches loose objects while a delta part is in flight (so does
    // `ostree pull`): assert that the deltas were fetched and applied, not that nothing else was.
    const second = await repo.pull('origin', { refs: ['os/main'], requireStaticDeltas: true });
    expect(second.refs).toEqual({ 'origin:os/main': v2 });
    expect(second.progress.fetchedDeltaParts).toBe(second.progress.totalDeltaParts);
    expect(second.progress.totalDeltaParts).toBeGreaterThan(0);
    expect(deltaRequests(true).map((l) => l.split('/').at(-1))).toEqual(['superblock', '0']);
    const objectsBefore = objectRequests();
    expect((await repo.readFile('origin:os/main', '/d000/f00003')).toString()).toBe('changed 3\n');
    expect((await repo.fsck()).ok).toBe(true);

    const plain = await fresh();
    await plain.addRemote('origin', { url: `${nginx.url}/delta`, gpgVerify: false });
    const r = await plain.pull('origin', { refs: ['os/main'], disableStaticDeltas: true });
    expect(r.progress.totalDeltaParts).toBe(0);
    expect(objectRequests()).toBeGreaterThan(objectsBefore);
  });

  it('honours depth, commit-only, mirror, an override URL, HTTP headers and network retries', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/delta`, gpgVerify: false });
    await repo.pull('origin', { refs: ['os/main'], disableStaticDeltas: true, networkRetries: 0 });
    expect((await repo.log('origin:os/main')).commits.map((c) => c.checksum)).toEqual([v2]);
    await repo.pull('origin', { refs: ['os/main'], depth: 1, disableStaticDeltas: true, networkRetries: 2 });
    expect((await repo.log('origin:os/main')).commits.map((c) => c.checksum)).toEqual([v2, v1]);

    const partial = await fresh();
    await partial.addRemote('origin', { url: `${nginx.url}/repo`, gpgVerify: false });
    const co = await partial.pull('origin', { refs: ['big'], commitOnly: true });
    expect(co.progress.fetched).toBeLessThan(10);
    expect((await partial.loadCommit('origin:big')).partial).toBe(true);

    const mirror = await fresh();
    await mirror.addRemote('moved', { url: 'http://127.0.0.1:9/nothing-here', gpgVerify: false });
    const m = await mirror.pull('moved', { refs: ['small/a'], url: `${nginx.url}/repo`, mirror: true });
    expect(m.refs).toEqual({ 'small/a': smallA });

    const priv = await fresh();
    await priv.addRemote('private', { url: `${nginx.url}/private`, gpgVerify: false });
    const denied = (await priv.pull('private', { refs: ['small/a'] }).catch((x: unknown) => x)) as OstreeError;
    expect(denied.code).toBe('HTTP_ERROR');
    expect(denied.message).toContain('403');
    const ok = await priv.pull('private', { refs: ['small/a'], httpHeaders: { 'X-Token': 's3cret' } });
    expect(ok.refs).toEqual({ 'private:small/a': smallA });
  });

  it('runs concurrent pulls into one repository: two from one handle, one from another handle, one ostree CLI process', async () => {
    const repo = await fresh();
    await repo.addRemote('origin', { url: `${nginx.url}/repo`, gpgVerify: false });
    const other = await Repo.open(repo.path, { disableFsync: true });
    const cli = run('ostree', [`--repo=${repo.path}`, 'pull', 'origin', 'small/b']);
    const [a, b, c] = await Promise.all([
      repo.pull('origin', { refs: ['big'] }),
      repo.pull('origin', { refs: ['small/a'] }),
      other.pull('origin', { refs: ['small/a'], mirror: true }),
    ]);
    const out = await cli;
    expect(out.code, out.stderr).toBe(0);
    expect(a.refs).toEqual({ 'origin:big': big });
    expect(b.refs).toEqual({ 'origin:small/a': smallA });
    expect(c.refs).toEqual({ 'small/a': smallA });
    expect(await repo.listRefs()).toEqual({ 'origin:big': big, 'origin:small/a': smallA, 'origin:small/b': smallB, 'small/a': smallA });
    expect(await repo.fsck()).toMatchObject({ ok: true, commitsChecked: 3 });
  });
});
