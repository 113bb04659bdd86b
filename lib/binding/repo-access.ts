/**
 * How {@link Repo}'s topic modules reach the repository: lib/binding/remote.ts, pull.ts and
 * sign.ts each export plain functions taking a {@link RepoAccess} first, and
 * {@link repoMethods} turns them into methods that lib/binding/repo.ts assigns to the
 * prototype, as sharp attaches its topic modules to one class: no hand-written delegates.
 * @module
 */
import type { NativeBatchRequest, NativeCancellable, NativeRepo } from './native-contract.js';
import type { BatchAnswer } from './batch.js';

/**
 * What the topic modules (remotes, pulls, publishing) need from a {@link Repo}: its native handle, path and write queue.
 * @internal
 */
export interface RepoAccess {
  readonly native: NativeRepo;
  readonly path: string;
  /** Runs a read through the handle's read limiter (a few in flight at once). */
  read<T>(run: () => Promise<T>): Promise<T>;
  /** Runs a small read through the handle's read batcher (lib/binding/batch.ts). */
  batch(operation: string, signal: AbortSignal | undefined, request: NativeBatchRequest): Promise<BatchAnswer>;
  write<T>(operation: string, signal: AbortSignal | undefined, run: (c: NativeCancellable | undefined) => Promise<T>): Promise<T>;
}

/** @internal The key under which a {@link Repo} hands out its {@link RepoAccess}. */
export const REPO_ACCESS: unique symbol = Symbol('ostree-sysext.repo-access');

type Functions<M> = { [K in keyof M]: M[K] extends (...a: infer A) => infer R ? (access: RepoAccess, ...a: A) => R : never };

/**
 * @internal Methods (`this` is the repository) from functions taking its access first.
 * @example
 * ```ts
 * const remoteMethods = repoMethods<RemoteMethods>({ addRemote, remotes: listRemotes });
 * ```
 */
export function repoMethods<M>(fns: Functions<M>): M {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(fns) as Array<[string, (access: RepoAccess, ...a: unknown[]) => unknown]>) {
    out[name] = {
      [name](this: { [REPO_ACCESS]: RepoAccess }, ...a: unknown[]): unknown {
        return fn(this[REPO_ACCESS], ...a);
      },
    }[name];
  }
  return out as M;
}
