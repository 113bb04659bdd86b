/**
 * Deadlines for network calls: an overall timeout and a stall timeout that cancel the call the
 * way an abort does, then surface as TIMED_OUT (remotes' summaries and refs, pulls).
 * @module
 */
import type { NativeCancellable } from './native-contract.js';
import * as is from './args.js';
import { AbortError, OstreeError } from './errors.js';
import { cancellable } from './signal.js';

const MAX_TIMEOUT = 2 ** 31 - 1;

/** @internal A timeout option in milliseconds (0: none), or `fallback`. */
export function timeoutMs(name: string, v: unknown, fallback: number): number {
  return is.optInteger(name, v, 0, MAX_TIMEOUT) ?? fallback;
}

/** @internal A call's overall and stall timers. */
export interface Deadline {
  /** The signal to hand to `cancellable()`: the caller's, or the deadline's. */
  signal: AbortSignal | undefined;
  /** Restarts the stall timer (progress was made). */
  touch(): void;
  /** Aborts the call because of `error` (a throwing progress callback). */
  fail(error: unknown): void;
  /** Maps a rejection to TIMED_OUT / the callback's error when the deadline caused it. */
  rethrow(e: unknown, operation: string): never;
  /** After success: rethrows an error a progress callback threw late (on the final snapshot). */
  check(): void;
  dispose(): void;
}

// Overall and stall timeouts cancel the GCancellable through an internal AbortController, so a
// hung request ends the same way an abort does, then surfaces as TIMED_OUT, not AbortError.
function deadline(user: AbortSignal | undefined, total: number, stall: number): Deadline {
  const ctl = new AbortController();
  let why: { timeout: string } | { error: unknown } | undefined;
  const stop = (reason: typeof why): void => {
    if (why || user?.aborted) return;
    why = reason;
    ctl.abort();
  };
  const overall = total > 0 ? setTimeout(() => stop({ timeout: `no result after ${total} ms` }), total) : undefined;
  overall?.unref();
  let stalled: NodeJS.Timeout | undefined;
  const touch = (): void => {
    if (stall <= 0) return;
    if (stalled) stalled.refresh();
    else {
      stalled = setTimeout(() => stop({ timeout: `no progress for ${stall} ms` }), stall);
      stalled.unref();
    }
  };
  touch();
  const onUser = (): void => ctl.abort();
  if (user) {
    if (user.aborted) ctl.abort();
    else user.addEventListener('abort', onUser, { once: true });
  }
  const usesInternal = user !== undefined || total > 0 || stall > 0;
  return {
    signal: usesInternal ? ctl.signal : undefined,
    touch,
    fail: (error) => stop({ error }),
    rethrow(e, operation) {
      if (user?.aborted) throw new AbortError(`${operation}: aborted`, { cause: user.reason });
      if (why && 'error' in why) throw why.error;
      if (why) throw new OstreeError(`timed out (${why.timeout})`, { domain: 'g-io-error-quark', gerrorCode: 24, operation, cause: e });
      throw e;
    },
    check() {
      if (why && 'error' in why) throw why.error;
    },
    dispose() {
      if (overall) clearTimeout(overall);
      if (stalled) clearTimeout(stalled);
      user?.removeEventListener('abort', onUser);
    },
  };
}

/** @internal Runs `run` under a deadline (TIMED_OUT) and the caller's signal (AbortError). */
export async function withDeadline<T>(
  operation: string,
  user: AbortSignal | undefined,
  total: number,
  stall: number,
  run: (c: NativeCancellable | undefined, d: Deadline) => Promise<T>,
): Promise<T> {
  if (user?.aborted) throw new AbortError(`${operation}: aborted before it started`, { cause: user.reason });
  const d: Deadline = deadline(user, total, stall);
  try {
    const value = await cancellable(operation, d.signal, (c) => run(c, d));
    d.check();
    return value;
  } catch (e) {
    d.rethrow(e, operation);
  } finally {
    d.dispose();
  }
}
