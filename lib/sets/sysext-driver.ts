/**
 * One interface to systemd-sysext and systemd-confext, two implementations: the command
 * ({@link CommandDriver}, every version) and systemd's Varlink interface `io.systemd.sysext`
 * ({@link VarlinkDriver}, systemd 255 and later, over `/run/systemd/io.systemd.sysext`).
 * {@link sysextDriver} picks one from the installed systemd. Both raise the same typed errors
 * ({@link SysextDriverError}: `ALREADY_MERGED`, `NO_IMAGES_FOUND`, …) and list images the same way.
 * @module
 */
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import * as is from '../binding/args.js';
import { type SystemdInfo } from '../extension/compat.js';
import { detectSystemd } from '../extension/systemd-detect.js';
import { AbortError } from '../binding/errors.js';
import { listImages, mergedExtensions, sysext, sysextEnvironment, SysextError, type SysextOptions } from './sysext.js';

/** The system's Varlink socket of systemd-sysext (socket-activated, 255 and later). */
export const SYSEXT_VARLINK_SOCKET = '/run/systemd/io.systemd.sysext';

/** An image systemd-sysext or systemd-confext sees. */
export interface SysextImage {
  name: string;
  /** `directory`, `subvolume`, `raw` or `block`. */
  type: string;
  path: string;
  /** `sysext` or `confext`. */
  class: 'sysext' | 'confext';
}

/** Options of a driver call. */
export interface DriverCallOptions {
  /** Merge even what the release rules would refuse (`--force`). */
  force?: boolean;
  /** Do not reload the service manager afterwards (`--no-reload`). */
  noReload?: boolean;
  signal?: AbortSignal;
}

/**
 * Merges, unmerges, refreshes and lists extensions of one class (`sysext` or `confext`) for
 * one root, the same way over either implementation.
 */
export interface SysextDriver {
  /** How it reaches systemd. */
  readonly transport: 'command' | 'varlink';
  /** `sysext` or `confext`. */
  readonly class: 'sysext' | 'confext';
  /** The images systemd sees; `[]` when there are none (the Varlink `NoImagesFound`). */
  list(opts?: { signal?: AbortSignal }): Promise<SysextImage[]>;
  /** Merges; `ALREADY_MERGED` when a hierarchy already is. */
  merge(opts?: DriverCallOptions): Promise<DriverResult>;
  /** Unmerges every hierarchy of its class (nothing merged: nothing to do). */
  unmerge(opts?: Omit<DriverCallOptions, 'force'>): Promise<DriverResult>;
  /** Unmerges and merges again, or unmerges when nothing is left. */
  refresh(opts?: DriverCallOptions): Promise<DriverResult>;
}

/** What a driver call reports besides success. */
export interface DriverResult {
  /** The command's log (standard error); `''` over Varlink, whose service logs to the journal. */
  log: string;
}

/**
 * A failure of systemd-sysext, typed the same for both drivers: `ALREADY_MERGED`,
 * `NO_IMAGES_FOUND`, `PERMISSION_DENIED` (an unprivileged caller), `NOT_AVAILABLE` (no such
 * command or socket), `DISCONNECTED` (the service went away mid-call) or `APPLY_FAILED`.
 */
export class SysextDriverError extends SysextError {
  /** The Varlink error name (`io.systemd.sysext.AlreadyMerged`, …), when it came over Varlink. */
  readonly varlinkError: string | null;
  /** Its parameters (e.g. `{ hierarchy: '/usr' }`). */
  readonly parameters: Record<string, unknown>;
  /** A typed failure; `stderr`/`exitCode` are the command's when it came from one. */
  constructor(
    code: string,
    message: string,
    varlinkError: string | null = null,
    parameters: Record<string, unknown> = {},
    from: { stderr: string; exitCode: number | null } = { stderr: '', exitCode: null },
  ) {
    super(message, from.stderr, from.exitCode, code);
    this.varlinkError = varlinkError;
    this.parameters = parameters;
  }
}

const VARLINK_CODES: Record<string, string> = {
  'io.systemd.sysext.AlreadyMerged': 'ALREADY_MERGED',
  'io.systemd.sysext.NoImagesFound': 'NO_IMAGES_FOUND',
  'io.systemd.PermissionDenied': 'PERMISSION_DENIED',
  'org.varlink.service.PermissionDenied': 'PERMISSION_DENIED',
  'io.systemd.Disconnected': 'DISCONNECTED',
};

/** Most replies one streamed call may send (a List of that many images is not plausible). */
const MAX_REPLIES = 100_000;

interface VarlinkReply {
  parameters?: Record<string, unknown>;
  continues?: boolean;
  error?: string;
}

/**
 * One Varlink call (`more`: collect every reply until `continues` is false). Messages are
 * JSON objects, each ended by a NUL byte.
 */
async function varlinkCall(
  socket: string,
  method: string,
  parameters: Record<string, unknown>,
  opts: { more?: boolean; signal?: AbortSignal; timeoutMs?: number },
): Promise<Array<Record<string, unknown>>> {
  if (opts.signal?.aborted) throw new AbortError(`${method}: aborted before it started`, { cause: opts.signal.reason });
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    const replies: Array<Record<string, unknown>> = [];
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      conn.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    const onAbort = () => finish(new AbortError(`${method}: aborted`, { cause: opts.signal?.reason }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => finish(new SysextDriverError('APPLY_FAILED', `${method} over ${socket}: no reply in ${opts.timeoutMs ?? 300_000} ms`)),
      opts.timeoutMs ?? 300_000,
    );
    conn.on('connect', () => {
      conn.write(JSON.stringify({ method, parameters, ...(opts.more ? { more: true } : {}) }) + '\0');
    });
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 16 << 20) return finish(new SysextDriverError('APPLY_FAILED', `${method} over ${socket}: a reply over 16 MiB`));
      for (let nul = buf.indexOf(0); nul >= 0; nul = buf.indexOf(0)) {
        const text = buf.subarray(0, nul).toString('utf8');
        buf = buf.subarray(nul + 1);
        let msg: VarlinkReply;
        try {
          msg = JSON.parse(text) as VarlinkReply;
        } catch {
          return finish(new SysextDriverError('APPLY_FAILED', `${method} over ${socket}: a reply that is not JSON`));
        }
        if (typeof msg.error === 'string') {
          const code = VARLINK_CODES[msg.error] ?? 'APPLY_FAILED';
          const p = msg.parameters ?? {};
          const detail = Object.keys(p).length > 0 ? ` (${JSON.stringify(p)})` : '';
          return finish(new SysextDriverError(code, `${method} failed: ${msg.error}${detail}`, msg.error, p));
        }
        replies.push(msg.parameters ?? {});
        // A call without 'more' has one reply; a streamed one ends at continues=false (bounded).
        if (!opts.more || !msg.continues) return finish(null);
        if (replies.length > MAX_REPLIES) return finish(new SysextDriverError('APPLY_FAILED', `${method} over ${socket}: more than ${MAX_REPLIES} replies`));
      }
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'NOT_AVAILABLE' : e.code === 'EACCES' ? 'PERMISSION_DENIED' : 'APPLY_FAILED';
      finish(new SysextDriverError(code, `${method}: cannot reach ${socket}: ${e.message}`));
    });
    conn.on('close', () => finish(new SysextDriverError('DISCONNECTED', `${method}: ${socket} closed the connection before replying`)));
  });
}

/**
 * systemd's Varlink interface `io.systemd.sysext` (255 and later). It acts on the root the
 * service was started for (`/` for the system's socket).
 * @example
 * ```ts
 * const d = new VarlinkDriver();
 * await d.refresh();
 * console.log((await d.list()).map((i) => i.name));
 * ```
 */
export class VarlinkDriver implements SysextDriver {
  readonly transport = 'varlink' as const;
  readonly class: 'sysext' | 'confext';
  /** The socket it calls. */
  readonly socket: string;
  readonly #timeoutMs: number;

  /** A driver for `socket` (default {@link SYSEXT_VARLINK_SOCKET}) and `class` (default `sysext`); a call with no reply in `timeoutMs` (default 300 s) fails. */
  constructor(opts: { socket?: string; class?: 'sysext' | 'confext'; timeoutMs?: number } = {}) {
    const o = is.options<{ socket?: string; class?: 'sysext' | 'confext'; timeoutMs?: number }>('options', opts);
    this.socket = o.socket === undefined ? SYSEXT_VARLINK_SOCKET : is.nonEmpty('socket', o.socket);
    this.class = is.oneOf('class', o.class ?? 'sysext', ['sysext', 'confext'] as const);
    this.#timeoutMs = o.timeoutMs === undefined ? 300_000 : is.integer('timeoutMs', o.timeoutMs, 1, 2 ** 31 - 1);
  }

  #call(method: string, parameters: Record<string, unknown>, signal: AbortSignal | undefined, more = false) {
    return varlinkCall(
      this.socket,
      `io.systemd.sysext.${method}`,
      { class: this.class, ...parameters },
      {
        more,
        timeoutMs: this.#timeoutMs,
        ...(signal ? { signal } : {}),
      },
    );
  }

  async list(opts: { signal?: AbortSignal } = {}): Promise<SysextImage[]> {
    try {
      const replies = await this.#call('List', {}, opts.signal, true);
      return replies.map((r) => ({
        name: String(r.Name),
        type: String(r.Type),
        path: String(r.Path ?? ''),
        class: r.Class === 'confext' ? 'confext' : 'sysext',
      }));
    } catch (e) {
      if (e instanceof SysextDriverError && e.code === 'NO_IMAGES_FOUND') return [];
      throw e;
    }
  }

  async merge(opts: DriverCallOptions = {}): Promise<DriverResult> {
    await this.#call('Merge', flags(opts), opts.signal);
    return { log: '' };
  }

  /** `io.systemd.sysext.Unmerge`. */
  async unmerge(opts: Omit<DriverCallOptions, 'force'> = {}): Promise<DriverResult> {
    await this.#call('Unmerge', opts.noReload === undefined ? {} : { noReload: opts.noReload }, opts.signal);
    return { log: '' };
  }

  async refresh(opts: DriverCallOptions = {}): Promise<DriverResult> {
    await this.#call('Refresh', flags(opts), opts.signal);
    return { log: '' };
  }
}

function flags(o: DriverCallOptions): Record<string, boolean> {
  return { ...(o.force === undefined ? {} : { force: o.force }), ...(o.noReload === undefined ? {} : { noReload: o.noReload }) };
}

/**
 * The `systemd-sysext` / `systemd-confext` command for a root (every version), with the
 * library's environment (see {@link sysextEnvironment}); its failures are typed like
 * {@link VarlinkDriver}'s.
 * @example
 * ```ts
 * await new CommandDriver({ root: '/mnt/image' }).merge();
 * ```
 */
export class CommandDriver implements SysextDriver {
  readonly transport = 'command' as const;
  readonly class: 'sysext' | 'confext';
  /** The root it acts on (`--root`). */
  readonly root: string;
  readonly #binary: string | undefined;

  /** A driver for `root` (default `/`) and `class` (default `sysext`), running `binary` (default by class, from PATH). */
  constructor(opts: { root?: string; class?: 'sysext' | 'confext'; binary?: string } = {}) {
    const o = is.options<{ root?: string; class?: 'sysext' | 'confext'; binary?: string }>('options', opts);
    this.root = o.root === undefined ? '/' : is.nonEmpty('root', o.root);
    this.class = is.oneOf('class', o.class ?? 'sysext', ['sysext', 'confext'] as const);
    this.#binary = o.binary === undefined ? undefined : is.nonEmpty('binary', o.binary);
  }

  #opts(signal: AbortSignal | undefined) {
    return { root: this.root, kind: this.class, ...(this.#binary ? { binary: this.#binary } : {}), ...(signal ? { signal } : {}) };
  }

  async #run(action: 'merge' | 'unmerge' | 'refresh', o: DriverCallOptions): Promise<DriverResult> {
    try {
      const r = await sysext(action, { ...this.#opts(o.signal), ...(o.force ? { force: true } : {}), ...(o.noReload ? { noReload: true } : {}) });
      return { log: r.stderr };
    } catch (e) {
      if (!(e instanceof SysextError)) throw e;
      // The command's messages, as systemd 252-262 word them, mapped to the Varlink errors' codes.
      const from = { stderr: e.stderr, exitCode: e.exitCode };
      const m = /Hierarchy '([^']+)' is already merged/.exec(e.stderr);
      if (m) throw new SysextDriverError('ALREADY_MERGED', e.message, null, { hierarchy: m[1] }, from);
      if (e.exitCode === null && /is not installed/.test(e.message)) throw new SysextDriverError('NOT_AVAILABLE', e.message, null, {}, from);
      if (/Need to be privileged/.test(e.stderr)) throw new SysextDriverError('PERMISSION_DENIED', e.message, null, {}, from);
      throw e;
    }
  }

  async list(opts: { signal?: AbortSignal } = {}): Promise<SysextImage[]> {
    const images = await listImages(this.#opts(opts.signal));
    return images.map((i) => ({ name: i.name, type: i.type, path: i.path, class: this.class }));
  }

  merge(opts: DriverCallOptions = {}): Promise<DriverResult> {
    return this.#run('merge', opts);
  }

  /** `systemd-sysext unmerge`. */
  unmerge(opts: Omit<DriverCallOptions, 'force'> = {}): Promise<DriverResult> {
    return this.#run('unmerge', opts);
  }

  refresh(opts: DriverCallOptions = {}): Promise<DriverResult> {
    return this.#run('refresh', opts);
  }
}

/** Options of {@link sysextDriver}. */
export interface SysextDriverOptions {
  /** The root (default `/`). Only `/` can be driven over the system's socket. */
  root?: string;
  class?: 'sysext' | 'confext';
  /** The installed systemd (default: {@link detectSystemd}). */
  systemd?: SystemdInfo;
  /** The Varlink socket (default {@link SYSEXT_VARLINK_SOCKET}); given, it serves `root`. */
  socket?: string;
  /** `auto` (default), or force one implementation. */
  transport?: 'auto' | 'command' | 'varlink';
}

/**
 * The driver for the installed systemd: Varlink where systemd is 255 or later, its socket
 * exists and it serves `root` (the system's socket serves `/`; a `socket` you give serves the
 * `root` you give), and no hierarchy has to be left out (the service's environment cannot
 * carry `SYSTEMD_SYSEXT_HIERARCHIES`); the command otherwise (252–254, other roots).
 * @example
 * ```ts
 * const driver = await sysextDriver();
 * console.log(driver.transport); // 'varlink' on systemd 257 with systemd-sysext.socket, else 'command'
 * ```
 */
export async function sysextDriver(opts: SysextDriverOptions = {}): Promise<SysextDriver> {
  const o = is.options<SysextDriverOptions>('options', opts);
  const root = o.root === undefined ? '/' : is.nonEmpty('root', o.root);
  const cls = is.oneOf('class', o.class ?? 'sysext', ['sysext', 'confext'] as const);
  const transport = is.oneOf('transport', o.transport ?? 'auto', ['auto', 'command', 'varlink'] as const);
  const socket = o.socket === undefined ? SYSEXT_VARLINK_SOCKET : is.nonEmpty('socket', o.socket);
  if (transport === 'command') return new CommandDriver({ root, class: cls });
  if (transport === 'varlink') return new VarlinkDriver({ socket, class: cls });
  const systemd = o.systemd ?? (await detectSystemd());
  const servesRoot = o.socket !== undefined || root === '/';
  const envNeeded = cls === 'sysext' && (await sysextEnvironment('merge', root, {})).SYSTEMD_SYSEXT_HIERARCHIES !== undefined;
  if (systemd !== undefined && systemd.version >= 255 && servesRoot && !envNeeded && existsSync(socket)) return new VarlinkDriver({ socket, class: cls });
  return new CommandDriver({ root, class: cls });
}

/**
 * Merges (or refreshes) and checks that `expected` sysexts really are merged into /usr (or,
 * with `kind: 'confext'`, confexts into /etc) afterwards: systemd 252 can print errors and
 * still exit 0 having merged nothing.
 * @example
 * ```ts
 * await mergeAndVerify('refresh', ['tools', 'debug-tools'], { root: '/' });
 * ```
 */
export async function mergeAndVerify(
  action: 'merge' | 'refresh',
  expected: readonly string[],
  opts: SysextOptions & { systemd?: SystemdInfo; socket?: string } = {},
): Promise<string[]> {
  // The driver for the installed systemd (Varlink where it serves this root), or the binary given.
  const cls = opts.kind ?? 'sysext';
  const driver =
    opts.binary !== undefined
      ? new CommandDriver({ class: cls, binary: opts.binary, ...(opts.root ? { root: opts.root } : {}) })
      : await sysextDriver({
          class: cls,
          ...(opts.root ? { root: opts.root } : {}),
          ...(opts.systemd ? { systemd: opts.systemd } : {}),
          ...(opts.socket ? { socket: opts.socket } : {}),
        });
  const call = { ...(opts.force ? { force: true } : {}), ...(opts.noReload ? { noReload: true } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  const { log } = await (action === 'merge' ? driver.merge(call) : driver.refresh(call));
  const h = opts.kind === 'confext' ? 'etc' : 'usr';
  const merged = (await mergedExtensions(opts.root ?? '/', [h]))[h] ?? [];
  const missing = expected.filter((n) => !merged.includes(n));
  if (missing.length > 0) {
    const tool = opts.kind === 'confext' ? 'systemd-confext' : 'systemd-sysext';
    throw new SysextError(`${tool} ${action} did not merge ${missing.join(', ')}${opts.root ? ` into ${opts.root}` : ''}`, log, 0);
  }
  return merged;
}
