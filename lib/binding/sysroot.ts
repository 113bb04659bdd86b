/**
 * `Sysroot`: the deployments of an OSTree system, read from any directory (a booted host is
 * just the sysroot at `/`). OstreeSysroot is not thread-safe, so calls on one handle run one
 * at a time.
 * @module
 */
import { join } from 'node:path';
import type { NativeSysroot } from './native-contract.js';
import * as is from './args.js';
import { AbortError, OstreeError } from './errors.js';
import { native } from './native.js';
import { Repo, type CallOptions, type OpenOptions } from './repo.js';
import { cancellable, SerialQueue } from './signal.js';

/** One deployment of a sysroot. */
export interface Deployment {
  /** Position in the boot order (0 is the default). */
  index: number;
  osname: string;
  /** The deployed commit. */
  checksum: string;
  /** Deployment serial (several deployments of one commit differ by it). */
  serial: number;
  bootSerial: number;
  booted: boolean;
  staged: boolean;
  pinned: boolean;
  /** The deployment's root, relative to the sysroot (`ostree/deploy/os/deploy/<csum>.0`). */
  path: string;
  /** The origin refspec it tracks, if any. */
  refspec: string | null;
}

/**
 * An OSTree sysroot loaded from a directory.
 * @example
 * ```ts
 * const sysroot = await Sysroot.load('/');
 * for (const d of sysroot.deployments()) console.log(d.osname, d.checksum, d.booted);
 * ```
 */
export class Sysroot {
  readonly #native: NativeSysroot;
  readonly #queue = new SerialQueue();
  readonly #path: string;

  private constructor(handle: NativeSysroot, path: string) {
    this.#native = handle;
    this.#path = path;
  }

  /** Loads the sysroot at `path` (default `/`). */
  static async load(path = '/', opts: CallOptions = {}): Promise<Sysroot> {
    is.nonEmpty('path', path);
    const h = await cancellable(`load sysroot ${path}`, is.signal(opts.signal), (c) => native().Sysroot.load(path, c));
    return new Sysroot(h, path);
  }

  /** The sysroot directory. */
  get path(): string {
    return this.#path;
  }

  /** The deployments, in boot order, as last loaded. */
  deployments(): Deployment[] {
    return this.#native.deployments();
  }

  /** The booted deployment, or null when this sysroot is not the running system. */
  bootedDeployment(): Deployment | null {
    return this.deployments().find((d) => d.booted) ?? null;
  }

  /** Absolute path of a deployment's root directory. */
  deploymentPath(d: Deployment): string {
    return join(this.#path, d.path);
  }

  /** Re-reads the deployments if the sysroot changed on disk. */
  async reload(opts: CallOptions = {}): Promise<void> {
    const signal = is.signal(opts.signal);
    await this.#queue.run(() => cancellable(`reload sysroot ${this.#path}`, signal, (c) => this.#native.reload(c)));
  }

  /**
   * Runs `fn` holding the sysroot's lock (`ostree/lock`, the one `ostree admin` takes), so
   * only one apply or deploy runs at a time. With `wait: false` (default) a held lock
   * rejects at once with `LOCKED`; with `wait: true` it waits for the holder, trying again
   * every few milliseconds (up to 100 ms apart) without occupying a thread, until it gets the
   * lock or `signal` aborts (AbortError; nothing was locked).
   */
  async withLock<T>(fn: () => Promise<T>, opts: CallOptions & { wait?: boolean } = {}): Promise<T> {
    const wait = is.bool('wait', opts.wait, false);
    const signal = is.signal(opts.signal);
    const op = `lock sysroot ${this.#path}`;
    return this.#queue.run(async () => {
      // ostree_sysroot_lock() would block a libuv pool thread until the holder lets go, and
      // cannot be cancelled: only ever try-lock natively, and wait here, on timers.
      let got = await cancellable(op, signal, (c) => this.#native.lock(false, c));
      for (let delay = 5; !got && wait; delay = Math.min(delay * 2, LOCK_RETRY_MAX_MS)) {
        await sleep(delay, signal, op);
        got = await cancellable(op, signal, (c) => this.#native.lock(false, c));
      }
      if (got && signal?.aborted) {
        // Aborted while the try-lock ran: let go at once rather than run fn.
        this.#native.unlock();
        throw new AbortError(`${op}: aborted`, { cause: signal.reason });
      }
      if (!got) {
        throw new OstreeError(`another process holds the lock of sysroot ${this.#path} (an apply or ostree admin is running); retry later or pass wait: true`, {
          domain: 'g-io-error-quark',
          gerrorCode: 27,
          code: 'LOCKED',
        });
      }
      try {
        return await fn();
      } finally {
        this.#native.unlock();
      }
    });
  }

  /** Opens the sysroot's repository (`ostree/repo`). */
  async repo(opts: OpenOptions = {}): Promise<Repo> {
    return Repo.open(join(this.#path, 'ostree', 'repo'), opts);
  }

  /** Releases the handle. */
  close(): void {
    this.#native.close();
  }
}

const LOCK_RETRY_MAX_MS = 100;

/** Waits `ms`, or rejects with AbortError as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined, operation: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = (): void => {
      clearTimeout(timer);
      reject(new AbortError(`${operation}: aborted while waiting for the lock`, { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }, ms);
    if (signal?.aborted) aborted();
    else signal?.addEventListener('abort', aborted, { once: true });
  });
}
