// Repo.setConfig with groups and keys GKeyFile cannot read back: each attempt runs in a child,
// must be an ArgumentError, and the repository must still open with its config unchanged.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/binding/repo.js';
import { tempDir } from '../helpers/tmp.js';
import { attack, REPORT } from './attack.js';

const dir = tempDir('config-keys-');
const repoPath = join(dir, 'repo');

beforeAll(async () => {
  (await Repo.create(repoPath, { mode: 'bare-user-only', disableFsync: true })).close();
});

const SET = `${REPORT}
const repo = await lib.Repo.open(args[0]);
await report(repo.setConfig(JSON.parse(args[1]), JSON.parse(args[2]), JSON.parse(args[3])));`;

async function setInChild(group: string, key: string, value: string) {
  return attack(SET, [repoPath, JSON.stringify(group), JSON.stringify(key), JSON.stringify(value)]);
}

const refused: Array<[string, string, string]> = [
  ['key with a newline', 'core', 'x\ny'],
  ['key with a newline that starts a group', 'ostree-sysext', 'a\n[core]\nmode'],
  ['key with ]', 'ostree-sysext', 'a]b'],
  ['key with [', 'ostree-sysext', 'a[b'],
  ['key with an unclosed locale', 'ostree-sysext', 'name[de'],
  ['key with a locale suffix (config() would not show it)', 'ostree-sysext', 'name[de_DE]'],
  ['key with a leading space', 'ostree-sysext', ' lead'],
  ['key with a trailing space', 'ostree-sysext', 'trail '],
  ['key with =', 'ostree-sysext', 'a=b'],
  ['key that is a comment', 'ostree-sysext', '#hidden'],
  ['key with a tab', 'ostree-sysext', 'a\tb'],
  ['key with a carriage return', 'ostree-sysext', 'a\rb'],
  ['key with NUL', 'ostree-sysext', 'a\0b'],
  ['group with ]', 'ostree-sysext]x', 'k'],
  ['group with [', '[x', 'k'],
  ['group with a newline', 'ostree\nsysext', 'k'],
  ['group with a control character', 'ostree\x07sysext', 'k'],
];

describe('setConfig refuses what GKeyFile cannot read back', () => {
  for (const [what, group, key] of refused) {
    it(what, async () => {
      const before = readFileSync(join(repoPath, 'config'), 'utf8');
      const r = await setInChild(group, key, 'v');
      expect(r.code, r.stderr).toBe(0);
      expect(r.report).toMatchObject({ ok: false, name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
      expect(readFileSync(join(repoPath, 'config'), 'utf8')).toBe(before);
      const repo = await Repo.open(repoPath);
      repo.close();
    });
  }

  it('a value with a newline or carriage return is refused too', async () => {
    for (const v of ['a\nb', 'a\rb']) {
      const r = await setInChild('ostree-sysext', 'k', v);
      expect(r.report).toMatchObject({ ok: false, code: 'ERR_INVALID_ARG_VALUE' });
    }
  });

  it('valid groups and keys round-trip exactly (spaces inside, quotes in groups, non-ASCII)', async () => {
    const ok: Array<[string, string, string]> = [
      ['ostree-sysext', 'middle space', 'v1'],
      ['remote "vendor"', 'url', 'https://example.com/repo'],
      ['ostree-sysext "ext/a b"', 'builder', 'directory'],
      ['ostree-sysext', 'ünïcode-kéy', 'v3'],
    ];
    for (const [g, k, v] of ok) {
      const r = await setInChild(g, k, v);
      expect(r.report, r.stderr).toMatchObject({ ok: true });
    }
    const repo = await Repo.open(repoPath);
    try {
      const c = repo.config();
      for (const [g, k, v] of ok) expect(c[g]?.[k], `${g}.${k}`).toBe(v);
    } finally {
      repo.close();
    }
  });
});
