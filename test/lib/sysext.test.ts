// Which hierarchies the systemd-sysext driver lets systemd merge in a root: a hierarchy that
// cannot be mounted there (absent in an immutable root, as in an OSTree deployment without /opt)
// is left out with SYSTEMD_SYSEXT_HIERARCHIES, since 257 and later fail the whole merge on it.
// The real merge on 252, 254, 257 and 262 is test/e2e/sets-live.test.ts (in the versions chroots).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeableHierarchies, sysextEnvironment, writeServiceEnvironment } from '../../lib/sets/sysext.js';
import { VarlinkDriver } from '../../lib/sets/sysext-driver.js';
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

it('writes the service environment atomically into run/ostree-sysext, never through a symlink planted there', async () => {
  const file = root('env-file', (r) => writeFileSync(join(r, 'opt'), 'not a directory\n'));
  expect(await writeServiceEnvironment(file, file)).toEqual({ SYSTEMD_SYSEXT_HIERARCHIES: '/usr' });
  expect(readFileSync(join(file, 'run/ostree-sysext/systemd-sysext.env'), 'utf8')).toBe('SYSTEMD_SYSEXT_HIERARCHIES=/usr\n');
  const plain = root('env-plain', () => {});
  mkdirSync(join(plain, 'run/ostree-sysext'), { recursive: true });
  writeFileSync(join(plain, 'run/ostree-sysext/systemd-sysext.env'), 'stale\n');
  expect(await writeServiceEnvironment(plain, plain)).toEqual({});
  expect(existsSync(join(plain, 'run/ostree-sysext/systemd-sysext.env'))).toBe(false); // nothing needed: removed
  // The attack: run/ostree-sysext is a symlink to somewhere else.
  const evil = root('env-evil', (r) => writeFileSync(join(r, 'opt'), 'x\n'));
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  mkdirSync(join(evil, 'run'));
  symlinkSync(elsewhere, join(evil, 'run/ostree-sysext'));
  await expect(writeServiceEnvironment(evil, evil)).rejects.toMatchObject({ code: 'APPLY_FAILED' });
  expect(existsSync(join(elsewhere, 'systemd-sysext.env'))).toBe(false);
});

describe('the Varlink client against hostile services', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((x) => x.close()));
  /** A Unix socket whose server answers each connection with `reply`. */
  async function serve(name: string, reply: (c: Socket) => void): Promise<string> {
    const path = join(dir, `${name}.sock`);
    const srv = createServer((c) => c.once('data', () => reply(c)));
    servers.push(srv);
    await new Promise<void>((res) => srv.listen(path, res));
    return path;
  }
  it('a typed error for garbage, a close, an endless stream, a silent service; a plain reply for a call without more', async () => {
    const garbage = await serve('garbage', (c) => c.write('not json\0'));
    await expect(new VarlinkDriver({ socket: garbage }).merge()).rejects.toMatchObject({ code: 'APPLY_FAILED', message: /not JSON/ });
    const closes = await serve('closes', (c) => c.destroy());
    await expect(new VarlinkDriver({ socket: closes }).merge()).rejects.toMatchObject({ code: 'DISCONNECTED' });
    const endless = await serve('endless', (c) => {
      const chunk = Buffer.from(`${JSON.stringify({ parameters: { Name: 'x', Type: 'directory', Class: 'sysext' }, continues: true })}\0`.repeat(1000));
      const pump = () => {
        while (!c.destroyed && c.write(chunk));
        if (!c.destroyed) c.once('drain', pump);
      };
      pump();
      c.on('error', () => {});
    });
    await expect(new VarlinkDriver({ socket: endless }).list()).rejects.toMatchObject({ code: 'APPLY_FAILED', message: /more than 100000 replies/ });
    // Without 'more' the first reply ends the call, whatever it claims.
    await expect(new VarlinkDriver({ socket: endless }).merge()).resolves.toEqual({ log: '' });
    const silent = await serve('silent', () => {});
    await expect(new VarlinkDriver({ socket: silent, timeoutMs: 300 }).merge()).rejects.toMatchObject({ code: 'APPLY_FAILED', message: /no reply in 300 ms/ });
    const ac = new AbortController();
    const pending = new VarlinkDriver({ socket: silent }).refresh({ signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    const typed = await serve('typed', (c) => c.write(`${JSON.stringify({ error: 'io.systemd.sysext.AlreadyMerged', parameters: { hierarchy: '/usr' } })}\0`));
    await expect(new VarlinkDriver({ socket: typed }).merge()).rejects.toMatchObject({ code: 'ALREADY_MERGED', parameters: { hierarchy: '/usr' } });
  });
});
