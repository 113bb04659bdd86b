// Which hierarchies the systemd-sysext driver lets systemd merge in a root: a hierarchy that
// cannot be mounted there (absent in an immutable root, as in an OSTree deployment without /opt)
// is left out with SYSTEMD_SYSEXT_HIERARCHIES, since 257 and later fail the whole merge on it.
// The real merge on 252, 254, 257 and 262 is test/e2e/sets-live.test.ts (in the versions chroots).
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { mergeableHierarchies, sysextEnvironment } from '../../lib/sets/sysext.js';
import { describeAsRoot } from '../helpers/root.js';
import { removeTree, tempDir } from '../helpers/tmp.js';

const dir = tempDir('sysext-env-');
const immutable: string[] = [];
afterAll(() => {
  for (const d of immutable) execFileSync('chattr', ['-i', d]);
  removeTree(dir);
});

function root(name: string, build: (r: string) => void): string {
  const r = join(dir, name);
  mkdirSync(join(r, 'usr/lib'), { recursive: true });
  writeFileSync(join(r, 'usr/lib/os-release'), 'ID=testos\n');
  build(r);
  return r;
}

it('keeps every hierarchy that exists, or that systemd can create in a writable root', async () => {
  const plain = root('plain', () => {});
  expect(await mergeableHierarchies(plain)).toEqual(['usr', 'opt']);
  expect(await sysextEnvironment('merge', plain, {})).toEqual({});
  const linked = root('linked', (r) => {
    mkdirSync(join(r, 'var/opt'), { recursive: true });
    symlinkSync('/var/opt', join(r, 'opt')); // absolute: chased inside the root, as systemd does
  });
  expect(await mergeableHierarchies(linked)).toEqual(['usr', 'opt']);
  const file = root('file', (r) => writeFileSync(join(r, 'opt'), 'not a directory\n'));
  expect(await mergeableHierarchies(file)).toEqual(['usr']);
  expect(await sysextEnvironment('refresh', file, {})).toEqual({ SYSTEMD_SYSEXT_HIERARCHIES: '/usr' });
});

describeAsRoot('an immutable root (chattr +i, as an OSTree deployment)', () => {
  it('leaves out a hierarchy it lacks, for merge and refresh only, and keeps a caller-set list', async () => {
    const deploy = root('deploy', (r) => {
      mkdirSync(join(r, 'var'));
      symlinkSync('var/missing-opt', join(r, 'srv'));
    });
    execFileSync('chattr', ['+i', deploy]);
    immutable.push(deploy);
    expect(await mergeableHierarchies(deploy)).toEqual(['usr']);
    expect(await mergeableHierarchies(deploy, ['usr', 'srv'])).toEqual(['usr', 'srv']); // var/ is writable: systemd can mkdir there
    for (const action of ['merge', 'refresh'] as const) {
      expect(await sysextEnvironment(action, deploy, { PATH: '/bin' })).toEqual({ PATH: '/bin', SYSTEMD_SYSEXT_HIERARCHIES: '/usr' });
    }
    expect(await sysextEnvironment('unmerge', deploy, {})).toEqual({});
    expect(await sysextEnvironment('merge', deploy, { SYSTEMD_SYSEXT_HIERARCHIES: '/usr:/opt' })).toEqual({ SYSTEMD_SYSEXT_HIERARCHIES: '/usr:/opt' });
    const withOpt = root('deploy-opt', (r) => mkdirSync(join(r, 'opt')));
    execFileSync('chattr', ['+i', withOpt]);
    immutable.push(withOpt);
    expect(await mergeableHierarchies(withOpt)).toEqual(['usr', 'opt']);
  });
});

// The attacks (hostile Varlink services, a planted symlink) run in child processes:
// test/security/sysext-attacks.test.ts.
