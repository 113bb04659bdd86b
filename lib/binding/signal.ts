/**
 * AbortSignal → GCancellable wiring, error annotation, and the per-handle write queue.
 * @module
 * @internal
 */
import type { NativeCancellable } from './native-contract.js';
import { AbortError, OstreeError } from './errors.js';
import { native } from './native.js';

/** Options every asynchronous call accepts (defined here, with the cancellation it drives). */
export interface CallOptions {
  /** Cancels the call; it then rejects with an `AbortError`. */
  signal?: AbortSignal;
}

/**
 * Runs a native call with a GCancellable bound to `signal`; an aborted call rejects with
 * {@link AbortError}, other failures are OstreeErrors prefixed with `operation`.
 */
export async function cancellable<T>(operation: string, signal: AbortSignal | undefined, run: (c: NativeCancellable | undefined) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw new AbortError(`${operation}: aborted before it started`, { cause: signal.reason });
  let c: NativeCancellable | undefined;
  let onAbort: (() => void) | undefined;
  if (signal) {
    const cc = new (native().Cancellable)();
    c = cc;
    onAbort = () => cc.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    return await run(c);
  } catch (e) {
    if (signal?.aborted) throw new AbortError(`${operation}: aborted`, { cause: signal.reason });
    throw annotate(e, operation);
  } finally {
    if (signal && onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** Runs a synchronous native call, naming the operation in its error as the async path does. */
export function syncCall<T>(operation: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw annotate(e, operation);
  }
}

/** Prefixes an OstreeError with what the library was doing; other errors pass unchanged. */
export function annotate(e: unknown, operation: string): unknown {
  if (e instanceof OstreeError && !e.operation) {
    const a = e.withOperation(operation);
    return a;
  }
  return e;
}

/** A FIFO that runs async jobs one at a time (writes on one handle). */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `job` after every job queued before it has settled. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Runs at most `max` jobs at once, the rest in arrival order. Reads go through one per handle:
 * a thousand calls started in one tick then reach the thread pool a few at a time, so their
 * completions come back spread out instead of in one long batch on the event loop.
 */
export class Limiter {
  readonly #max: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(max: number) {
    this.#max = max;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.#active++;
        job()
          .then(resolve, reject)
          .finally(() => {
            this.#active--;
            this.#waiting.shift()?.();
          });
      };
      if (this.#active < this.#max) start();
      else this.#waiting.push(start);
    });
  }

  /** Starts every waiting job now (synchronously), whatever the limit: before a handle closes. */
  startAll(): void {
    for (let next = this.#waiting.shift(); next; next = this.#waiting.shift()) next();
  }
}
