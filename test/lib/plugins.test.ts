import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { baseFromDirectory, type Base } from '../../lib/extension/base.js';
import { fileConflictPlugin, overlayView } from '../../lib/sets/overlay.js';
import { DeploymentSet, SetRefusedError } from '../../lib/sets/deployment-set.js';
import { mergeOffline } from '../../lib/sets/merge.js';
import { loadPluginDirectory, releaseCompatibilityPlugin, runVote } from '../../lib/sets/plugins.js';
import { executablePlugin } from '../../lib/sets/plugin-sandbox.js';
import { type Plugin, type PluginContext } from '../../lib/sets/plugin.js';
import { Repo } from '../../lib/binding/repo.js';
import { ExtensionStore } from '../../lib/extension/store.js';
import { makeTree } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('plugins-test-');
let repo: Repo;
let store: ExtensionStore;
let base: Base;
let n = 0;

function ext(name: string, files: Record<string, string>, release = 'ID=testos\nVERSION_ID=1\n'): string {
  const path = join(dir, `ext-${++n}`);
  makeTree(path, { [`usr/lib/extension-release.d/extension-release.${name}`]: release, ...files });
  return path;
}

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

async function ctx(names: string[]): Promise<PluginContext> {
  const set = new DeploymentSet({ repo: store.repo, osname: 'testos', base });
  for (const name of names) set.add(name);
  return { osname: 'testos', base, extensions: await set.members(), systemdVersion: 252 };
}

beforeAll(async () => {
  const baseDir = join(dir, 'base');
  makeTree(baseDir, { 'usr/lib/os-release': 'ID=testos\nVERSION_ID=1\n', 'usr/share/common/file': 'base version\n', 'usr/bin/tool': 'base tool\n' });
  base = await baseFromDirectory(baseDir);
  repo = await Repo.create(join(dir, 'repo'), { mode: 'bare-user-only', disableFsync: true });
  store = new ExtensionStore(repo);
  await store.installFromDirectory(ext('a', { 'usr/share/common/file': 'a version\n', 'usr/share/a/only': 'a\n' }));
  await store.installFromDirectory(ext('b', { 'usr/share/common/file': 'b version\n', 'usr/bin/tool': 'base tool\n' }));
  await store.installFromDirectory(ext('c', { 'usr/share/c/x': 'c\n' }));
  await store.installFromDirectory(ext('fedora', { 'usr/share/f/x': 'f\n' }, 'ID=fedora\n'));
});

describe('vote rounds', () => {
  const answer = (verdict: 'approve' | 'warn' | 'veto'): Plugin => ({ name: verdict, checkCompatible: async () => ({ verdict, message: `says ${verdict}` }) });

  it('takes the worst verdict; force passes warnings, never vetoes', async () => {
    const c = await ctx(['c']);
    expect((await runVote([answer('approve')], c)).accepted).toBe(true);
    const warned = await runVote([answer('approve'), answer('warn')], c);
    expect([warned.verdict, warned.accepted]).toEqual(['warn', false]);
    expect((await runVote([answer('warn')], c, { force: true })).accepted).toBe(true);
    const vetoed = await runVote([answer('warn'), answer('veto')], c, { force: true });
    expect([vetoed.verdict, vetoed.accepted, vetoed.forced]).toEqual(['veto', false, true]);
    expect(vetoed.votes.map((v) => [v.plugin, v.verdict, v.message])).toEqual([
      ['warn', 'warn', 'says warn'],
      ['veto', 'veto', 'says veto'],
    ]);
  });

  it('fails closed: a crash, a hang, or garbage is a veto with a clear message', async () => {
    const c = await ctx(['c']);
    const plugins: Plugin[] = [
      {
        name: 'crash',
        checkCompatible: async () => {
          throw new Error('boom');
        },
      },
      { name: 'hang', checkCompatible: () => new Promise(() => undefined) },
      { name: 'garbage', checkCompatible: async () => ({ verdict: 'maybe', message: 1 }) as never },
      { name: 'null', checkCompatible: async () => null as never },
    ];
    const r = await runVote(plugins, c, { timeoutMs: 300 });
    expect(r.votes.map((v) => v.verdict)).toEqual(['veto', 'veto', 'veto', 'veto']);
    expect(r.votes[0]!.message).toMatch(/crash failed: boom/);
    expect(r.votes[1]!.message).toMatch(/did not answer within 300 ms/);
    expect(r.votes[2]!.message).toMatch(/not a vote/);
    expect(r.accepted).toBe(false);
  });

  it('runs executables with JSON in and out, and fails closed on their faults', async () => {
    const c = await ctx(['a', 'c']);
    const ok = script(
      'ok',
      `read -r input; case "$input" in *'"name":"a"'*) echo '{"verdict":"warn","message":"saw a"}';; *) echo '{"verdict":"veto","message":"no a"}';; esac`,
    );
    const crash = script('crash', 'echo dying >&2; exit 3');
    const hang = script('hang', 'sleep 30');
    const junk = script('junk', 'echo not json');
    // Confinement (as root) costs about half a second per call on a busy machine.
    const r = await runVote([executablePlugin(ok), executablePlugin(crash), executablePlugin(hang), executablePlugin(junk)], c, { timeoutMs: 5000 });
    expect(r.votes.map((v) => [v.plugin, v.verdict])).toEqual([
      ['ok', 'warn'],
      ['crash', 'veto'],
      ['hang', 'veto'],
      ['junk', 'veto'],
    ]);
    expect(r.votes[0]!.message).toBe('saw a');
    expect(r.votes[1]!.message).toMatch(/exited with code 3: .*dying/);
    expect(r.votes[3]!.message).toMatch(/not JSON/);
  });

  it('loads modules and executables from a plugin directory, a broken module as a veto', async () => {
    const pdir = join(dir, 'plugins');
    mkdirSync(pdir);
    writeFileSync(
      join(pdir, '10-module.mjs'),
      `export default { name: 'mod', async checkCompatible(ctx) { return { verdict: 'approve', message: 'n=' + ctx.extensions.length }; } };\n`,
    );
    writeFileSync(join(pdir, '20-broken.mjs'), 'export default {;\n');
    writeFileSync(join(pdir, 'README'), 'not a plugin\n');
    const exe = join(pdir, '30-exe');
    writeFileSync(exe, `#!/bin/sh\ncat >/dev/null; echo '{"verdict":"approve","message":"exe"}'\n`);
    chmodSync(exe, 0o755);
    const plugins = await loadPluginDirectory(pdir);
    expect(plugins.map((p) => p.name)).toEqual(['mod', '20-broken.mjs', '30-exe']);
    const r = await runVote(plugins, await ctx(['a', 'c']));
    expect(r.votes.map((v) => [v.plugin, v.verdict, v.message.slice(0, 22)])).toEqual([
      ['mod', 'approve', 'n=2'],
      ['20-broken.mjs', 'veto', 'plugin module ' + pdir.slice(0, 8)],
      ['30-exe', 'approve', 'exe'],
    ]);
    expect(await loadPluginDirectory(join(dir, 'missing'))).toEqual([]);
  });
});

describe('built-in plugins', () => {
  it('release compatibility vetoes an extension for another OS, naming it', async () => {
    const r = await runVote([releaseCompatibilityPlugin], await ctx(['c', 'fedora']));
    expect(r.verdict).toBe('veto');
    expect(r.votes[0]!.message).toMatch(/^fedora: /);
    expect((r.votes[0]!.details as Array<{ name: string; reason: { code: string } }>)[0]).toMatchObject({ name: 'fedora', reason: { code: 'ID_MISMATCH' } });
  });

  it('file conflicts: every conflicting path, its providers and the winner in systemd order', async () => {
    const r = await runVote([fileConflictPlugin], await ctx(['b', 'a', 'c']));
    expect(r.verdict).toBe('warn');
    // usr/bin/tool: b ships the same bytes as the base, so it is no conflict.
    expect(r.votes[0]!.details).toEqual([
      { path: 'usr/share/common/file', kind: 'content', providers: ['base', 'a', 'b'], types: ['file', 'file', 'file'], winner: 'b' },
    ]);
    expect((await runVote([fileConflictPlugin], await ctx(['c']))).verdict).toBe('approve');
  });

  it('the merged view shows what overlayfs would', async () => {
    const members = (await ctx(['a', 'b'])).extensions;
    const view = await overlayView(base, members);
    expect(String(await view.readFile('usr/share/common/file'))).toBe('b version\n');
    expect(String(await view.readFile('usr/share/a/only'))).toBe('a\n');
    expect((await view.list('usr/share'))!.map((e) => e.name)).toEqual(['a', 'common']);
    expect((await view.list(''))!.map((e) => e.name)).toEqual(['usr']);
    expect(await view.stat('usr/share/nothing')).toBeNull();
  });
});

describe('sets and offline merges', () => {
  it('a refused set writes nothing; a forced warning passes and state files are committed', async () => {
    const refused = new DeploymentSet({ repo: store.repo, osname: 'p1', base }).add('a').add('b');
    const e = await refused.commit().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SetRefusedError);
    expect((e as SetRefusedError).code).toBe('SET_REFUSED');
    expect(await DeploymentSet.current(store.repo, 'p1')).toBeNull();

    const writer: Plugin = {
      name: 'writer',
      async deployFinish(c) {
        const winner = String(await c.merged.readFile('usr/share/common/file'));
        writeFileSync(join(c.stateDir, 'winner.txt'), winner);
      },
    };
    const { record, report } = await new DeploymentSet({ repo: store.repo, osname: 'p1', base, plugins: [writer] }).add('a').add('b').commit({ force: true });
    expect(report.forced).toBe(true);
    expect(record.votes?.verdict).toBe('warn');
    expect(String(await repo.readFile(record.commit, '/state/winner.txt'))).toBe('b version\n');
  });

  it('merges offline into a commit whose metadata names its parts', async () => {
    const repoBase = await Repo.create(join(dir, 'merge-repo'), { mode: 'bare-user-only', disableFsync: true });
    const s2 = new ExtensionStore(repoBase);
    const a = await s2.installFromDirectory(ext('a', { 'usr/share/common/file': 'a version\n' }));
    const b = await s2.installFromDirectory(ext('b', { 'usr/share/common/file': 'b version\n', 'opt/b/x': 'opt\n' }));
    const osDir = join(dir, 'os-with-opt');
    makeTree(osDir, { 'usr/lib/os-release': 'ID=testos\n', 'opt/.keep': '' });
    const osCommit = await repoBase.commit({ tree: osDir, ref: 'os/main' });
    const { commit, order } = await mergeOffline({
      repo: repoBase,
      base: await (await import('../../lib/extension/base.js')).baseFromCommit(repoBase, 'os/main'),
      extensions: [
        { name: 'b', commit: b.commit, kind: 'sysext' },
        { name: 'a', commit: a.commit, kind: 'sysext' },
      ],
      commit: { ref: 'os/main-merged', subject: 'merged' },
    });
    expect(order).toEqual(['a', 'b']);
    expect(await repoBase.resolve('os/main-merged')).toBe(commit);
    expect(String(await repoBase.readFile(commit!, '/usr/share/common/file'))).toBe('b version\n');
    expect(String(await repoBase.readFile(commit!, '/opt/b/x'))).toBe('opt\n');
    const meta = (await repoBase.loadCommit(commit!)).metadata;
    expect(meta['ostree-sysext.merge.base']).toBe(osCommit);
    expect(meta['ostree-sysext.merge.extensions']).toEqual({ a: a.commit, b: b.commit });
    // Nothing is left behind next to the repository.
    expect(readFileSync(join(repoBase.path, 'config'), 'utf8')).toContain('[core]');
  });
});
