// Plain arguments that took the process down (issue 12): a 200 KB path overflowed a worker's
// stack in libostree's path resolution; a metadata value whose getter answers differently
// after validation (deep or cyclic) overflowed the native conversion, whose depth counter
// restarted at every dictionary. Each attack runs in a child process, so a crash fails it.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { childEnv } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { writeExtensionTree } from './corrupt.js';

const dist = process.env.OSX_ADV_DIST ?? resolve(import.meta.dirname, '../../dist/lib/index.js');
const dir = tempDir('osx-args-');
const repoPath = join(dir, 'repo');
let commit = '';

/** Runs `body` (an async function body with `lib`, `repo`, `commit` in scope) in a child; returns its JSON answer. */
function attack(body: string): { signal: NodeJS.Signals | null; status: number | null; out: Record<string, unknown>; stderr: string } {
  const src = `
const [dist, repoPath, commit] = process.argv.slice(1);
const lib = await import(dist);
const repo = await lib.Repo.open(repoPath);
const describe = (e) => ({ error: true, name: e?.constructor?.name, code: e?.code, message: String(e?.message).slice(0, 200) });
let out;
try { out = await (async () => { ${body} })(); } catch (e) { out = describe(e); }
console.log(JSON.stringify(out ?? { ok: true }));
repo.close();
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', src, dist, repoPath, commit], {
    env: childEnv,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 16 << 20,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return { signal: r.signal, status: r.status, out: line.startsWith('{') ? JSON.parse(line) : {}, stderr: r.stderr.slice(-500) };
}

beforeAll(async () => {
  const tree = join(dir, 'tree');
  writeExtensionTree(tree);
  const repo = await Repo.create(repoPath, { mode: 'bare-user-only', disableFsync: true });
  try {
    commit = await repo.commit({ tree, ref: 'x' });
  } finally {
    repo.close();
  }
});

describe('paths longer than the file system allows are refused before native code', () => {
  const HUGE = `'/' + 'a/'.repeat(1e5)`;
  for (const [name, call] of [
    ['readFile', `repo.readFile(commit, ${HUGE})`],
    ['stat', `repo.stat(commit, ${HUGE})`],
    ['listDir', `repo.listDir(commit, ${HUGE})`],
    ['readLink', `repo.readLink(commit, ${HUGE})`],
    ['query', `repo.query(commit, [{ op: 'stat', path: ${HUGE}, optional: true }])`],
    ['queryMany', `repo.queryMany([{ rev: commit, ops: [{ op: 'list', path: ${HUGE}, optional: true }] }])`],
    ['checkout subpath', `repo.checkout(commit, '${dir}/co-huge', { subpath: ${HUGE} })`],
    ['commitReader.stat', `lib.commitReader(repo, commit).stat(${HUGE})`],
    ['a 300-byte component', `repo.stat(commit, '/usr/' + 'n'.repeat(300))`],
  ] as const) {
    it(`${name}: an ArgumentError, the process survives`, () => {
      const r = attack(`return await ${call};`);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status).toBe(0);
      expect(r.out).toMatchObject({ error: true, name: 'ArgumentError' });
      expect(String(r.out.message)).toMatch(/PATH_MAX|NAME_MAX/);
    });
  }

  it('control: a path of 4,000 bytes is read as usual (not found, typed)', () => {
    const r = attack(`return await repo.stat(commit, '/' + 'a/'.repeat(2000));`);
    expect(r.signal).toBeNull();
    expect(r.out).toMatchObject({ error: true, name: 'OstreeError', code: 'NOT_FOUND' });
  });
});

describe('metadata is converted from the snapshot that was validated', () => {
  it('a getter that turns cyclic after validation: the commit stores what was validated', () => {
    const r = attack(`
      let reads = 0;
      const cyclic = {}; cyclic.self = cyclic;
      const meta = { get tricky() { reads++; return reads === 1 ? 'fine' : cyclic; } };
      const c = await repo.commit({ tree: '${dir}/tree', ref: 'getter', metadata: meta });
      return { reads, value: (await repo.loadCommit(c)).metadata.tricky };
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.out).toEqual({ reads: 1, value: 'fine' });
  });

  it('a getter that turns 100,000 levels deep after validation: the same', () => {
    const r = attack(`
      let deep = 'bottom';
      for (let i = 0; i < 100000; i++) deep = { d: deep };
      let reads = 0;
      const meta = { get tricky() { reads++; return reads === 1 ? 'fine' : deep; } };
      await repo.writeDetachedMetadata(commit, meta);
      const c = await repo.loadCommit(commit);
      return { reads, value: c.detachedMetadata.tricky };
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.out).toEqual({ reads: 1, value: 'fine' });
  });

  it('a cyclic or 100,000-deep value is refused (RangeError), not converted', () => {
    for (const build of ['const v = {}; v.v = v;', "let v = 'x'; for (let i = 0; i < 100000; i++) v = i % 2 ? { d: v } : [v];"]) {
      const r = attack(`${build} return await repo.commit({ tree: '${dir}/tree', metadata: { v } });`);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.out).toMatchObject({ error: true, name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    }
  });

  it('the native conversion bounds depth across dictionaries itself (lib/ bypassed)', () => {
    // Before: the counter restarted at each dictionary, so nested dictionaries recursed until
    // the stack overflowed.
    const r = attack(`
      let v = 'x';
      for (let i = 0; i < 100000; i++) v = { d: v };
      try { await repo._native.writeDetachedMetadata(commit, { v }, undefined); return { converted: true }; }
      catch (e) { return { error: true, name: e.constructor.name, message: e.message }; }
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.out).toMatchObject({ error: true, name: 'RangeError', message: expect.stringMatching(/nested too deeply/) });
  });

  it('a Uint8Array changed after the call was made does not change what is stored', () => {
    const r = attack(`
      const bytes = new Uint8Array([1, 2, 3]);
      const p = repo.commit({ tree: '${dir}/tree', metadata: { bytes } });
      bytes[0] = 9;
      const c = await p;
      return { stored: Array.from((await repo.loadCommit(c)).metadata.bytes) };
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.out).toEqual({ stored: [1, 2, 3] });
  });
});
