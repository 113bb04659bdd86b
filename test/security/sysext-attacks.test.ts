// Attacks on the systemd-sysext driver side, each attempt in a child process (node against
// dist/) so a crash or a hang fails the attempt instead of the run: Varlink services that
// answer garbage, hang up, stream forever or never answer, and a symlink planted where the
// service environment file goes.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTree, tempDir } from '../helpers/tmp.js';
import { attack } from './attack.js';

const dir = tempDir('sysext-attacks-');
const servers: Server[] = [];
afterAll(() => {
  servers.forEach((x) => x.close());
  removeTree(dir);
});

/** A Unix socket whose server answers each connection with `reply`. */
async function serve(name: string, reply: (c: Socket) => void): Promise<string> {
  const path = join(dir, `${name}.sock`);
  const srv = createServer((c) => c.once('data', () => reply(c)));
  servers.push(srv);
  await new Promise<void>((res) => srv.listen(path, res));
  return path;
}

/** Runs `call` (an expression over `driver`) in a child; resolves to what it threw or returned. */
async function client(socket: string, call: string, driverOpts = '{}'): Promise<Record<string, unknown>> {
  const out = await attack(
    `const driver = new lib.VarlinkDriver({ socket: args[0], ...${driverOpts} });
     try { const value = await (${call}); console.log(JSON.stringify({ value })); }
     catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, parameters: e.parameters })); }`,
    [socket],
    { timeoutMs: 30_000 },
  );
  expect(out.signal, out.stderr).toBeNull();
  expect(out.code, out.stderr).toBe(0);
  return out.report as Record<string, unknown>;
}

describe('the Varlink client against hostile services', () => {
  it('garbage and a hang-up are typed errors', async () => {
    const garbage = await serve('garbage', (c) => c.write('not json\0'));
    expect(await client(garbage, 'driver.merge()')).toMatchObject({ code: 'APPLY_FAILED', message: expect.stringMatching(/not JSON/) });
    const closes = await serve('closes', (c) => c.destroy());
    expect(await client(closes, 'driver.merge()')).toMatchObject({ code: 'DISCONNECTED' });
  });

  it('an endless stream ends at the reply limit; a call without more ends at the first reply', async () => {
    const endless = await serve('endless', (c) => {
      const chunk = Buffer.from(`${JSON.stringify({ parameters: { Name: 'x', Type: 'directory', Class: 'sysext' }, continues: true })}\0`.repeat(1000));
      const pump = (): void => {
        while (!c.destroyed && c.write(chunk));
        if (!c.destroyed) c.once('drain', pump);
      };
      pump();
      c.on('error', () => {});
    });
    expect(await client(endless, 'driver.list()')).toMatchObject({ code: 'APPLY_FAILED', message: expect.stringMatching(/more than 100000 replies/) });
    // Without 'more' the first reply ends the call, whatever it claims.
    expect(await client(endless, 'driver.merge()')).toEqual({ value: { log: '' } });
  });

  it('a silent service times out, or ends at an abort; a typed Varlink error keeps its parameters', async () => {
    const silent = await serve('silent', () => {});
    expect(await client(silent, 'driver.merge()', '{ timeoutMs: 300 }')).toMatchObject({
      code: 'APPLY_FAILED',
      message: expect.stringMatching(/no reply in 300 ms/),
    });
    expect(
      await client(silent, '(() => { const ac = new AbortController(); const p = driver.refresh({ signal: ac.signal }); ac.abort(); return p; })()'),
    ).toMatchObject({
      name: 'AbortError',
    });
    const typed = await serve('typed', (c) => c.write(`${JSON.stringify({ error: 'io.systemd.sysext.AlreadyMerged', parameters: { hierarchy: '/usr' } })}\0`));
    expect(await client(typed, 'driver.merge()')).toMatchObject({ code: 'ALREADY_MERGED', parameters: { hierarchy: '/usr' } });
  });
});

it('writes the service environment into run/ostree-sysext, never through a symlink planted there', async () => {
  const root = (name: string, build: (r: string) => void): string => {
    const r = join(dir, name);
    mkdirSync(join(r, 'usr/lib'), { recursive: true });
    writeFileSync(join(r, 'usr/lib/os-release'), 'ID=testos\n');
    build(r);
    return r;
  };
  const write = async (r: string): Promise<Record<string, unknown>> => {
    const out = await attack(
      `try { console.log(JSON.stringify({ value: await lib.writeServiceEnvironment(args[0], args[0]) })); }
       catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`,
      [r],
    );
    expect(out.code, out.stderr).toBe(0);
    return out.report as Record<string, unknown>;
  };
  const file = root('env-file', (r) => writeFileSync(join(r, 'opt'), 'not a directory\n'));
  expect(await write(file)).toEqual({ value: { SYSTEMD_SYSEXT_HIERARCHIES: '/usr' } });
  expect(readFileSync(join(file, 'run/ostree-sysext/systemd-sysext.env'), 'utf8')).toBe('SYSTEMD_SYSEXT_HIERARCHIES=/usr\n');
  const plain = root('env-plain', () => {});
  mkdirSync(join(plain, 'run/ostree-sysext'), { recursive: true });
  writeFileSync(join(plain, 'run/ostree-sysext/systemd-sysext.env'), 'stale\n');
  expect(await write(plain)).toEqual({ value: {} });
  expect(existsSync(join(plain, 'run/ostree-sysext/systemd-sysext.env'))).toBe(false); // nothing needed: removed
  // The attack: run/ostree-sysext is a symlink to somewhere else.
  const evil = root('env-evil', (r) => writeFileSync(join(r, 'opt'), 'x\n'));
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  mkdirSync(join(evil, 'run'));
  symlinkSync(elsewhere, join(evil, 'run/ostree-sysext'));
  expect(await write(evil)).toMatchObject({ code: 'APPLY_FAILED' });
  expect(existsSync(join(elsewhere, 'systemd-sysext.env'))).toBe(false);
});
