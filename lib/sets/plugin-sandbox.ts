/**
 * Where plugins that are not in-process objects run, and what they may leave behind:
 * executables (confined as root), modules (each call in its own worker thread), and the
 * check that makes a set's `state/` canonical before it is committed. See SECURITY.md.
 * @module
 */
import { spawn } from 'node:child_process';
import { chmod, chown, lchown, lstat, open, readdir, readlink } from 'node:fs/promises';
import { constants, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ExtensionError, type ExtensionErrorProblem } from '../extension/errors.js';
import type { SystemdInfo } from '../extension/compat.js';
import type { DeployContext, Plugin, PluginContext, VoteAnswer } from './plugin.js';
import type { TreeReader } from '../tree/reader.js';

/** Version of the JSON protocol spoken with executable plugins. */
export const PLUGIN_PROTOCOL = 1;
/** Most bytes an executable plugin may print on stdout; more is a veto. */
export const MAX_PLUGIN_OUTPUT = 1 << 20;
/** The unprivileged user and group confined executables run as (`nobody`/`nogroup`). */
export const PLUGIN_UID = 65534;
/** Most processes uid 65534 may have while a confined plugin runs (RLIMIT_NPROC): no fork bomb. */
export const PLUGIN_MAX_PROCESSES = 512;
/** Where a confined plugin sees the set's state directory (its working directory). */
export const CONFINED_STATE_DIR = '/run/ostree-sysext/state';
/** Heap limit of the worker a module plugin call runs in. */
const MODULE_HEAP_MB = 512;

function describeContext(ctx: PluginContext): Record<string, unknown> {
  return {
    protocol: PLUGIN_PROTOCOL,
    osname: ctx.osname,
    systemdVersion: ctx.systemdVersion,
    ...(ctx.systemd ? { systemd: { ...ctx.systemd } } : {}),
    base: {
      id: ctx.base.id,
      osRelease: ctx.base.osRelease,
      ...(ctx.base.source.type === 'directory' ? { path: ctx.base.source.path } : {}),
      ...(ctx.base.source.type === 'deployment' ? { path: ctx.base.source.sysroot.deploymentPath(ctx.base.source.deployment) } : {}),
      ...(ctx.base.source.type === 'commit' ? { commit: ctx.base.source.commit } : {}),
    },
    extensions: ctx.extensions.map((e) => ({ name: e.name, commit: e.commit, kind: e.kind, release: e.release, ...(e.path ? { path: e.path } : {}) })),
  };
}

// ---- executables ----

// Confinement of executable plugins (see SECURITY.md). As root, when `unshare` works, the
// plugin runs in new mount, PID, network, IPC and UTS namespaces (no network but a down
// loopback; no abstract unix sockets, System V IPC or POSIX queues of the host), in a new
// session without a controlling terminal (spawned detached). Every mount is remounted
// read-only, nosuid and nodev; /tmp, /run and /dev are replaced by private tmpfs (so the
// host's unix sockets under /run and /tmp are gone; /dev holds null, zero, full, random and
// urandom only); the paths the plugin is given (its program, the base and the extensions)
// are bound back read-only from descriptors opened before; the state directory is bound
// writable at CONFINED_STATE_DIR. The plugin execs as uid/gid 65534 with no supplementary
// groups, no capabilities (empty bounding set), no_new_privs, at most PLUGIN_MAX_PROCESSES
// processes and no core dumps.
// The script is a constant: paths reach it as arguments, never inside the script text.
// Arguments: STATE (or ''), KEEP... , '--', COMMAND...
const CONFINE_SCRIPT = `set -eu
umask 022
state="$1"; shift
keeps=(); while [ "$1" != -- ]; do keeps+=("$1"); shift; done; shift
# Descriptors of what stays visible, opened before /tmp and /run are hidden.
fds=()
for k in "\${keeps[@]}"; do exec {fd}<"$k"; fds+=("$fd"); done
if [ -n "$state" ]; then exec {statefd}<"$state"; fi
# Opened once: /dev/null cannot be opened again once /dev is remounted nodev.
exec {null}<>/dev/null
# Mount points and their per-mount options (read once: the table changes as we go).
mounts=$(cat /proc/self/mountinfo)
while read -r _id _parent _dev _root mp opts _rest; do
  printf -v mp '%b' "\${mp//\\\\/\\\\0}"
  keep=""
  for o in \${opts//,/ }; do case "$o" in rw|ro|suid|nosuid|dev|nodev) ;; *) keep+=",$o" ;; esac; done
  mount -o "remount,bind,ro,nosuid,nodev$keep" -- "$mp" 2>&$null && continue
  # Gone with a parent detached before, or no longer a mount point: nothing to do.
  mountpoint -q -- "$mp" 2>&$null || continue
  umount -l -- "$mp" 2>&$null || { echo "confinement: cannot make $mp read-only" >&2; exit 125; }
done <<< "$mounts"
mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=0755,size=64k,nosuid,noexec tmpfs /dev
for d in null:3 zero:5 full:7 random:8 urandom:9; do mknod -m 0666 "/dev/\${d%%:*}" c 1 "\${d##*:}"; done
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mount -o remount,ro,nosuid,noexec -- /dev
for i in "\${!keeps[@]}"; do
  k="\${keeps[$i]}"; fd="\${fds[$i]}"
  case "$k" in /tmp/*|/run/*) ;; *) exec {fd}<&-; continue ;; esac
  if [ -d "/proc/self/fd/$fd" ]; then mkdir -p -- "$k"; else mkdir -p -- "\${k%/*}"; : > "$k"; fi
  mount --no-canonicalize --bind "/proc/self/fd/$fd" "$k"
  mount -o remount,bind,ro,nosuid,nodev -- "$k"
  exec {fd}<&-
done
if [ -n "$state" ]; then
  mkdir -p -- ${CONFINED_STATE_DIR}
  mount --no-canonicalize --bind "/proc/self/fd/$statefd" ${CONFINED_STATE_DIR}
  mount -o remount,bind,rw,nosuid,nodev -- ${CONFINED_STATE_DIR}
  exec {statefd}<&-
fi
mount -o remount,ro,nosuid,nodev -- /run
if [ -n "$state" ]; then cd -- ${CONFINED_STATE_DIR}; else cd /; fi
exec {null}<&-
exec prlimit --nproc=${PLUGIN_MAX_PROCESSES} --core=0 -- setpriv --reuid=${PLUGIN_UID} --regid=${PLUGIN_UID} --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all --ambient-caps=-all --reset-env -- "$@"
`;

const UNSHARE = ['--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc', '--net', '--ipc', '--uts', '--kill-child=SIGKILL', '--'];

type Confinement = 'namespace' | 'none';
let confinementProbe: Promise<Confinement> | undefined;

/**
 * How executable plugins are confined here: `namespace` as root where the whole confinement
 * works (probed once, by confining `true`), else `none`. `OSTREE_SYSEXT_PLUGIN_CONFINEMENT=required`
 * makes `none` an error (the plugin then counts as a veto); `off` disables confinement.
 */
function confinement(): Promise<Confinement> {
  const want = process.env.OSTREE_SYSEXT_PLUGIN_CONFINEMENT ?? 'auto';
  if (want === 'off') return Promise.resolve('none');
  confinementProbe ??= new Promise<Confinement>((resolvePromise) => {
    if (process.getuid?.() !== 0) {
      resolvePromise('none');
      return;
    }
    const probe = spawn('unshare', [...UNSHARE, 'bash', '-c', CONFINE_SCRIPT, 'confine', '', '--', 'true'], { stdio: 'ignore', detached: true });
    probe.on('error', () => resolvePromise('none'));
    probe.on('close', (code) => resolvePromise(code === 0 ? 'namespace' : 'none'));
  });
  return confinementProbe.then((c) => {
    if (c === 'none' && want === 'required') {
      throw new Error(
        'plugin confinement is required (OSTREE_SYSEXT_PLUGIN_CONFINEMENT=required) but unavailable: it needs root, unshare, setpriv and mount namespaces',
      );
    }
    return c;
  });
}

/** What a confined plugin must still see: its program (or its directory, when others may search it) and the trees it is given. */
function keptPaths(program: string, input: Record<string, unknown>): string[] {
  const dir = dirname(program);
  let searchable: boolean;
  try {
    searchable = (statSync(dir).mode & 0o001) !== 0;
  } catch {
    searchable = false;
  }
  const trees = [
    (input.base as { path?: string }).path,
    ...(input.extensions as Array<{ path?: string }>).map((e) => e.path),
    ...((input.layers as string[] | undefined) ?? []),
  ].filter((p): p is string => typeof p === 'string' && p.startsWith('/'));
  return [...new Set([searchable ? dir : program, ...trees])];
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Runs a program without a shell, in a new session and process group, feeds it JSON, and
 * parses its JSON answer. Confined where possible (see {@link confinement}): only
 * `stateDir` (when given) is writable. The whole process group is killed when the program
 * exits, times out, or prints more than {@link MAX_PLUGIN_OUTPUT} bytes.
 */
async function callExecutable(
  path: string,
  action: string,
  input: Record<string, unknown>,
  stateDir: string | undefined,
  signal: AbortSignal,
): Promise<unknown> {
  const how = await confinement();
  signal.throwIfAborted();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
  let command: string;
  let args: string[];
  let payload = input;
  if (how === 'namespace') {
    if (stateDir !== undefined) {
      await chown(stateDir, PLUGIN_UID, PLUGIN_UID);
      payload = { ...input, stateDir: CONFINED_STATE_DIR };
    }
    command = 'unshare';
    args = [
      ...UNSHARE,
      'bash',
      '-c',
      CONFINE_SCRIPT,
      'confine',
      stateDir ?? '',
      ...keptPaths(path, input),
      '--',
      'env',
      `PATH=${env.PATH}`,
      `LANG=${env.LANG}`,
      path,
      action,
    ];
  } else {
    command = path;
    args = [action];
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: stateDir ?? '/', stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
    const chunks: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let settled = false;
    let exitTimer: NodeJS.Timeout | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(exitTimer);
      signal.removeEventListener('abort', onAbort);
      killGroup(child.pid);
      child.stdout.destroy();
      child.stderr.destroy();
      fn();
    };
    const onAbort = () => settle(() => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')));
    signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => {
      if (settled) return;
      outBytes += d.length;
      if (outBytes > MAX_PLUGIN_OUTPUT) {
        settle(() => reject(new Error(`${path} ${action} printed more than ${MAX_PLUGIN_OUTPUT} bytes; it was killed`)));
        return;
      }
      chunks.push(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 4096) err += d.slice(0, 4096 - err.length);
    });
    child.on('error', (e) => settle(() => reject(e)));
    const finish = (code: number | null, sig: NodeJS.Signals | null) =>
      settle(() => {
        if (sig || code !== 0) {
          reject(new Error(`${path} ${action} exited with ${sig ?? `code ${code}`}${err ? `: ${err.trim().split('\n').slice(-3).join(' / ')}` : ''}`));
          return;
        }
        const out = Buffer.concat(chunks).toString('utf8');
        if (action === 'deploy-finish' && out.trim() === '') {
          resolvePromise(null);
          return;
        }
        try {
          resolvePromise(JSON.parse(out));
        } catch {
          reject(new Error(`${path} ${action} printed something that is not JSON: ${out.slice(0, 200)}`));
        }
      });
    child.on('close', finish);
    // A process the plugin left behind may hold stdout open: once the plugin itself has
    // exited, its group is killed and what arrived within a moment is its answer.
    child.on('exit', (code, sig) => {
      killGroup(child.pid);
      exitTimer = setTimeout(() => finish(code, sig), 1000);
    });
    child.stdin.on('error', () => undefined); // a plugin that exits without reading its input
    child.stdin.end(JSON.stringify(payload));
  });
}

/**
 * A plugin backed by an executable in any language. It is run without a shell as
 * `PROGRAM check` and `PROGRAM deploy-finish`, with a JSON document on stdin (`protocol`,
 * `osname`, `systemdVersion`, `base`, `extensions`, and for deploy-finish `stateDir` and
 * `layers`), in the state directory as working directory. `check` prints
 * `{"verdict": "approve"|"warn"|"veto", "message": "…"}`; `deploy-finish` writes files into
 * `stateDir` and exits 0. As root it is confined (see SECURITY.md): it runs as uid 65534,
 * so its program and the trees it reads must be readable by others, and `stateDir` is then
 * `/run/ostree-sysext/state`.
 * @example
 * ```ts
 * const set = await DeploymentSet.fromCurrent({ repo: store.repo, osname: 'fedora', base, plugins: [executablePlugin('/usr/libexec/check-tools')] });
 * ```
 */
export function executablePlugin(path: string, name = path.split('/').pop() ?? path): Plugin {
  return {
    name,
    async checkCompatible(ctx) {
      return callExecutable(path, 'check', describeContext(ctx), undefined, ctx.signal ?? new AbortController().signal) as Promise<VoteAnswer>;
    },
    async deployFinish(ctx) {
      const layers = [...(ctx.base.source.type === 'directory' ? [ctx.base.source.path] : []), ...ctx.extensions.filter((e) => e.path).map((e) => e.path!)];
      await callExecutable(
        path,
        'deploy-finish',
        { ...describeContext(ctx), stateDir: ctx.stateDir, layers },
        ctx.stateDir,
        ctx.signal ?? new AbortController().signal,
      );
    },
  };
}

// ---- modules ----

// Runs in the worker, as an ES module from a data: URL (so it needs no file of its own next
// to the compiled library, and no host flag such as --input-type changes how it is read).
// Readers are proxies: each call is a message to the host.
const WORKER_SOURCE = `
import { parentPort, workerData } from 'node:worker_threads';
let answered = false;
const fail = (kind, e) => {
  if (answered) return;
  answered = true;
  parentPort.postMessage({ type: 'failed', message: kind + (e && e.stack ? String(e.message) : String(e)) });
};
process.on('uncaughtException', (e) => fail('threw asynchronously: ', e));
process.on('unhandledRejection', (e) => fail('left an unhandled rejection: ', e));
let seq = 0;
const pending = new Map();
parentPort.on('message', (m) => {
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.error === undefined) p.resolve(m.value); else p.reject(new Error(m.error));
});
const call = (target, method, args) => new Promise((resolve, reject) => {
  const id = ++seq;
  pending.set(id, { resolve, reject });
  parentPort.postMessage({ type: 'call', id, target, method, args });
});
const toBuffer = (v) => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);
const reader = (target) => ({
  stat: (p) => call(target, 'stat', [p]),
  list: (p) => call(target, 'list', [p]),
  readFile: (p, n) => call(target, 'readFile', n === undefined ? [p] : [p, n]).then(toBuffer),
});
(async () => {
  const mod = await import(workerData.url);
  const plugin = mod.default ?? mod.plugin;
  if (!plugin || typeof plugin !== 'object' || typeof plugin.name !== 'string') throw new Error('it exports no plugin object with a name');
  let value;
  if (workerData.action === 'describe') {
    value = { name: plugin.name, check: typeof plugin.checkCompatible === 'function', deploy: typeof plugin.deployFinish === 'function' };
  } else {
  const c = workerData.ctx;
  const ctx = {
    ...c,
    base: { ...c.base, reader: reader('base') },
    extensions: c.extensions.map((e, i) => ({ ...e, reader: reader('ext:' + i) })),
    signal: new AbortController().signal,
  };
  if (workerData.action === 'deploy') ctx.merged = reader('merged');
  value = workerData.action === 'check' ? await plugin.checkCompatible(ctx) : (await plugin.deployFinish(ctx), null);
  }
  // Errors scheduled for right now (a timer, a rejection) surface before the answer.
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
  return value;
})().then(
  (value) => { if (!answered) { answered = true; parentPort.postMessage({ type: 'answer', value }); } },
  (e) => fail('', e),
);
`;

interface WorkerContext {
  osname: string;
  systemdVersion: number;
  systemd?: SystemdInfo;
  base: Record<string, unknown>;
  extensions: Array<Record<string, unknown>>;
  stateDir?: string;
}

/** Runs one action of the module at `url` in a fresh worker; readers are served from `readers`. */
function inWorker(
  url: string,
  action: 'describe' | 'check' | 'deploy',
  ctx: WorkerContext | null,
  readers: Map<string, TreeReader>,
  signal?: AbortSignal,
): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`), {
      workerData: { url, action, ctx },
      resourceLimits: { maxOldGenerationSizeMb: MODULE_HEAP_MB },
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const onAbort = () => settle(() => reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted')));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    worker.on('message', (m: { type: string; id?: number; target?: string; method?: string; args?: unknown[]; value?: unknown; message?: string }) => {
      if (m.type === 'answer') settle(() => resolvePromise(m.value));
      else if (m.type === 'failed') settle(() => reject(new Error(m.message)));
      else if (m.type === 'call') {
        const r = readers.get(String(m.target));
        const method = m.method;
        if (!r || (method !== 'stat' && method !== 'list' && method !== 'readFile')) {
          worker.postMessage({ id: m.id, error: `no reader ${String(m.target)}.${String(method)}` });
          return;
        }
        const args = (m.args ?? []) as [string, number?];
        const work = method === 'readFile' ? r.readFile(args[0], args[1]) : r[method](args[0]);
        work.then(
          (value) => {
            if (!settled) worker.postMessage({ id: m.id, value });
          },
          (e: unknown) => {
            if (!settled) worker.postMessage({ id: m.id, error: String((e as Error)?.message ?? e) });
          },
        );
      }
    });
    worker.on('error', (e) => settle(() => reject(new Error(`threw: ${e.message}`))));
    worker.on('exit', (code) => settle(() => reject(new Error(`exited (code ${code}) before answering`))));
  });
}

function workerContext(ctx: PluginContext | DeployContext): { plain: WorkerContext; readers: Map<string, TreeReader> } {
  const d = describeContext(ctx);
  const readers = new Map<string, TreeReader>([['base', ctx.base.reader]]);
  ctx.extensions.forEach((e, i) => readers.set(`ext:${i}`, e.reader));
  if ('merged' in ctx) readers.set('merged', ctx.merged);
  const { path, commit, ...rest } = d.base as { path?: string; commit?: string };
  const base = { ...rest, ...(path ? { path } : {}), source: { type: ctx.base.source.type, ...(path ? { path } : {}), ...(commit ? { commit } : {}) } };
  return {
    plain: {
      osname: ctx.osname,
      systemdVersion: ctx.systemdVersion,
      ...(ctx.systemd ? { systemd: { ...ctx.systemd } } : {}),
      base,
      extensions: d.extensions as Array<Record<string, unknown>>,
      ...('stateDir' in ctx ? { stateDir: ctx.stateDir } : {}),
    },
    readers,
  };
}

/**
 * Loads a plugin module (default export, or `plugin` export, a {@link Plugin}) so that each
 * of its calls runs in a fresh worker thread: a module that throws asynchronously, leaves an
 * unhandled rejection, exits, loops or exhausts its heap fails only that call (a veto),
 * never the host process. The plugin sees its context as plain data (`base` with `id`,
 * `osRelease`, `source.type` and `path` or `commit`; the extensions without their `repo`)
 * and readers (`base.reader`, each extension's `reader`, `merged`) proxied to the host.
 * Rejects when the module cannot be loaded or exports no plugin.
 * @example
 * ```ts
 * const plugin = await modulePlugin('/etc/ostree-sysext/plugins/10-policy.mjs');
 * const set = new DeploymentSet({ repo: store.repo, osname: 'debian', base, plugins: [plugin] });
 * ```
 */
export async function modulePlugin(path: string): Promise<Plugin> {
  const url = pathToFileURL(path).href;
  const info = (await inWorker(url, 'describe', null, new Map())) as { name: string; check: boolean; deploy: boolean };
  const plugin: { -readonly [K in keyof Plugin]: Plugin[K] } = { name: info.name };
  if (info.check) {
    plugin.checkCompatible = (ctx) => {
      const { plain, readers } = workerContext(ctx);
      return inWorker(url, 'check', plain, readers, ctx.signal) as Promise<VoteAnswer>;
    };
  }
  if (info.deploy) {
    plugin.deployFinish = async (ctx) => {
      const { plain, readers } = workerContext(ctx);
      await inWorker(url, 'deploy', plain, readers, ctx.signal);
    };
  }
  return plugin;
}

// ---- state ----

/** Most symlinks followed while resolving one link inside `state/`. */
const MAX_LINK_HOPS = 40;

/** True when the link at `rel` (relative to `root`) resolves, through any chain of links, outside `root`. */
async function linkEscapes(root: string, rel: string, target: string): Promise<boolean> {
  const stack = rel.split('/').slice(0, -1);
  let hops = 0;
  const walk = async (t: string): Promise<boolean> => {
    if (t.startsWith('/')) return true;
    for (const part of t.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (stack.length === 0) return true;
        stack.pop();
        continue;
      }
      stack.push(part);
      let st;
      try {
        st = await lstat(join(root, ...stack));
      } catch {
        continue; // dangling: the rest is resolved as written
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_LINK_HOPS) return true;
        const next = await readlink(join(root, ...stack));
        stack.pop();
        if (await walk(next)) return true;
      }
    }
    return false;
  };
  return walk(target);
}

/**
 * Makes a set's `state/` canonical before it is committed, or refuses it. Directories become
 * 0755, files 0644 (0755 when any execute bit was set), everything owned by root (as root):
 * no setuid, setgid or sticky bit, and no file capability (chown clears it). Refused, with
 * every problem listed: device nodes, FIFOs and sockets; symlinks that resolve outside
 * `state/` (absolute, or through `..`, also via other links); files with hard links outside
 * `state/` (more links than names inside it). `who` names the plugin in the message.
 * {@link runDeployFinish} calls it after each plugin.
 * @example
 * ```ts
 * await canonicalizeState('/tmp/set-work/state', 'my-plugin'); // throws STATE_REFUSED on a FIFO
 * ```
 */
export async function canonicalizeState(stateDir: string, who: string): Promise<void> {
  const problems: ExtensionErrorProblem[] = [];
  const asRoot = process.getuid?.() === 0;
  const names = new Map<number, { rel: string; count: number; nlink: number }>();
  // Modes and owners are set through a descriptor opened without following links, and only
  // if it is still the inode just examined: nothing outside state/ is ever changed.
  const settle = async (abs: string, ino: number, mode: number, dir: boolean): Promise<void> => {
    let fh;
    try {
      fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (dir ? constants.O_DIRECTORY : 0));
    } catch (e) {
      // Not root, and a file its owner cannot read: the owner may still chmod it by name.
      if ((e as NodeJS.ErrnoException).code !== 'EACCES' || asRoot) throw e;
      await chmod(abs, mode);
      return;
    }
    try {
      if ((await fh.stat()).ino !== ino) throw new Error(`${abs} changed while state/ was checked`);
      if (asRoot) await fh.chown(0, 0);
      await fh.chmod(mode);
    } finally {
      await fh.close();
    }
  };
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? stateDir : join(stateDir, rel);
    const st = await lstat(abs);
    const shown = `state/${rel}`;
    if (st.isSymbolicLink()) {
      if (await linkEscapes(stateDir, rel, await readlink(abs))) {
        problems.push({ code: 'STATE_LINK_ESCAPES', path: shown, message: `${shown} is a symlink that leads outside state/ (-> ${await readlink(abs)})` });
      } else if (asRoot) await lchown(abs, 0, 0);
      return;
    }
    if (st.isDirectory()) {
      await settle(abs, st.ino, 0o755, true);
      for (const e of (await readdir(abs)).sort()) await visit(rel === '' ? e : `${rel}/${e}`);
      return;
    }
    if (!st.isFile()) {
      const kind = st.isFIFO()
        ? 'a FIFO'
        : st.isSocket()
          ? 'a socket'
          : st.isBlockDevice()
            ? 'a block device'
            : st.isCharacterDevice()
              ? 'a character device'
              : 'not a regular file';
      problems.push({ code: 'STATE_SPECIAL_FILE', path: shown, message: `${shown} is ${kind}` });
      return;
    }
    if (st.nlink > 1) {
      const seen = names.get(st.ino) ?? { rel: shown, count: 0, nlink: st.nlink };
      seen.count++;
      names.set(st.ino, seen);
    }
    await settle(abs, st.ino, st.mode & 0o111 ? 0o755 : 0o644, false);
  };
  await visit('');
  for (const { rel, count, nlink } of names.values()) {
    if (count < nlink)
      problems.push({
        code: 'STATE_HARDLINK_OUTSIDE',
        path: rel,
        message: `${rel} has ${nlink} hard links but only ${count} inside state/ (a link to a file outside it)`,
      });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).map((p) => p.message);
    throw new ExtensionError(
      'STATE_REFUSED',
      `plugin ${who} left state files that cannot be committed: ${shown.join('; ')}${problems.length > 10 ? '; …' : ''}`,
      { problems, path: stateDir },
    );
  }
}
