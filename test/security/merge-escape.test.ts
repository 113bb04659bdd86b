// The offline merge as an attacker would use it: symlinks in the base and in lower extensions
// that point outside the target (absolute host paths, relative climbs, a chain of two links
// that looks harmless to a lexical check), with a higher extension shipping a directory of the
// same name. Each merge runs in a child process (a crash fails the test); canary directories
// outside the target must stay empty, and the merged tree must show what systemd shows there.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { childEnv } from '../helpers/child.js';
import { makeTree, type TreeSpec } from '../helpers/fixtures.js';
import { removeTree, tempDir } from '../helpers/tmp.js';

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'lib', 'index.js');
const CHILD = `
const [dist, spec] = process.argv.slice(1);
const { Repo, baseFromDirectory, mergeOffline } = await import(dist);
const s = JSON.parse(spec);
const repo = await Repo.open(s.repo);
const base = await baseFromDirectory(s.base);
const r = await mergeOffline({ repo, base, extensions: s.extensions, ...(s.directory ? { directory: s.directory } : { commit: { ref: s.ref } }) });
process.stdout.write(JSON.stringify(r));
`;

let dir: string;
let repo: Repo;
const release = (name: string): TreeSpec => ({ [`usr/lib/extension-release.d/extension-release.${name}`]: 'ID=testos\n' });

beforeAll(async () => {
  dir = tempDir('merge-escape-');
  repo = await Repo.create(join(dir, 'repo'), { mode: 'bare-user' });
});
afterAll(() => {
  repo.close();
  removeTree(dir);
});

interface Attack {
  name: string;
  base: (canary: string) => TreeSpec;
  /** Extensions bottom to top (their names sort in this order). */
  extensions: Array<(canary: string) => TreeSpec>;
  /** What the merged tree must show, relative to its root. */
  expect: (root: string, canary: string) => void;
}

const attacks: Attack[] = [
  {
    name: 'a base symlink to an absolute host directory, an extension directory of that name',
    base: (c) => ({ 'usr/share/x': { symlink: c } }),
    extensions: [() => ({ 'usr/share/x/f': 'from a\n' })],
    expect: (root) => {
      expect(lstatSync(join(root, 'usr/share/x')).isDirectory()).toBe(true);
      expect(readFileSync(join(root, 'usr/share/x/f'), 'utf8')).toBe('from a\n');
    },
  },
  {
    name: 'a base symlink climbing out of the base tree',
    base: () => ({ 'usr/share/y': { symlink: '../../../outside' } }),
    extensions: [() => ({ 'usr/share/y/f': 'from a\n' })],
    expect: (root) => expect(readdirSync(join(root, 'usr/share/y'))).toEqual(['f']),
  },
  {
    name: 'a lower extension ships opt/x -> an absolute host path, a higher one the directory opt/x',
    base: () => ({ 'opt/keep': 'k\n' }),
    extensions: [(c) => ({ 'opt/x': { symlink: c } }), () => ({ 'opt/x/f': 'from b\n' })],
    expect: (root) => expect(readdirSync(join(root, 'opt/x'))).toEqual(['f']),
  },
  {
    name: 'two links that look harmless alone: usr/lib/s -> /usr and usr/lib/e -> s/../..<host dir>',
    base: () => ({}),
    extensions: [(c) => ({ 'usr/lib/s': { symlink: '/usr' }, 'usr/lib/e': { symlink: `s/../..${c}` } }), () => ({ 'usr/lib/e/file': 'from b\n' })],
    expect: (root) => {
      expect(readdirSync(join(root, 'usr/lib/e'))).toEqual(['file']);
      expect(lstatSync(join(root, 'usr/lib/s')).isSymbolicLink()).toBe(true);
    },
  },
  {
    name: 'a base whose opt is a symlink to an absolute host directory (chased inside the root, as systemd does)',
    base: (c) => ({ opt: { symlink: c } }),
    extensions: [() => ({ 'opt/app/f': 'from a\n' })],
    expect: (root, canary) => {
      expect(lstatSync(join(root, 'opt')).isSymbolicLink()).toBe(true);
      // systemd mounts the merged /opt on ROOT/<target>, creating it: so does the offline merge.
      expect(readFileSync(join(root, canary, 'app/f'), 'utf8')).toBe('from a\n');
    },
  },
];

describe('offline merges never write outside their target', () => {
  for (const [i, attack] of attacks.entries()) {
    for (const output of ['directory', 'commit'] as const) {
      it(`${attack.name} (into a ${output})`, async () => {
        const t = join(dir, `case-${i}-${output}`);
        const canary = join(t, 'canary');
        mkdirSync(canary, { recursive: true });
        writeFileSync(join(t, 'canary-marker'), '');
        makeTree(join(t, 'base'), { 'usr/lib/os-release': 'ID=testos\n', ...attack.base(canary) });
        const extensions = [];
        for (const [j, make] of attack.extensions.entries()) {
          const name = `e${j}`;
          const src = join(t, name);
          makeTree(src, { ...release(name), ...make(canary) });
          extensions.push({ name, commit: await repo.commit({ tree: src }), kind: 'sysext' });
        }
        const target = join(t, 'merged');
        const spec = { repo: repo.path, base: join(t, 'base'), extensions, ...(output === 'directory' ? { directory: target } : { ref: `merged/${i}` }) };
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, DIST, JSON.stringify(spec)], {
          env: childEnv,
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(r.signal, r.stderr).toBeNull();
        expect(r.status, r.stderr).toBe(0);
        // Nothing reached the canary, whatever the links pointed at.
        expect(readdirSync(canary)).toEqual([]);
        expect(existsSync(join(t, 'outside'))).toBe(false);
        let root = target;
        if (output === 'commit') {
          root = join(t, 'checkout');
          const result = JSON.parse(r.stdout) as { commit: string };
          await repo.checkout(result.commit, root, { mode: 'user' });
        }
        attack.expect(root, canary);
      });
    }
  }
});
