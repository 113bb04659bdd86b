/**
 * `Repo`: an OSTree repository handle. Every disk-touching call runs on a worker thread,
 * returns a Promise and accepts `{ signal }`. Writes on one handle are serialised; reads run
 * concurrently.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import type { NativeCancellable, NativeCheckoutOptions, NativeDevInoCache, NativeRepo, NativeWriteCommitOptions } from './native-contract.js';
import * as is from './args.js';
import { ArgumentError, OstreeError } from './errors.js';
import { native } from './native.js';
import { annotate, cancellable, Limiter, SerialQueue, syncCall, type CallOptions } from './signal.js';
import { pullMethods, type PullMethods } from './pull.js';
import { remoteMethods, type RemoteMethods } from './remote.js';
import { REPO_ACCESS, type RepoAccess } from './repo-access.js';
import { publishMethods, type PublishMethods } from './sign.js';
import { readMethods, type ReadMethods } from './read.js';
import { scanArchive } from './tar-scan.js';
import { ReadBatcher } from './batch.js';

/** Storage modes of a repository (see ostree-repo-config(5)). */
export type RepoMode = 'bare' | 'archive' | 'bare-user' | 'bare-user-only';
const REPO_MODES: readonly RepoMode[] = ['bare', 'archive', 'bare-user', 'bare-user-only'];

export type { CallOptions } from './signal.js';

/** Options for {@link Repo.open} and {@link Repo.create}. */
export interface OpenOptions extends CallOptions {
  /** Skip fsync for this handle: much faster, for tests and image builds only. Default false. */
  disableFsync?: boolean;
}

/** Options for {@link Repo.create}. */
export interface CreateOptions extends OpenOptions {
  /** Storage mode. Default `bare-user-only` (works unprivileged, canonical permissions). */
  mode?: RepoMode;
}

/**
 * A metadata value: converted to GVariant as string → `s`, boolean → `b`, integer → `x`,
 * other number → `d`, bigint → `x`, Uint8Array → `ay`, string[] → `as`, other arrays → `av`,
 * plain object → `a{sv}`; {@link variant} picks an exact type.
 */
export type MetadataValue = string | number | bigint | boolean | Uint8Array | TypedVariant | MetadataValue[] | { [key: string]: MetadataValue };

/** A value with an explicit GVariant type, made by {@link variant}. */
export interface TypedVariant {
  $variant: 's' | 'o' | 'g' | 'b' | 'y' | 'n' | 'q' | 'i' | 'u' | 'x' | 't' | 'd' | 'v';
  value: MetadataValue;
}

/**
 * Gives a metadata value an exact GVariant type.
 * @example
 * ```ts
 * await repo.commit({ tree, ref: 'x', metadata: { 'ostree.endoflife-rebase': 'y', count: variant('u', 3) } });
 * ```
 */
export function variant(type: TypedVariant['$variant'], value: MetadataValue): TypedVariant {
  return { $variant: type, value };
}

/** Options for {@link Repo.commit} and {@link Transaction.commit}. */
export interface CommitOptions extends CallOptions {
  /** The directory to commit. Exactly one of `tree` and `archive`. */
  tree?: string;
  /** A tar archive (any format libarchive reads) to commit instead of a directory. */
  archive?: string;
  /** Reuse the tree of this commit (checksum or ref): a new commit object, no content written. */
  fromCommit?: string;
  /** Commit a tree already in the repository, by its root dirtree and dirmeta checksums. */
  fromTree?: { tree: string; meta: string };
  subject?: string;
  body?: string;
  /** Commit metadata; `version` below is a shortcut for `metadata.version`. */
  metadata?: Record<string, MetadataValue>;
  /** Sets the `version` metadata key. */
  version?: string;
  /** Commit time. Default now. */
  timestamp?: Date | number;
  /**
   * Parent commit (checksum or ref); null for none. Default: the commit `ref` points to now,
   * as `ostree commit` does.
   */
  parent?: string | null;
  /** Ref to point at the new commit when the transaction commits. */
  ref?: string;
  /** Paths (relative to the tree root) left out, with everything below them. */
  skip?: string[];
  /** Ownership written for every file instead of the one on disk. */
  owner?: { uid: number; gid: number };
  /** Store canonical permissions (0644/0755, uid/gid 0). Implied in bare-user-only repos. */
  canonicalPermissions?: boolean;
  /** Do not record extended attributes. */
  skipXattrs?: boolean;
  /** Reuse checksums of hardlinked files from a checkout made with the same cache. */
  devinoCache?: DevInoCache;
}

/** Options for {@link Repo.checkout}. */
export interface CheckoutOptions extends CallOptions {
  /** `none` keeps ownership; `user` ignores uid/gid (non-root). Default: `user` unless root. */
  mode?: 'none' | 'user';
  /**
   * What to do with existing files. `none` (default) checks out into a new directory,
   * atomically: into a temporary sibling, renamed into place only when complete.
   * `union-identical` implies (and needs) `hardlinks: 'require'`.
   */
  overwrite?: 'none' | 'union' | 'add-files' | 'union-identical';
  /** `allow` (default) hardlinks where possible, `require` fails instead of copying, `never` copies. */
  hardlinks?: 'allow' | 'require' | 'never';
  /** Check out only this path of the commit. */
  subpath?: string;
  /** Turn OSTree `.wh.` whiteout files into deletions. */
  processWhiteouts?: boolean;
  /** Turn libostree's `.ostree-wh.NAME` markers into overlay whiteouts (char 0:0; needs root). */
  processPassthroughWhiteouts?: boolean;
  /** Record (device, inode) → checksum so a later commit of this checkout is cheap. */
  devinoCache?: DevInoCache;
}

/** Statistics of a committed transaction. */
export interface TransactionStats {
  metadataObjectsTotal: number;
  metadataObjectsWritten: number;
  contentObjectsTotal: number;
  contentObjectsWritten: number;
  contentBytesWritten: number;
}

/** Result of {@link Repo.prune}. */
export interface PruneResult {
  objectsTotal: number;
  objectsPruned: number;
  bytesFreed: number;
}

/** One problem found by {@link Repo.fsck}. */
export interface FsckProblem {
  checksum: string;
  objectType: string;
  message: string;
}

/** Result of {@link Repo.fsck}. */
export interface FsckResult {
  /** True when nothing is missing or corrupt. */
  ok: boolean;
  commitsChecked: number;
  partialCommits: number;
  objectsChecked: number;
  missing: FsckProblem[];
  corrupt: FsckProblem[];
}

/**
 * A cache mapping (device, inode) to object checksums: pass the same cache to a hardlink
 * {@link Repo.checkout} and to the {@link Repo.commit} of the result, and unchanged files are
 * not read again.
 */
export class DevInoCache {
  /** @internal */
  readonly native: NativeDevInoCache;
  /** An empty cache. */
  constructor() {
    this.native = new (native().DevInoCache)();
  }
}

/**
 * An open transaction; valid only inside {@link Repo.transaction}'s callback.
 */
export class Transaction {
  #repo: Repo;
  #open = true;
  /** @internal Commits the refs set so far point at (checked before the transaction commits). */
  readonly _refTargets = new Set<string>();

  /** @internal */
  constructor(repo: Repo) {
    this.#repo = repo;
  }

  /** @internal */
  close(): void {
    this.#open = false;
  }

  #check(): void {
    if (!this.#open)
      throw new OstreeError('the transaction is already finished', { domain: 'ostree-sysext-binding-error', gerrorCode: 2, code: 'INVALID_ARGUMENT' });
  }

  /** Writes a commit (see {@link CommitOptions}); `ref` is set when the transaction commits. */
  async commit(opts: CommitOptions): Promise<string> {
    this.#check();
    return this.#repo._writeCommit(opts, this);
  }

  /** Points `ref` at `checksum` (null deletes it) when the transaction commits. */
  setRef(ref: string, checksum: string | null, opts: { remote?: string } = {}): void {
    this.#check();
    is.refName('ref', ref);
    if (checksum !== null) is.checksum('checksum', checksum);
    const remote = opts.remote === undefined ? null : is.remoteName('remote', opts.remote);
    this.#repo._native.transactionSetRef(remote, ref, checksum);
    if (checksum !== null) this._refTargets.add(checksum);
  }
}

/**
 * An OSTree repository.
 *
 * @example
 * ```ts
 * const repo = await Repo.create('/tmp/repo', { mode: 'bare-user-only' });
 * const commit = await repo.commit({ tree: './rootfs', ref: 'os/main', subject: 'first' });
 * console.log(await repo.resolve('os/main') === commit); // true
 * await repo.checkout('os/main', '/tmp/checkout');
 * repo.close();
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface Repo below
export class Repo {
  /** @internal */
  readonly _native: NativeRepo;
  /** File reads over the batcher's cap (read.ts `batched`), in flight at once (twice libuv's default pool): see {@link Limiter}. */
  readonly #reads = new Limiter(8);
  /** Small reads (resolve, commits, stat, list, bounded file reads), coalesced into few hops. */
  readonly #batch: ReadBatcher;
  readonly #writes = new SerialQueue();
  readonly #tx = new AsyncLocalStorage<Transaction>();
  readonly #path: string;
  #access: RepoAccess | undefined;

  /** @internal */
  constructor(handle: NativeRepo, path?: string) {
    this._native = handle;
    this.#batch = new ReadBatcher(handle);
    // libostree reports a repo opened by path as /proc/self/fd/N: keep the caller's path.
    this.#path = path === undefined ? handle.path : resolvePath(path);
  }

  /** Creates a repository at `path` (the directory may exist and be empty) and opens it. */
  static async create(path: string, opts: CreateOptions = {}): Promise<Repo> {
    is.nonEmpty('path', path);
    const o = is.options<CreateOptions>('options', opts);
    const mode = is.oneOf('mode', o.mode, REPO_MODES, 'bare-user-only');
    const disableFsync = is.bool('disableFsync', o.disableFsync, false);
    const h = await cancellable(`create repository ${path}`, is.signal(o.signal), (c) => native().Repo.create(path, mode, { disableFsync }, c));
    return new Repo(h, path);
  }

  /** Opens an existing repository; rejects with `NOT_FOUND` when `path` holds none. */
  static async open(path: string, opts: OpenOptions = {}): Promise<Repo> {
    is.nonEmpty('path', path);
    const o = is.options<OpenOptions>('options', opts);
    const disableFsync = is.bool('disableFsync', o.disableFsync, false);
    const h = await cancellable(`open repository ${path}`, is.signal(o.signal), (c) => native().Repo.open(path, { disableFsync }, c));
    return new Repo(h, path);
  }

  /** The repository directory. */
  get path(): string {
    return this.#path;
  }

  /** The storage mode. */
  get mode(): RepoMode | 'bare-split-xattrs' {
    return this._native.mode;
  }

  /** True once {@link Repo.close} was called. */
  get closed(): boolean {
    return this._native.closed;
  }

  /**
   * Releases the handle. A single native call already running (a checkout, an fsck, a read)
   * finishes normally: it holds its own reference. Later calls reject with `CLOSED` — so
   * does a transaction or `commit()` that still has steps to take, and then no ref
   * moves.
   */
  close(): void {
    // Reads made before close() finish, as documented: the ones still queued start now.
    this.#reads.startAll();
    this.#batch.startAll();
    this._native.close();
  }

  /** The parsed config file: `{ section: { key: value } }` (raw strings). */
  config(): Record<string, Record<string, string>> {
    return this._native.getConfig();
  }

  /**
   * Sets one config key (written to disk at once). Group and key must be names GKeyFile
   * reads back as written (else {@link ArgumentError}): a group without `[`, `]` or control
   * characters; a key without `=`, `[`, `]` (locale suffixes are not read back by
   * {@link Repo.config}), control characters, leading `#` or leading/trailing spaces.
   */
  async setConfig(section: string, key: string, value: string | number | boolean, opts: CallOptions = {}): Promise<void> {
    is.nonEmpty('section', section);
    is.nonEmpty('key', key);
    // GKeyFile's own rules (gkeyfile.c is_group_name / is_key_name), plus what would split a line
    // or turn the key into a comment when the file is read again.
    if (/[[\]\p{Cc}]/u.test(section))
      throw new ArgumentError(`config group ${JSON.stringify(section)} must not contain '[', ']' or control characters`, 'ERR_INVALID_ARG_VALUE');
    if (!/^[^=[\]\p{Cc}#\s](?:[^=[\]\p{Cc}]*[^=[\]\p{Cc}\s])?$/u.test(key)) {
      throw new ArgumentError(
        `config key ${JSON.stringify(key)} is not a key GKeyFile reads back (no '=', '[', ']', control characters, leading '#' or surrounding spaces)`,
        'ERR_INVALID_ARG_VALUE',
      );
    }
    if (!['string', 'number', 'boolean'].includes(typeof value)) throw new ArgumentError('value must be a string, number or boolean');
    const v = String(value);
    if (/[\n\r\0]/.test(v)) throw new ArgumentError('value must not contain newlines or NUL', 'ERR_INVALID_ARG_VALUE');
    await this.#write(`set config ${section}.${key}`, opts.signal, (c) => this._native.setConfig(section, key, v, c));
  }

  /** Removes a config key, or a whole section when `key` is omitted. */
  async deleteConfig(section: string, key?: string, opts: CallOptions = {}): Promise<void> {
    is.nonEmpty('section', section);
    if (key !== undefined) is.nonEmpty('key', key);
    await this.#write(`delete config ${section}${key ? '.' + key : ''}`, opts.signal, (c) => this._native.setConfig(section, key ?? null, null, c));
  }

  /**
   * Lists refs as `{ name: checksum }`; remote refs are named `remote:ref`.
   * @param opts.prefix only refs starting with this path prefix (`ostree-sysext/ext`).
   * @param opts.remotes include remote refs (default true).
   */
  async listRefs(opts: CallOptions & { prefix?: string; remotes?: boolean } = {}): Promise<Record<string, string>> {
    const o = is.options<{ prefix?: string; remotes?: boolean; signal?: AbortSignal }>('options', opts);
    const prefix = o.prefix === undefined ? null : is.string('prefix', o.prefix);
    const remotes = is.bool('remotes', o.remotes, true);
    return cancellable('list refs', is.signal(o.signal), (c) => this._native.listRefs(prefix, { remotes }, c));
  }

  /**
   * Resolves a ref, `remote:ref` or checksum to a commit checksum. With `allowMissing`, a
   * missing ref gives null instead of a `NOT_FOUND` rejection.
   */
  resolve(rev: string, opts: CallOptions & { allowMissing: true }): Promise<string | null>;
  resolve(rev: string, opts?: CallOptions & { allowMissing?: false }): Promise<string>;
  async resolve(rev: string, opts: CallOptions & { allowMissing?: boolean } = {}): Promise<string | null> {
    is.rev('rev', rev);
    const o = is.options<{ allowMissing?: boolean; signal?: AbortSignal }>('options', opts);
    const allow = is.bool('allowMissing', o.allowMissing, false);
    const a = await this.#batch.run(`resolve ${rev}`, is.signal(o.signal), { rev, resolveOnly: true, allowMissing: allow });
    return a.commit;
  }

  /** Points `ref` at `checksum` at once (outside any transaction); null deletes the ref. */
  async setRef(ref: string, checksum: string | null, opts: CallOptions & { remote?: string } = {}): Promise<void> {
    is.refName('ref', ref);
    if (checksum !== null) is.checksum('checksum', checksum);
    const remote = opts.remote === undefined ? null : is.remoteName('remote', opts.remote);
    // No dangling refs: the commit must be in the repository (rejects with NOT_FOUND).
    if (checksum !== null) await this.loadCommit(checksum, opts.signal ? { signal: opts.signal } : {});
    await this.#write(`set ref ${ref}`, opts.signal, (c) => this._native.setRefImmediate(remote, ref, checksum, c));
  }

  /** Deletes `ref`; rejects with `NOT_FOUND` if it does not exist. */
  async deleteRef(ref: string, opts: CallOptions & { remote?: string } = {}): Promise<void> {
    is.refName('ref', ref);
    const full = opts.remote === undefined ? ref : `${is.remoteName('remote', opts.remote)}:${ref}`;
    const current = await this.resolve(full, { allowMissing: true, signal: opts.signal });
    if (current === null) throw new OstreeError(`ref '${full}' does not exist`, { domain: 'g-io-error-quark', gerrorCode: 1, operation: `delete ref ${full}` });
    await this.setRef(ref, null, opts);
  }

  /** Writes (or with null, removes) a commit's detached metadata. */
  async writeDetachedMetadata(checksum: string, metadata: Record<string, MetadataValue> | null, opts: CallOptions = {}): Promise<void> {
    is.checksum('checksum', checksum);
    // The validated snapshot is what native code converts (a getter is read once).
    const snapshot = metadata === null ? null : (is.metadata('metadata', metadata) as Record<string, MetadataValue>);
    await this.#write(`write detached metadata of ${checksum}`, opts.signal, (c) => this._native.writeDetachedMetadata(checksum, snapshot, c));
  }

  // The synchronous read path (…Sync methods) is lib/binding/read.ts; resolveSync is here, beside resolve.

  /**
   * {@link Repo.resolve} on the calling thread.
   * @example
   * ```ts
   * const c = repo.resolveSync('ostree-sysext/ext/htop');
   * ```
   */
  resolveSync(rev: string, opts: { allowMissing: true }): string | null;
  resolveSync(rev: string, opts?: { allowMissing?: false }): string;
  resolveSync(rev: string, opts: { allowMissing?: boolean } = {}): string | null {
    is.rev('rev', rev);
    const allow = is.bool('allowMissing', is.options<{ allowMissing?: boolean }>('options', opts).allowMissing, false);
    return syncCall(`resolve ${rev}`, () => this._native.resolveRevSync(rev, allow));
  }

  /**
   * Runs `fn` inside one repository transaction. The transaction commits when `fn`
   * resolves and is always aborted when `fn` (or the commit) fails. One transaction at a time
   * per handle: other writes on this handle wait for it.
   * @example
   * ```ts
   * const [a, b] = await repo.transaction(async (tx) => {
   *   const a = await tx.commit({ tree: './a', subject: 'a' });
   *   const b = await tx.commit({ tree: './b', parent: a, subject: 'b' });
   *   tx.setRef('demo', b);
   *   return [a, b];
   * });
   * ```
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, opts: CallOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw new ArgumentError('transaction needs a function');
    const signal = is.signal(opts.signal);
    if (this.#tx.getStore()) throw nested();
    return this.#writes.run(async () => {
      await cancellable('begin transaction', signal, (c) => this._native.prepareTransaction(c));
      const tx = new Transaction(this);
      try {
        const value = await this.#tx.run(tx, () => fn(tx));
        // No dangling refs: every commit a ref now points at must exist (staged ones count).
        for (const c of tx._refTargets) await this.loadCommit(c, signal ? { signal } : {});
        await cancellable('commit transaction', signal, (c) => this._native.commitTransaction(c));
        return value;
      } catch (e) {
        try {
          await this._native.abortTransaction();
        } catch (abortError) {
          // Closed mid-transaction: the transaction ended with the handle; the first error says why.
          if (abortError instanceof OstreeError && abortError.code === 'CLOSED') throw e;
          throw new AggregateError([e, abortError], 'the transaction failed, and aborting it failed too', { cause: abortError });
        }
        throw e;
      } finally {
        tx.close();
      }
    });
  }

  /**
   * Commits a directory tree (or tar archive) in its own transaction and returns the commit
   * checksum; with `ref`, the ref moves to it in the same transaction.
   *
   * A directory's files are hashed and written by one thread per CPU (at most 4) while one
   * more walks the tree: the objects and checksums are those `ostree commit` writes with the
   * same options (tested against it in every repository mode). Fifos, sockets and devices are
   * refused (`NOT_SUPPORTED`, naming the path), as libostree refuses them; an entry whose type
   * changes while the commit runs fails it (`FAILED`, "changed while it was being committed")
   * rather than being followed. With `devinoCache`, and for trees holding
   * overlay whiteouts, libostree's own single-threaded walk commits the tree.
   */
  async commit(opts: CommitOptions): Promise<string> {
    const args = commitArgs(opts); // every argument check, before a transaction begins
    return this.transaction((tx) => this._writeCommit(opts, tx, args), { signal: args.signal });
  }

  /** @internal */
  async _writeCommit(opts: CommitOptions, tx: Transaction, args = commitArgs(opts)): Promise<string> {
    const { n, ref, parent, fromCommit, signal } = args;
    if (fromCommit !== undefined) n.fromCommit = is.isChecksum(fromCommit) ? fromCommit : await this.resolve(fromCommit);
    if (parent === undefined) {
      if (ref !== undefined) {
        const p = await this.resolve(ref, { allowMissing: true });
        if (p !== null) n.parent = p;
      }
    } else if (parent !== null) {
      n.parent = is.isChecksum(parent) ? parent : await this.resolve(parent);
    }
    const what = n.tree ?? n.archive ?? n.fromCommit ?? `tree ${n.rootTree}`;
    // libostree's tar import aborts the process on some hard links: refuse those first.
    if (n.archive !== undefined) await scanArchive(n.archive, signal);
    const checksum = await cancellable(`commit ${what}`, signal, (c) => this._native.writeCommit(n, c));
    if (ref !== undefined) tx.setRef(ref, checksum);
    return checksum;
  }

  /**
   * Checks out a commit (or a `subpath` of it) into `destination`. With the default
   * `overwrite: 'none'` the checkout is atomic: `destination` must not exist, and it appears
   * only once complete.
   */
  async checkout(rev: string, destination: string, opts: CheckoutOptions = {}): Promise<void> {
    is.rev('rev', rev);
    is.nonEmpty('destination', destination);
    const o = is.options<CheckoutOptions>('options', opts);
    const n: NativeCheckoutOptions = {
      mode: is.oneOf('mode', o.mode, ['none', 'user'] as const, process.getuid?.() === 0 ? 'none' : 'user'),
      overwrite: is.oneOf('overwrite', o.overwrite, ['none', 'union', 'add-files', 'union-identical'] as const, 'none'),
      hardlinks: is.oneOf('hardlinks', o.hardlinks, ['allow', 'require', 'never'] as const, 'allow'),
      processWhiteouts: is.bool('processWhiteouts', o.processWhiteouts, false),
      processPassthroughWhiteouts: is.bool('processPassthroughWhiteouts', o.processPassthroughWhiteouts, false),
    };
    // libostree compares files by inode here and refuses (a g_return_if_fail) without hardlinks.
    if (n.overwrite === 'union-identical') {
      if (o.hardlinks === undefined) n.hardlinks = 'require';
      else if (n.hardlinks !== 'require')
        throw new ArgumentError(`overwrite 'union-identical' needs hardlinks 'require', got '${n.hardlinks}'`, 'ERR_INVALID_ARG_VALUE');
    }
    if (o.subpath !== undefined) n.subpath = is.treePath('subpath', o.subpath);
    if (o.devinoCache !== undefined) {
      if (!(o.devinoCache instanceof DevInoCache)) throw new ArgumentError('devinoCache must be a DevInoCache');
      n.devinoCache = o.devinoCache.native;
    }
    const signal = is.signal(o.signal);
    const op = `check out ${rev} to ${destination}`;
    const commit = is.isChecksum(rev) ? rev : await this.resolve(rev, { signal });
    if (n.overwrite !== 'none') {
      await cancellable(op, signal, (c) => this._native.checkout(commit, destination, n, c));
      return;
    }
    if (existsSync(destination)) {
      throw new OstreeError(`${destination} already exists`, { domain: 'g-io-error-quark', gerrorCode: 2, operation: op });
    }
    const tmp = join(dirname(destination), `.${basename(destination)}.tmp-${randomBytes(6).toString('hex')}`);
    // Where the repository's object files are the files themselves (bare as root with mode
    // none, bare-user(-only) with mode user), the library's own walker links them by checksum:
    // mkdir and linkat only, the `cp -al` floor. Everything else is libostree's checkout.
    const mode = this.mode;
    const linkable =
      n.hardlinks !== 'never' &&
      n.subpath === undefined &&
      n.devinoCache === undefined &&
      !n.processWhiteouts &&
      !n.processPassthroughWhiteouts &&
      ((mode === 'bare' && n.mode === 'none' && process.getuid?.() === 0) || ((mode === 'bare-user' || mode === 'bare-user-only') && n.mode === 'user'));
    try {
      if (linkable) {
        const view = new (native().Overlay)(this._native, [{ name: 'base', commit }], { createMissing: false, raw: true });
        try {
          await cancellable(op, signal, (c) => view.linkCheckout(tmp, { mode: n.mode ?? 'none', requireLinks: n.hardlinks === 'require' }, c));
        } finally {
          view.close();
        }
      } else {
        await cancellable(op, signal, (c) => this._native.checkout(commit, tmp, n, c));
      }
      await rename(tmp, destination);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw annotate(e, op);
    }
  }

  /**
   * Deletes unreachable objects. `depth` limits how much history of each ref is kept
   * (-1, the default, keeps all); `refsOnly` treats only refs as roots; `noPrune` only counts.
   */
  async prune(opts: CallOptions & { depth?: number; refsOnly?: boolean; noPrune?: boolean } = {}): Promise<PruneResult> {
    const o = is.options<{ depth?: number; refsOnly?: boolean; noPrune?: boolean; signal?: AbortSignal }>('options', opts);
    const n = {
      depth: is.optInteger('depth', o.depth, -1, 2 ** 31 - 1) ?? -1,
      refsOnly: is.bool('refsOnly', o.refsOnly, true),
      noPrune: is.bool('noPrune', o.noPrune, false),
    };
    return this.#write('prune', o.signal, (c) => this._native.prune(n, c));
  }

  /** Verifies every object reachable from every ref; reports missing and corrupt objects. */
  async fsck(opts: CallOptions = {}): Promise<FsckResult> {
    const r = await cancellable('fsck', is.signal(opts.signal), (c) => this._native.fsck(c));
    return { ok: r.missing.length === 0 && r.corrupt.length === 0, ...r };
  }

  /** Runs a write on this handle's queue, refusing calls from inside a transaction callback. */
  #write<T>(operation: string, signal: AbortSignal | undefined, run: (c: NativeCancellable | undefined) => Promise<T>): Promise<T> {
    const s = is.signal(signal);
    if (this.#tx.getStore()) return Promise.reject(nested(operation));
    return this.#writes.run(() => cancellable(operation, s, run));
  }

  /** @internal What the topic modules (read.ts, remote.ts, pull.ts, sign.ts) use: handle, path, read limiter, write queue. */
  get [REPO_ACCESS](): RepoAccess {
    return (this.#access ??= {
      native: this._native,
      path: this.#path,
      read: (run) => this.#reads.run(run),
      batch: (operation, signal, request) => this.#batch.run(operation, signal, request),
      write: (op, signal, run) => this.#write(op, signal, run),
    });
  }
}

// The topic modules' methods, on the prototype (as sharp attaches its topic modules): the
// interfaces below give them their types and documentation, repoMethods their `this`.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the class gets these members from Object.assign below
export interface Repo extends ReadMethods, RemoteMethods, PullMethods, PublishMethods {}
Object.assign(Repo.prototype, readMethods, remoteMethods, pullMethods, publishMethods);

/** Checks every commit option (no I/O) and builds the native options; refs are resolved later. */
function commitArgs(opts: CommitOptions): { n: NativeWriteCommitOptions; ref?: string; parent?: string | null; fromCommit?: string; signal?: AbortSignal } {
  const o = is.options<CommitOptions>('options', opts);
  const sources = [o.tree, o.archive, o.fromCommit, o.fromTree].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new ArgumentError('exactly one of tree, archive, fromCommit and fromTree is required');
  const n: NativeWriteCommitOptions = {};
  if (o.fromTree !== undefined) {
    const t = is.options<{ tree: string; meta: string }>('fromTree', o.fromTree);
    n.rootTree = is.checksum('fromTree.tree', t.tree);
    n.rootMeta = is.checksum('fromTree.meta', t.meta);
  }
  if (o.tree !== undefined) n.tree = is.nonEmpty('tree', o.tree);
  if (o.archive !== undefined) n.archive = is.nonEmpty('archive', o.archive);
  const fromCommit = o.fromCommit === undefined ? undefined : is.rev('fromCommit', o.fromCommit);
  n.subject = is.optString('subject', o.subject) ?? '';
  if (o.body !== undefined) n.body = is.string('body', o.body);
  const metadata = { ...is.metadata('metadata', o.metadata) } as Record<string, MetadataValue>;
  if (o.version !== undefined) metadata.version = is.string('version', o.version);
  n.metadata = metadata;
  if (o.timestamp !== undefined) {
    const t = o.timestamp instanceof Date ? Math.floor(o.timestamp.getTime() / 1000) : o.timestamp;
    n.timestamp = is.integer('timestamp', t, 0, 253402300799);
  }
  const ref = o.ref === undefined ? undefined : is.refName('ref', o.ref);
  const parent = o.parent === undefined || o.parent === null ? o.parent : is.rev('parent', o.parent);
  if (o.skip !== undefined) n.skip = is.stringArray('skip', o.skip).map((p, i) => is.treePath(`skip[${i}]`, p));
  if (o.owner !== undefined) {
    const own = is.options<{ uid: number; gid: number }>('owner', o.owner);
    n.uid = is.integer('owner.uid', own.uid, 0, 0xffffffff);
    n.gid = is.integer('owner.gid', own.gid, 0, 0xffffffff);
  }
  n.canonicalPermissions = is.bool('canonicalPermissions', o.canonicalPermissions, false);
  n.skipXattrs = is.bool('skipXattrs', o.skipXattrs, false);
  if (o.devinoCache !== undefined) {
    if (!(o.devinoCache instanceof DevInoCache)) throw new ArgumentError('devinoCache must be a DevInoCache');
    n.devinoCache = o.devinoCache.native;
  }
  const signal = is.signal(o.signal);
  return { n, ref, parent, fromCommit, signal };
}

function nested(operation = 'a transaction'): Error {
  return new OstreeError(
    `cannot start ${operation} inside a transaction callback on the same handle (it would wait for itself); use the Transaction object's methods`,
    { domain: 'ostree-sysext-binding-error', gerrorCode: 2, code: 'TRANSACTION_IN_PROGRESS' },
  );
}
