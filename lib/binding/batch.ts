/**
 * The read batcher: one handle's small async reads, coalesced into few thread hops.
 * @module
 * @internal
 */
import { availableParallelism } from 'node:os';
import type { NativeBatchRequest, NativeQueryResult, NativeRepo } from './native-contract.js';
import { AbortError } from './errors.js';
import { annotate } from './signal.js';

/** A request's answer: the resolved commit (null: a missing ref with allowMissing) and the ops' results (none for resolveOnly). */
export interface BatchAnswer {
  commit: string | null;
  results?: NativeQueryResult[];
}

interface Item {
  request: NativeBatchRequest;
  operation: string;
  resolve: (a: BatchAnswer) => void;
  reject: (e: unknown) => void;
  settled: boolean;
  detach?: () => void;
}

/**
 * Most requests in one hop. Their answers are converted on the event loop in one go: at
 * 40–60 µs an answer on a slow VM, 32 stay within 2 ms (queryMany measured 64 at 10.6 ms p99).
 */
export const BATCH_MAX = 32;

/**
 * A thread hop costs more than a cached read (45–95 µs against 5–20 µs, README), so a handle
 * does not spend one per call: a call that finds a lane free leaves at once, alone (one
 * awaited call at a time costs what it did); calls made while all `lanes` (one per core, 2
 * to 4) are busy wait, and each lane that frees takes up to {@link BATCH_MAX} of them to the
 * native side together (`queryBatch`), each answered or failed on its own.
 */
export class ReadBatcher {
  readonly #native: NativeRepo;
  readonly #lanes: number;
  #busy = 0;
  #queue: Item[] = [];

  constructor(native: NativeRepo, lanes = Math.min(4, Math.max(2, availableParallelism()))) {
    this.#native = native;
    this.#lanes = lanes;
  }

  /**
   * Queues `request`; `operation` names it in errors (as {@link cancellable} does). An abort
   * settles the call at once with an AbortError, whether it has left yet or not.
   */
  run(operation: string, signal: AbortSignal | undefined, request: NativeBatchRequest): Promise<BatchAnswer> {
    if (signal?.aborted) return Promise.reject(new AbortError(`${operation}: aborted before it started`, { cause: signal.reason }));
    return new Promise<BatchAnswer>((resolve, reject) => {
      const item: Item = { request, operation, resolve, reject, settled: false };
      if (signal) {
        const onAbort = (): void => {
          const at = this.#queue.indexOf(item);
          if (at >= 0) this.#queue.splice(at, 1);
          this.#settle(item, () => reject(new AbortError(`${operation}: aborted`, { cause: signal.reason })));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        item.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.#queue.push(item);
      // A lane free: it leaves now, alone. All busy: it waits for the next lane that frees.
      if (this.#busy < this.#lanes) this.#pump(false);
    });
  }

  /** Sends every waiting request now, whatever the lanes: before the handle closes. */
  startAll(): void {
    this.#pump(true);
  }

  #settle(item: Item, how: () => void): void {
    if (item.settled) return;
    item.settled = true;
    item.detach?.();
    how();
  }

  #pump(all: boolean): void {
    while (this.#queue.length > 0 && (all || this.#busy < this.#lanes)) {
      const batch = this.#queue.splice(0, BATCH_MAX);
      let answers: Promise<Array<BatchAnswer | { error: unknown }>>;
      try {
        answers = this.#native.queryBatch(batch.map((i) => i.request));
      } catch (e) {
        // Refused before it left (a closed handle): every request fails with that error.
        for (const i of batch) this.#settle(i, () => i.reject(annotate(e, i.operation)));
        continue;
      }
      this.#busy++;
      answers.then(
        (got) => {
          this.#done();
          batch.forEach((i, k) => {
            const a = got[k]!;
            this.#settle(i, () => ('error' in a ? i.reject(annotate(a.error, i.operation)) : i.resolve(a)));
          });
        },
        (e: unknown) => {
          this.#done();
          for (const i of batch) this.#settle(i, () => i.reject(annotate(e, i.operation)));
        },
      );
    }
  }

  #done(): void {
    this.#busy--;
    if (this.#queue.length > 0) this.#pump(false);
  }
}
