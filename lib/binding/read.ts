/**
 * Reads inside commits, mirroring native/query.cc: commits and history, stat, list, read,
 * readlink, batched queries, and the synchronous path for microsecond reads. Attached to
 * {@link Repo}'s prototype by lib/binding/repo.ts (see lib/binding/repo-access.ts).
 * @module
 */
import { availableParallelism } from 'node:os';
import type { NativeCommit, NativeEntry, NativeQueryOp, NativeQueryResult } from './native-contract.js';
import * as is from './args.js';
import { ArgumentError, OstreeError } from './errors.js';
import { cancellable, syncCall, type CallOptions } from './signal.js';
import { repoMethods, type RepoAccess } from './repo-access.js';

/** A commit as loaded from the repository. */
export interface Commit {
  /** The commit checksum. */
  checksum: string;
  subject: string;
  body: string;
  /** Commit time (seconds precision). */
  timestamp: Date;
  /** Parent commit checksum, or null for a root commit. */
  parent: string | null;
  /** The `version` metadata key, if set. */
  version: string | null;
  /** Checksum of the root tree contents. */
  contentChecksum: string | null;
  /** The commit metadata (a{sv}) as plain values. */
  metadata: Record<string, unknown>;
  /** Detached metadata (signatures live here), or null. */
  detachedMetadata: Record<string, unknown> | null;
  /** True when not all objects of the commit are present (shallow or interrupted pull). */
  partial: boolean;
}

/** An entry inside a commit's tree. */
export interface CommitEntry {
  /** Base name. */
  name: string;
  /** Absolute path inside the commit (`/usr/lib/os-release`). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'special';
  /** st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  /** Size in bytes (files), 0 otherwise. */
  size: number;
  /** Symlink target (symlinks only). */
  target?: string;
  /** Content object checksum (files, symlinks) or dirtree checksum (directories). */
  checksum?: string;
}

/** One read in a {@link Repo.query} batch. */
export type QueryOp =
  | { op: 'stat'; path: string; optional?: boolean }
  | { op: 'list'; path: string; optional?: boolean }
  | { op: 'readlink'; path: string; optional?: boolean }
  | { op: 'read'; path: string; optional?: boolean; maxBytes?: number }
  | { op: 'commit' };

/**
 * Result of a {@link QueryOp}, by op: stat → entry, list → entries, read → Buffer, readlink →
 * string, commit → {@link Commit}; null when optional and missing.
 */
export type QueryResult = CommitEntry | CommitEntry[] | Buffer | string | Commit | null;

/** One commit's reads in a {@link Repo.queryMany} batch. */
export interface QueryRequest {
  /** Ref or checksum. */
  rev: string;
  ops: QueryOp[];
}

/** The largest file the synchronous read path reads (1 MiB); bigger files take the async path. */
export const SYNC_READ_LIMIT = 1 << 20;

/** Most commits {@link Repo.log} walks. */
const MAX_HISTORY = 1_000_000;

function toEntry(e: NativeEntry): CommitEntry {
  return e;
}

/**
 * One async query through the handle's read batcher. File reads in a batch are bounded by
 * SYNC_READ_LIMIT, so a big file cannot hold up the reads batched with it: a read that may be
 * bigger is sent capped, and if the file is over the cap it is read again alone, in its own
 * hop with its own cancellable, under the caller's limit.
 */
async function batched(
  a: RepoAccess,
  operation: string,
  signal: AbortSignal | undefined,
  rev: string,
  ops: NativeQueryOp[],
): Promise<{ commit: string; results: NativeQueryResult[] }> {
  const big = (op: NativeQueryOp): op is Extract<NativeQueryOp, { op: 'read' }> =>
    op.op === 'read' && (op.maxBytes === undefined || op.maxBytes > SYNC_READ_LIMIT);
  const capped = ops.some(big);
  const sent = capped
    ? ops.map((op): NativeQueryOp => (big(op) ? { op: 'read', path: op.path, optional: op.optional ?? false, maxBytes: SYNC_READ_LIMIT } : op))
    : ops;
  try {
    const r = await a.batch(operation, signal, { rev, ops: sent });
    return { commit: r.commit!, results: r.results! };
  } catch (e) {
    if (!capped || !(e instanceof OstreeError) || e.code !== 'TOO_LARGE') throw e;
    return a.read(() => cancellable(operation, signal, (c) => a.native.query(rev, ops, c)));
  }
}

async function loadCommit(a: RepoAccess, rev: string, opts: CallOptions = {}): Promise<Commit> {
  is.rev('rev', rev);
  // Through the handle's cache of checked commits (as loadCommitSync): a commit read before
  // costs a stat, not a load and a hash.
  const r = await batched(a, `load commit ${rev}`, is.signal(opts.signal), rev, COMMIT_OP);
  return toCommit(r.results[0] as NativeCommit);
}

async function log(a: RepoAccess, rev: string, opts: CallOptions & { maxCount?: number } = {}): Promise<{ commits: Commit[]; truncated: boolean }> {
  is.rev('rev', rev);
  const max = is.optInteger('maxCount', opts.maxCount, 1, MAX_HISTORY) ?? MAX_HISTORY;
  const r = await cancellable(`log ${rev}`, is.signal(opts.signal), (c) => a.native.loadCommits(rev, max, c));
  return { commits: r.commits.map(toCommit), truncated: r.truncated };
}

async function query(a: RepoAccess, rev: string, ops: QueryOp[], opts: CallOptions = {}): Promise<{ commit: string; results: QueryResult[] }> {
  is.rev('rev', rev);
  const clean = queryOps('ops', ops);
  const r = await batched(a, `read in ${rev}`, is.signal(opts.signal), rev, clean);
  return withCommits(r, clean);
}

async function queryMany(a: RepoAccess, requests: QueryRequest[], opts: CallOptions = {}): Promise<Array<{ commit: string; results: QueryResult[] }>> {
  if (!Array.isArray(requests)) throw new ArgumentError('requests must be an array');
  const clean = requests.map((r, i) => {
    const o = is.options<QueryRequest>(`requests[${i}]`, r);
    return { rev: is.rev(`requests[${i}].rev`, o.rev), ops: queryOps(`requests[${i}].ops`, o.ops) };
  });
  const signal = is.signal(opts.signal);
  // Enough requests per chunk to amortise the hop (16 at least), enough chunks to use every
  // core, and at most QUERY_CHUNK per chunk: each chunk's answers are converted on the event
  // loop in one go (a chunk of 500 commits and files held it for ~10 ms; on a slower VM, at
  // ~40-60 us per answer, 128 still did and 64 came to 10.6 ms at p99, 32 to 6.8).
  const parallel = availableParallelism();
  const size = Math.min(QUERY_CHUNK, Math.max(16, Math.ceil(clean.length / parallel)));
  const parts: Array<typeof clean> = [];
  for (let k = 0; k < clean.length; k += size) parts.push(clean.slice(k, k + size));
  const answers: Array<Array<{ commit: string; results: QueryResult[] }>> = new Array(parts.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let k = next++; k < parts.length; k = next++) {
      const part = parts[k]!;
      let got: Array<{ commit: string; results: NativeQueryResult[] }>;
      try {
        got = await cancellable(`read in ${part.length} commits`, signal, (c) => a.native.queryMany(part, c));
      } catch (e) {
        next = parts.length; // the call rejects: start no more chunks
        throw e;
      }
      // Each chunk's commits are converted as it arrives, so no tick converts them all at once.
      answers[k] = got.map((r, j) => withCommits(r, part[j]!.ops));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, parts.length) }, lane));
  return answers.flat();
}

async function stat(a: RepoAccess, rev: string, path: string, opts: CallOptions = {}): Promise<CommitEntry> {
  const { results } = await query(a, rev, [{ op: 'stat', path }], opts);
  return toEntry(results[0] as NativeEntry);
}

async function listDir(a: RepoAccess, rev: string, path: string, opts: CallOptions = {}): Promise<CommitEntry[]> {
  const { results } = await query(a, rev, [{ op: 'list', path }], opts);
  return (results[0] as NativeEntry[]).map(toEntry);
}

async function readFile(a: RepoAccess, rev: string, path: string, opts: CallOptions & { maxBytes?: number } = {}): Promise<Buffer> {
  is.rev('rev', rev);
  const o = is.options<{ maxBytes?: number; signal?: AbortSignal }>('options', opts);
  const ops = readOp(path, is.optInteger('maxBytes', o.maxBytes, 1, 2 ** 40));
  const r = await batched(a, `read in ${rev}`, is.signal(o.signal), rev, ops);
  return r.results[0] as Buffer;
}

async function readLink(a: RepoAccess, rev: string, path: string, opts: CallOptions = {}): Promise<string> {
  const { results } = await query(a, rev, [{ op: 'readlink', path }], opts);
  return results[0] as string;
}

// ---- the synchronous path: microsecond reads on the calling thread ----
//
// The better-sqlite3 / fs.statSync lesson: a thread hop costs more than a cached read. These
// run libostree on the calling thread, with no hop, and the handle keeps the directories it
// has read (validated once). File reads here are bounded (SYNC_READ_LIMIT unless a smaller
// `maxBytes` is given).

function querySync(a: RepoAccess, rev: string, ops: QueryOp[]): { commit: string; results: QueryResult[] } {
  is.rev('rev', rev);
  const clean = queryOps('ops', ops).map((op) => (op.op === 'read' ? { ...op, maxBytes: Math.min(op.maxBytes ?? SYNC_READ_LIMIT, SYNC_READ_LIMIT) } : op));
  return withCommits(
    syncCall(`read in ${rev}`, () => a.native.querySync(rev, clean)),
    clean,
  );
}

function loadCommitSync(a: RepoAccess, rev: string): Commit {
  is.rev('rev', rev);
  return toCommit(syncCall(`read in ${rev}`, () => a.native.querySync(rev, COMMIT_OP)).results[0] as NativeCommit);
}

function statSync(a: RepoAccess, rev: string, path: string): CommitEntry {
  return toEntry(querySync(a, rev, [{ op: 'stat', path }]).results[0] as NativeEntry);
}

function listDirSync(a: RepoAccess, rev: string, path: string): CommitEntry[] {
  return (querySync(a, rev, [{ op: 'list', path }]).results[0] as NativeEntry[]).map(toEntry);
}

function readFileSync(a: RepoAccess, rev: string, path: string, opts: { maxBytes?: number } = {}): Buffer {
  is.rev('rev', rev);
  const maxBytes = is.optInteger('maxBytes', is.options<{ maxBytes?: number }>('options', opts).maxBytes, 1, SYNC_READ_LIMIT) ?? SYNC_READ_LIMIT;
  return syncCall(`read in ${rev}`, () => a.native.querySync(rev, readOp(path, maxBytes))).results[0] as Buffer;
}

function readLinkSync(a: RepoAccess, rev: string, path: string): string {
  return querySync(a, rev, [{ op: 'readlink', path }]).results[0] as string;
}

/**
 * {@link Repo}'s reads inside commits (lib/binding/read.ts). The async methods run on the
 * thread pool; the `…Sync` ones run libostree on the calling thread with no hop: use them for
 * small metadata reads in loops, and the async ones for anything that can take milliseconds
 * (big files, whole trees, locks, networks).
 */
export interface ReadMethods {
  /** Loads one commit (by ref or checksum), with its metadata and detached metadata. */
  loadCommit(rev: string, opts?: CallOptions): Promise<Commit>;

  /**
   * The history of `rev`, newest first, following parents while they are present locally.
   * `truncated` is true when an older parent is missing (a shallow pull).
   */
  log(rev: string, opts?: CallOptions & { maxCount?: number }): Promise<{ commits: Commit[]; truncated: boolean }>;

  /**
   * Runs many reads inside one commit in one native call (one thread hop): the way to read
   * lots of small things fast. Paths are absolute inside the commit.
   * @example
   * ```ts
   * const { results } = await repo.query('ext/foo', [
   *   { op: 'read', path: '/usr/lib/extension-release.d/extension-release.foo', optional: true },
   *   { op: 'list', path: '/usr' },
   * ]);
   * ```
   */
  query(rev: string, ops: QueryOp[], opts?: CallOptions): Promise<{ commit: string; results: QueryResult[] }>;

  /**
   * {@link Repo.query} for many commits at once: one native call (one thread hop) per chunk
   * of requests instead of one per call, the chunks spread over the CPUs. The way to read
   * something from every installed extension. Rejects if any request fails.
   * @example
   * ```ts
   * const answers = await repo.queryMany(names.map((n) => ({
   *   rev: `ext/${n}`,
   *   ops: [{ op: 'commit' }, { op: 'read', path: `/usr/lib/extension-release.d/extension-release.${n}`, optional: true }],
   * })));
   * ```
   */
  queryMany(requests: QueryRequest[], opts?: CallOptions): Promise<Array<{ commit: string; results: QueryResult[] }>>;

  /** Describes a path inside a commit; rejects with `NOT_FOUND` if absent. */
  stat(rev: string, path: string, opts?: CallOptions): Promise<CommitEntry>;

  /** Lists a directory inside a commit. */
  listDir(rev: string, path: string, opts?: CallOptions): Promise<CommitEntry[]>;

  /** Reads a regular file inside a commit; `maxBytes` refuses larger files with `TOO_LARGE`. */
  readFile(rev: string, path: string, opts?: CallOptions & { maxBytes?: number }): Promise<Buffer>;

  /** Reads a symbolic link's target inside a commit. */
  readLink(rev: string, path: string, opts?: CallOptions): Promise<string>;

  /**
   * {@link Repo.query} on the calling thread; `read` ops are bounded by {@link SYNC_READ_LIMIT}.
   * @example
   * ```ts
   * const { results: [commit, release] } = repo.querySync('ostree-sysext/ext/htop', [
   *   { op: 'commit' },
   *   { op: 'read', path: '/usr/lib/extension-release.d/extension-release.htop', optional: true },
   * ]);
   * ```
   */
  querySync(rev: string, ops: QueryOp[]): { commit: string; results: QueryResult[] };

  /**
   * {@link Repo.loadCommit} on the calling thread.
   * @example
   * ```ts
   * const { subject, metadata } = repo.loadCommitSync(checksum);
   * ```
   */
  loadCommitSync(rev: string): Commit;

  /**
   * {@link Repo.stat} on the calling thread.
   * @example
   * ```ts
   * const e = repo.statSync(commit, '/usr/bin/htop'); // { type: 'file', mode, size, … }
   * ```
   */
  statSync(rev: string, path: string): CommitEntry;

  /**
   * {@link Repo.listDir} on the calling thread.
   * @example
   * ```ts
   * const names = repo.listDirSync(commit, '/usr/bin').map((e) => e.name);
   * ```
   */
  listDirSync(rev: string, path: string): CommitEntry[];

  /**
   * {@link Repo.readFile} on the calling thread, for files up to {@link SYNC_READ_LIMIT} bytes
   * (a larger one is refused with `TOO_LARGE`: read it with the async `readFile`).
   * @example
   * ```ts
   * const text = repo.readFileSync(commit, '/usr/lib/os-release').toString();
   * ```
   */
  readFileSync(rev: string, path: string, opts?: { maxBytes?: number }): Buffer;

  /**
   * {@link Repo.readLink} on the calling thread.
   * @example
   * ```ts
   * const target = repo.readLinkSync(commit, '/usr/lib/libfoo.so');
   * ```
   */
  readLinkSync(rev: string, path: string): string;
}

/** @internal The ReadMethods methods, attached to {@link Repo}'s prototype by lib/binding/repo.ts. */
export const readMethods = repoMethods<ReadMethods>({
  loadCommit,
  log,
  query,
  queryMany,
  stat,
  listDir,
  readFile,
  readLink,
  querySync,
  loadCommitSync,
  statSync,
  listDirSync,
  readFileSync,
  readLinkSync,
});

/** Most requests {@link Repo.queryMany} sends in one native call (one thread hop). */
const QUERY_CHUNK = 32;

/** The one op of a commit load (shared: native code only reads it). */
const COMMIT_OP: NativeQueryOp[] = [{ op: 'commit' }];

/** readFile's one op, checked and in the native shape (what {@link queryOps} builds from it). */
function readOp(path: string, maxBytes: number | undefined): NativeQueryOp[] {
  return [{ op: 'read', path: is.treePath('path', path), optional: false, ...(maxBytes === undefined ? {} : { maxBytes }) }];
}

/** Checks query ops and copies them into the native shape. */
function queryOps(name: string, ops: unknown): NativeQueryOp[] {
  if (!Array.isArray(ops)) throw new ArgumentError(`${name} must be an array`);
  return ops.map((op, i) => {
    const o = is.options<{ op: string; path: string; optional?: boolean }>(`${name}[${i}]`, op);
    const kind = is.oneOf(`${name}[${i}].op`, o.op, ['stat', 'list', 'read', 'readlink', 'commit'] as const);
    if (kind === 'commit') return { op: 'commit' };
    const path = is.treePath(`${name}[${i}].path`, o.path);
    const optional = is.bool(`${name}[${i}].optional`, o.optional, false);
    if (kind === 'read') {
      const maxBytes = is.optInteger(`${name}[${i}].maxBytes`, (o as { maxBytes?: number }).maxBytes, 1, 2 ** 40);
      return { op: kind, path, optional, ...(maxBytes === undefined ? {} : { maxBytes }) };
    }
    return { op: kind, path, optional };
  });
}

/** A native query answer with its `commit` op results converted to {@link Commit}s. */
function withCommits(r: { commit: string; results: NativeQueryResult[] }, ops: NativeQueryOp[]): { commit: string; results: QueryResult[] } {
  const results = r.results.map((v, i) => (ops[i]!.op === 'commit' ? toCommit(v as NativeCommit) : v)) as QueryResult[];
  return { commit: r.commit, results };
}

function toCommit(row: NativeCommit): Commit {
  const [checksum, subject, body, timestamp, parent, version, contentChecksum, metadata, d, partial] = row;
  // libostree "removes" detached metadata by writing an empty file, which reads back as {}.
  const detachedMetadata = d && Object.keys(d).length > 0 ? d : null;
  return { checksum, subject, body, timestamp: new Date(timestamp * 1000), parent, version, contentChecksum, metadata, detachedMetadata, partial };
}
