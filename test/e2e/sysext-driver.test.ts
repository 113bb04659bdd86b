// The two systemd drivers against the real systemd: the command (every version) and Varlink
// (io.systemd.sysext, 255 and later — here 257 and 262 in the versions chroots). The service is
// socket-activated the way systemd-sysext.socket does it (Accept=yes, fd named "varlink") for a
// test root, in a private mount namespace. Both drivers run the same sequence, sysexts and
// confexts; their results must be identical, errors included.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { systemdRules, type SystemdInfo } from '../../lib/extension/compat.js';
import { detectSystemd } from '../../lib/extension/systemd-detect.js';
import { CommandDriver, sysextDriver, SysextDriverError, VarlinkDriver } from '../../lib/sets/sysext-driver.js';
import { SysextError } from '../../lib/sets/sysext.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInPrivateMountNamespace } from '../helpers/sysext.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('sysext-driver-');

function makeRoot(root: string): void {
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  writeFileSync(join(root, 'usr/lib/os-release'), 'ID=debian\nVERSION_ID=12\n');
  for (const [kind, name, rel, file] of [
    ['extensions', 'e1', 'usr/lib/extension-release.d', 'usr/share/e1/f'],
    ['extensions', 'e2', 'usr/lib/extension-release.d', 'usr/share/e2/f'],
    ['confexts', 'c1', 'etc/extension-release.d', 'etc/c1/app.conf'],
  ] as const) {
    const ext = join(root, 'var/lib', kind, name);
    mkdirSync(join(ext, rel), { recursive: true });
    writeFileSync(join(ext, rel, `extension-release.${name}`), 'ID=_any\n');
    mkdirSync(join(ext, file, '..'), { recursive: true });
    writeFileSync(join(ext, file), `${name}\n`);
  }
}

// Runs inside the namespace: the same sequence over each driver, printed as one JSON line.
const DRIVER = (dist: string) => `import { CommandDriver, VarlinkDriver, sysextDriver, mergedExtensions, SysextError } from ${JSON.stringify(dist)};
import { renameSync } from 'node:fs';
const [root, socket, varlink, confext] = process.argv.slice(2);
const names = async (d) => (await d.list()).map((i) => [i.name, i.class]).sort();
async function seq(d, h) {
  const o = { list: await names(d) };
  await d.merge();
  o.state = (await mergedExtensions(root, [h]))[h];
  try { await d.merge(); o.again = null; } catch (e) { o.again = [e instanceof SysextError, e.code, e.parameters]; }
  await d.refresh();
  o.refreshed = (await mergedExtensions(root, [h]))[h];
  await d.unmerge();
  o.after = (await mergedExtensions(root, [h]))[h];
  return o;
}
const out = {};
out.command = await seq(new CommandDriver({ root }), 'usr');
if (confext === '1') out.commandConfext = await seq(new CommandDriver({ root, class: 'confext' }), 'etc');
if (varlink === '1') {
  out.varlink = await seq(new VarlinkDriver({ socket }), 'usr');
  out.varlinkConfext = await seq(new VarlinkDriver({ socket, class: 'confext' }), 'etc');
  out.auto = (await sysextDriver({ root, socket })).transport;
}
// No images at all: both list [] (Varlink answers NoImagesFound).
renameSync(root + '/var/lib/extensions', root + '/var/lib/extensions-hidden');
out.emptyCommand = await names(new CommandDriver({ root }));
if (varlink === '1') out.emptyVarlink = await names(new VarlinkDriver({ socket }));
console.log(JSON.stringify(out));
`;

const SCRIPT = `
set -e
root=$1; sock=$2; varlink=$3; node=$4; driver=$5; confext=$6
mount --bind "$root" "$root" && mount --make-shared "$root"
pid=
if [ "$varlink" = 1 ]; then
  systemd-socket-activate --accept --fdname=varlink -l "$sock" systemd-sysext --root="$root" 2>"$root.activate.log" &
  pid=$!
  for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
fi
rc=0
"$node" "$driver" "$root" "$sock" "$varlink" "$confext" || rc=$?
[ -z "$pid" ] || kill "$pid"
exit $rc
`;

describeAsRoot('the command and Varlink drivers of systemd-sysext', () => {
  let systemd: SystemdInfo;
  beforeAll(async () => {
    systemd = (await detectSystemd())!;
  });

  it('is chosen by the installed systemd: Varlink from 255 where the socket serves the root, else the command', async () => {
    const sock = join(dir, 'no-such.sock');
    expect((await sysextDriver({ root: '/', systemd: systemdRules(257), socket: sock })).transport).toBe('command'); // no socket
    writeFileSync(join(dir, 'plain-file'), '');
    expect((await sysextDriver({ root: '/', systemd: systemdRules(254), socket: join(dir, 'plain-file') })).transport).toBe('command'); // 254: none
    expect((await sysextDriver({ root: '/', systemd: systemdRules(257), socket: join(dir, 'plain-file') })).transport).toBe('varlink');
    expect((await sysextDriver({ root: dir, systemd: systemdRules(257) })).transport).toBe('command'); // the system socket serves / only
    expect((await sysextDriver({ transport: 'varlink', socket: sock })).transport).toBe('varlink');
    // A socket that is not there: a typed error, not a hang or a crash.
    const err = await new VarlinkDriver({ socket: sock }).merge().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SysextDriverError);
    expect(err).toBeInstanceOf(SysextError);
    expect(err).toMatchObject({ code: 'NOT_AVAILABLE' });
    expect(() => new VarlinkDriver({ class: 'both' as never })).toThrow(/class/);
    expect(() => new CommandDriver({ root: '' })).toThrow(/root/);
  });

  it('gives the same results over both (merge, already merged, refresh, unmerge, list; sysexts and confexts)', async () => {
    const root = join(dir, 'root');
    makeRoot(root);
    const varlink = systemd.version >= 255;
    const confext = systemd.version >= 254;
    const driver = join(dir, 'driver.mjs');
    writeFileSync(driver, DRIVER(join(import.meta.dirname, '..', '..', 'dist', 'lib', 'index.js')));
    const r = await runInPrivateMountNamespace(SCRIPT, {
      args: [root, join(dir, 'sysext.sock'), varlink ? '1' : '0', process.execPath, driver, confext ? '1' : '0'],
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const sysexts = {
      list: [
        ['e1', 'sysext'],
        ['e2', 'sysext'],
      ],
      state: ['e1', 'e2'],
      again: [true, 'ALREADY_MERGED', { hierarchy: '/usr' }],
      refreshed: ['e1', 'e2'],
      after: [],
    };
    const confexts = { list: [['c1', 'confext']], state: ['c1'], again: [true, 'ALREADY_MERGED', { hierarchy: '/etc' }], refreshed: ['c1'], after: [] };
    expect(out.command).toEqual(sysexts);
    expect(out.emptyCommand).toEqual([]);
    if (confext) expect(out.commandConfext).toEqual(confexts);
    if (varlink) {
      expect(out.varlink).toEqual(sysexts);
      expect(out.varlinkConfext).toEqual(confexts);
      expect(out.auto).toBe('varlink');
      expect(out.emptyVarlink).toEqual([]);
    } else {
      expect(out.varlink).toBeUndefined();
    }
  });
});
