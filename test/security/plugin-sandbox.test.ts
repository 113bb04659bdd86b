// Plugins written as attacks, each vote or deploy-finish in its own child process (node against
// dist/), so a plugin that takes the host down is a failed test rather than a lost run:
// module plugins that throw asynchronously, leave unhandled rejections, exit or loop;
// executables that flood stdout through a writer they leave behind; and, as root, confined
// executables that try the terminal (TIOCSTI), host unix sockets (path and abstract), the
// network, block devices and privileges, and leave setuid files, devices, FIFOs and
// escaping links in state/. Each confinement attack has a control run unconfined on the host
// that succeeds, so the attack is known to be real.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTree } from '../helpers/fixtures.js';
import { describeAsRoot, isRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';
import { childEnv } from '../helpers/child.js';
import { attack, dist } from './attack.js';

const dir = tempDir('plugin-sandbox-');
const baseDir = join(dir, 'base');
let n = 0;

// Child: args = [base dir, plugin path or plugin directory, 'vote'|'deploy', timeoutMs, stateDir?].
// Prints one JSON line: the votes (or the deploy outcome), then waits for late timers and says ALIVE.
const HOST = `
const [baseDir, plugin, action, timeoutMs, stateDir] = args;
const base = await lib.baseFromDirectory(baseDir);
const ctx = { osname: 'testos', base, extensions: [], systemdVersion: 252 };
const { statSync } = await import('node:fs');
const plugins = statSync(plugin).isDirectory() ? await lib.loadPluginDirectory(plugin) : [lib.executablePlugin(plugin)];
const t0 = performance.now();
let out;
if (action === 'vote') {
  const r = await lib.runVote(plugins, ctx, { timeoutMs: Number(timeoutMs) });
  out = { votes: r.votes.map((v) => ({ plugin: v.plugin, verdict: v.verdict, message: v.message })) };
} else {
  out = await lib.runDeployFinish(plugins, { ...ctx, merged: base.reader, stateDir }, { timeoutMs: Number(timeoutMs) }).then(
    () => ({ ok: true }),
    (e) => ({ ok: false, code: e.code ?? null, message: String(e.message), problems: (e.problems ?? []).map((p) => p.code) }),
  );
}
out.ms = Math.round(performance.now() - t0);
out.rssMb = Math.round(process.memoryUsage().rss / 1048576);
await new Promise((r) => setTimeout(r, 500));
console.log('ALIVE');
console.log(JSON.stringify(out));
`;

interface HostReport {
  votes?: Array<{ plugin: string; verdict: string; message: string }>;
  ok?: boolean;
  code?: string | null;
  message?: string;
  problems?: string[];
  ms: number;
  rssMb: number;
}

async function host(
  plugin: string,
  action: 'vote' | 'deploy',
  opts: { timeoutMs?: number; stateDir?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<HostReport> {
  const r = await attack(HOST, [baseDir, plugin, action, String(opts.timeoutMs ?? 10_000), ...(opts.stateDir ? [opts.stateDir] : [])], {
    timeoutMs: 90_000,
    ...(opts.env ? { env: opts.env } : {}),
  });
  expect({ code: r.code, signal: r.signal, alive: r.stdout.includes('ALIVE') }, r.stderr.slice(-1500)).toEqual({ code: 0, signal: null, alive: true });
  return r.report as HostReport;
}

function moduleDir(source: string): string {
  const d = join(dir, `mods-${++n}`);
  mkdirSync(d, { mode: 0o755 });
  writeFileSync(join(d, '10-plugin.mjs'), source);
  return d;
}

function program(body: string, interpreter = '/bin/sh'): string {
  const d = join(dir, `bin-${++n}`);
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  const p = join(d, 'plugin');
  writeFileSync(p, `#!${interpreter}\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

beforeAll(() => {
  chmodSync(dir, 0o755);
  makeTree(baseDir, { 'usr/lib/os-release': 'ID=testos\nVERSION_ID=1\n' });
});

describe('module plugins cannot take the host down', () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'throws asynchronously (setTimeout)',
      `export default { name: 'async-thrower', checkCompatible: () => new Promise((resolve) => { setTimeout(() => { throw new Error('late boom'); }, 10); setTimeout(() => resolve({ verdict: 'approve', message: 'fine' }), 300); }) };`,
      /async-thrower failed: threw asynchronously: late boom/,
    ],
    [
      'throws asynchronously right after answering',
      `export default { name: 'after-answer', async checkCompatible() { setTimeout(() => { throw new Error('just after'); }, 0); return { verdict: 'approve', message: 'fine' }; } };`,
      /after-answer failed: threw asynchronously: just after/,
    ],
    [
      'leaves an unhandled rejection',
      `export default { name: 'rejecter', checkCompatible: async () => { Promise.reject(new Error('nobody catches me')); await new Promise((r) => setTimeout(r, 100)); return { verdict: 'approve', message: 'fine' }; } };`,
      /rejecter failed: left an unhandled rejection: nobody catches me/,
    ],
    [
      'calls process.exit',
      `export default { name: 'exiter', async checkCompatible() { process.exit(0); } };`,
      /exiter failed: exited \(code 0\) before answering/,
    ],
    [
      'loops forever (synchronously)',
      `export default { name: 'spinner', checkCompatible() { for (;;) {} } };`,
      /spinner failed: plugin spinner did not answer within 1500 ms/,
    ],
    [
      'throws asynchronously while loading',
      `setTimeout(() => { throw new Error('at import'); }, 0);\nexport default { name: 'loader', async checkCompatible() { return { verdict: 'approve', message: 'x' }; } };`,
      /plugin module .* cannot be loaded: threw asynchronously: at import/,
    ],
  ];
  for (const [what, source, message] of cases) {
    it(`${what}: a veto naming the plugin, and the host lives on`, async () => {
      const r = await host(moduleDir(source), 'vote', { timeoutMs: 1500 });
      expect(r.votes).toHaveLength(1);
      expect(r.votes![0]!.verdict).toBe('veto');
      expect(r.votes![0]!.message).toMatch(message);
      expect(r.ms).toBeLessThan(8000);
    });
  }

  it('a well-behaved module reads the base through its proxied reader and writes state', async () => {
    const d = moduleDir(`import { writeFileSync } from 'node:fs';
export default {
  name: 'reader',
  async checkCompatible(ctx) {
    const text = String(await ctx.base.reader.readFile('usr/lib/os-release'));
    const st = await ctx.base.reader.stat('usr/lib');
    return { verdict: 'warn', message: text.split('\\n')[0] + ' ' + st.type + ' ' + ctx.base.source.type };
  },
  async deployFinish(ctx) { writeFileSync(ctx.stateDir + '/from-module', String(await ctx.merged.readFile('usr/lib/os-release'))); },
};`);
    const r = await host(d, 'vote');
    expect(r.votes).toEqual([{ plugin: 'reader', verdict: 'warn', message: 'ID=testos dir directory' }]);
    const state = join(dir, `state-${++n}`);
    mkdirSync(state);
    const dr = await host(d, 'deploy', { stateDir: state });
    expect(dr.ok, dr.message).toBe(true);
    expect(readdirSync(state)).toEqual(['from-module']);
  });
});

describe('an executable flooding stdout through a writer it leaves behind', () => {
  // The program leaves writers in its own group and one in a new session (outside the group
  // the host kills), then exits; all of them keep stdout open.
  const flood = () => program('cat >/dev/null\nyes approve &\nsetsid yes flood &\nexec yes approve');
  for (const mode of ['off', 'auto'] as const) {
    it(`is stopped at the cap and vetoed promptly, with bounded memory (confinement ${mode})`, async () => {
      const r = await host(flood(), 'vote', { timeoutMs: 20_000, env: { OSTREE_SYSEXT_PLUGIN_CONFINEMENT: mode } });
      expect(r.votes![0]!.verdict).toBe('veto');
      expect(r.votes![0]!.message).toMatch(/printed more than 1048576 bytes; it was killed/);
      expect(r.ms).toBeLessThan(5000);
      expect(r.rssMb).toBeLessThan(300);
    });
  }
});

describe('state files are canonical or refused', () => {
  function stateOf(): string {
    const s = join(dir, `state-${++n}`);
    mkdirSync(s);
    return s;
  }
  const deployer = (script: string) =>
    program(`case "$1" in check) cat >/dev/null; echo '{"verdict":"approve","message":"ok"}';; deploy-finish) cat >/dev/null; ${script};; esac`);

  it('setuid, setgid and sticky bits are cleared, modes normalised (unconfined, as the caller)', async () => {
    const state = stateOf();
    const r = await host(
      deployer('mkdir d; chmod 1777 d; echo x > d/suid; chmod 6755 d/suid; echo y > plain; chmod 0600 plain; echo z > locked; chmod 0000 locked'),
      'deploy',
      { stateDir: state, env: { OSTREE_SYSEXT_PLUGIN_CONFINEMENT: 'off' } },
    );
    expect(r.ok, r.message).toBe(true);
    expect((statSync(join(state, 'd')).mode & 0o7777).toString(8)).toBe('755');
    expect((statSync(join(state, 'd/suid')).mode & 0o7777).toString(8)).toBe('755');
    expect((statSync(join(state, 'plain')).mode & 0o7777).toString(8)).toBe('644');
    expect((statSync(join(state, 'locked')).mode & 0o7777).toString(8)).toBe('644');
  });

  const refusals: Array<[string, string, string]> = [
    ['a FIFO', 'mkfifo pipe', 'STATE_SPECIAL_FILE'],
    ['a unix socket', '/usr/bin/python3 -c "import socket; socket.socket(socket.AF_UNIX).bind(\'sock\')"', 'STATE_SPECIAL_FILE'],
    ['an absolute symlink', 'ln -s /etc/shadow shadow', 'STATE_LINK_ESCAPES'],
    ['a symlink climbing out', 'mkdir -p a/b; ln -s ../../../etc a/b/up', 'STATE_LINK_ESCAPES'],
    ['a chain of symlinks that only escapes when followed', 'mkdir -p x/y; ln -s x/y s; ln -s s/../../.. e', 'STATE_LINK_ESCAPES'],
    ['a symlink loop', 'ln -s l2 l1; ln -s l1 l2', 'STATE_LINK_ESCAPES'],
  ];
  if (isRoot) {
    refusals.push(['a block device', 'mknod blk b 7 0', 'STATE_SPECIAL_FILE']);
    refusals.push(['a character device', 'mknod chr c 1 3', 'STATE_SPECIAL_FILE']);
  }
  for (const [what, script, code] of refusals) {
    it(`${what} is refused with ${code}, naming the plugin`, async () => {
      const state = stateOf();
      const r = await host(deployer(script), 'deploy', { stateDir: state, env: { OSTREE_SYSEXT_PLUGIN_CONFINEMENT: 'off' } });
      expect(r.ok).toBe(false);
      expect(r.code).toBe('STATE_REFUSED');
      expect(r.problems).toContain(code);
      expect(r.message).toMatch(/plugin plugin left state files that cannot be committed/);
    });
  }

  it('a hard link to a file outside state/ is refused; links inside it are fine', async () => {
    const outside = join(dir, `secret-${++n}`);
    writeFileSync(outside, 'secret\n');
    const state = stateOf();
    const r = await host(deployer(`ln "${outside}" stolen`), 'deploy', { stateDir: state, env: { OSTREE_SYSEXT_PLUGIN_CONFINEMENT: 'off' } });
    expect([r.code, r.problems]).toEqual(['STATE_REFUSED', ['STATE_HARDLINK_OUTSIDE']]);
    const ok = await host(deployer('echo a > one; ln one two; mkdir d; ln -s ../one d/rel'), 'deploy', {
      stateDir: stateOf(),
      env: { OSTREE_SYSEXT_PLUGIN_CONFINEMENT: 'off' },
    });
    expect(ok.ok, ok.message).toBe(true);
  });
});

describeAsRoot('confined executables (root)', () => {
  let unixServer: NetServer;
  let abstractServer: ChildProcess;
  let tcpServer: NetServer;
  let tcpPort = 0;
  const unixPath = `/run/osx-sandbox-test-${process.pid}.sock`;
  const abstractName = `osx-sandbox-test-${process.pid}`;
  const listen = (s: NetServer, where: string | { port: number; host: string }) =>
    new Promise<void>((resolve) => (typeof where === 'string' ? s.listen(where, resolve) : s.listen(where.port, where.host, resolve)));

  beforeAll(async () => {
    rmSync(unixPath, { force: true });
    unixServer = createNetServer((c) => c.end('hello\n'));
    await listen(unixServer, unixPath);
    chmodSync(unixPath, 0o777);
    // An abstract socket, as host daemons use (Node's own abstract names do not match C's).
    abstractServer = spawn(
      '/usr/bin/python3',
      [
        '-c',
        `import socket\ns = socket.socket(socket.AF_UNIX)\ns.bind('\\0${abstractName}')\ns.listen()\nprint('ready', flush=True)\nwhile True:\n    c, _ = s.accept()\n    c.send(b'hello\\n')\n    c.close()\n`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve) => abstractServer.stdout!.once('data', resolve));
    tcpServer = createNetServer((c) => c.end('hello\n'));
    await listen(tcpServer, { port: 0, host: '127.0.0.1' });
    tcpPort = (tcpServer.address() as { port: number }).port;
  });
  afterAll(() => {
    unixServer?.close();
    abstractServer?.kill('SIGKILL');
    tcpServer?.close();
    rmSync(unixPath, { force: true });
  });

  // One python3 program tries everything and reports each outcome; the vote message is that report.
  const PROBE = String.raw`
import json, os, socket, sys, fcntl, termios
sys.stdin.read()
r = {}
def attempt(name, fn):
    try:
        r[name] = 'ok:' + str(fn())
    except OSError as e:
        r[name] = 'err:' + (e.strerror or str(e))
def tiocsti():
    fd = os.open('/dev/tty', os.O_RDWR)
    fcntl.ioctl(fd, termios.TIOCSTI, b'#')
    return 'injected'
attempt('tiocsti', tiocsti)
def unix(path):
    def go():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(path)
        return s.recv(16).decode().strip()
    return go
attempt('unix', unix(sys.argv[2]))
attempt('abstract', unix('\0' + sys.argv[3]))
for p in ['/run/dbus/system_bus_socket', '/run/systemd/private', '/run/systemd/journal/stdout']:
    attempt(p, unix(p))
def tcp():
    s = socket.create_connection(('127.0.0.1', int(sys.argv[4])), timeout=3)
    return s.recv(16).decode().strip()
attempt('tcp', tcp)
for dev in ['/dev/loop0', '/dev/vda', '/dev/sda', '/dev/nvme0n1']:
    attempt(dev, lambda: os.close(os.open(dev, os.O_WRONLY)) or 'opened')
attempt('mknod', lambda: os.mknod('/tmp/blk', 0o600 | 0o060000, os.makedev(7, 0)) or 'made')
attempt('setuid0', lambda: os.setuid(0) or 'root')
r['ids'] = [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()]
status = dict(l.split(':\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\t' in l)
r['caps'] = [status['CapEff'].strip(), status['CapBnd'].strip(), status['NoNewPrivs'].strip()]
r['dev'] = sorted(os.listdir('/dev'))
# Every mount it can reach is read-only, but its private /tmp (mounts stacked under /dev are hidden by the new /dev).
# Of mounts stacked on one path the last listed is on top, the one visible.
top = dict(l.split()[4:6] for l in open('/proc/self/mountinfo'))
r['rw_mounts'] = sorted(mp for mp, opts in top.items() if opts.split(',')[0] != 'ro' and mp != '/tmp' and not mp.startswith('/dev/'))
print(json.dumps({'verdict': 'approve', 'message': json.dumps(r)}))
`;
  // The same program as a plugin (argv[1] is the action) and as a control run directly on the host.
  const probeArgs = () => [unixPath, abstractName, String(tcpPort)];

  /** Runs `cmd` with a controlling terminal (script(1) allocates a pty) and returns its stdout. */
  function withTty(cmd: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
    return new Promise((resolve, reject) => {
      const quoted = cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      const child = spawn('script', ['-qefc', quoted, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      child.on('error', reject);
      child.on('close', () => resolve(out));
      setTimeout(() => child.stdin.end(), 100);
    });
  }

  it('control: on the host, with a terminal, the probe injects keystrokes, connects everywhere and opens block devices', async () => {
    const p = program(PROBE, '/usr/bin/python3');
    const out = await withTty([p, 'check', ...probeArgs()]);
    // The injected '#' shows up in the terminal's output, before the answer.
    const line = out.split('\n').find((l) => l.includes('"verdict"'))!;
    const r = JSON.parse(JSON.parse(line.slice(line.indexOf('{'))).message) as Record<string, string>;
    expect(r.tiocsti).toBe('ok:injected');
    expect(r.unix).toBe('ok:hello');
    expect(r.abstract).toBe('ok:hello');
    expect(r.tcp).toBe('ok:hello');
    expect(r['/dev/loop0']).toBe('ok:opened');
  });

  it('confined, the probe gets no terminal, no socket, no network, no device, no privilege', async () => {
    const p = program(
      PROBE.replace('sys.argv[2]', `'${unixPath}'`).replace('sys.argv[3]', `'${abstractName}'`).replace('int(sys.argv[4])', String(tcpPort)),
      '/usr/bin/python3',
    );
    // The host child itself has a controlling terminal, as an admin's shell would.
    const out = await withTty(
      [
        process.execPath,
        '--input-type=module',
        '-e',
        `const lib = await import(process.argv[1]); const args = process.argv.slice(2);\n${HOST}`,
        dist,
        baseDir,
        p,
        'vote',
        '20000',
      ],
      childEnv,
    );
    const line = out.split('\n').find((l) => l.startsWith('{"votes"'));
    expect(line, out.slice(-2000)).toBeDefined();
    const vote = (JSON.parse(line!) as HostReport).votes![0]!;
    expect(vote.verdict, vote.message).toBe('approve');
    const r = JSON.parse(vote.message) as Record<string, unknown>;
    process.stdout.write(`confined probe: ${vote.message}\n`);
    expect(r.tiocsti).toMatch(/^err:/);
    expect(r.unix).toMatch(/^err:/);
    expect(r.abstract).toMatch(/^err:/);
    expect(r['/run/dbus/system_bus_socket']).toMatch(/^err:/);
    expect(r['/run/systemd/private']).toMatch(/^err:/);
    expect(r.tcp).toMatch(/^err:/);
    for (const dev of ['/dev/loop0', '/dev/vda', '/dev/sda', '/dev/nvme0n1']) expect(r[dev], dev).toMatch(/^err:/);
    expect(r.mknod).toMatch(/^err:/);
    expect(r.setuid0).toMatch(/^err:/);
    expect(r.ids).toEqual([65534, 65534, 65534, []]);
    expect(r.caps).toEqual(['0000000000000000', '0000000000000000', '1']);
    expect(r.dev).toEqual(['fd', 'full', 'null', 'random', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']);
    expect(r.rw_mounts).toEqual([]);
  });

  it('unconfined too, the plugin runs in a new session: no controlling terminal to inject into', async () => {
    const p = program(
      PROBE.replace('sys.argv[2]', `'${unixPath}'`).replace('sys.argv[3]', `'${abstractName}'`).replace('int(sys.argv[4])', String(tcpPort)),
      '/usr/bin/python3',
    );
    const out = await withTty(
      [
        process.execPath,
        '--input-type=module',
        '-e',
        `const lib = await import(process.argv[1]); const args = process.argv.slice(2);\n${HOST}`,
        dist,
        baseDir,
        p,
        'vote',
        '20000',
      ],
      { ...childEnv, OSTREE_SYSEXT_PLUGIN_CONFINEMENT: 'off' },
    );
    const line = out.split('\n').find((l) => l.startsWith('{"votes"'));
    expect(line, out.slice(-2000)).toBeDefined();
    const r = JSON.parse((JSON.parse(line!) as HostReport).votes![0]!.message) as Record<string, string>;
    // /dev/tty exists here, but the plugin has no controlling terminal (ENXIO).
    expect(r.tiocsti).toBe('err:No such device or address');
    // Everything else is the caller's to give: unconfined means the host's rights.
    expect(r.unix).toBe('ok:hello');
  });

  it('confined, a fork bomb stops at the process limit', async () => {
    const p = program(
      String.raw`
import json, os, sys, time
sys.stdin.read()
n = 0
for i in range(2000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    n += 1
print(json.dumps({'verdict': 'approve', 'message': str(n)}))
`,
      '/usr/bin/python3',
    );
    const r = await host(p, 'vote', { timeoutMs: 20_000 });
    const forked = Number(r.votes![0]!.message);
    expect(forked).toBeGreaterThan(0);
    expect(forked).toBeLessThan(512);
  });

  it('confined, a setuid file in state/ is committed canonical, owned by root; a device node cannot be made', async () => {
    const state = join(dir, `state-${++n}`);
    mkdirSync(state);
    const p = program(
      `case "$1" in deploy-finish) cat >/dev/null; echo x > suid; chmod 4755 suid; mknod blk b 7 0 2>/dev/null && echo made > mknod-worked; pwd > where; id -u > uid;; esac`,
    );
    const r = await host(p, 'deploy', { stateDir: state });
    expect(r.ok, r.message).toBe(true);
    expect(readdirSync(state).sort()).toEqual(['suid', 'uid', 'where']);
    const st = statSync(join(state, 'suid'));
    expect([(st.mode & 0o7777).toString(8), st.uid, st.gid]).toEqual(['755', 0, 0]);
    expect(statSync(state).uid).toBe(0);
    expect(spawnSync('cat', [join(state, 'where'), join(state, 'uid')], { encoding: 'utf8' }).stdout).toBe('/run/ostree-sysext/state\n65534\n');
  });
});
