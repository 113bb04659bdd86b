/**
 * The contract of the native addon (`build/Release/ostree_sysext.node`). Only lib/ calls it;
 * lib/ validates every argument first, the addon re-checks types as a backstop.
 *
 * GVariant → JS mapping used for metadata: b → boolean; y n q i u h d → number; x t → number
 * when it is a safe integer, else bigint; s o g → string; ay → Buffer; a{s*} → object;
 * other arrays and tuples → arrays; v → its content; maybe → value or null.
 * JS → GVariant (a{sv}): string → s, boolean → b, integer → x, other number → d, bigint → x,
 * Uint8Array → ay, string[] → as, other arrays → av, object → a{sv},
 * `{ $variant: 'u', value }` → that exact type.
 * @module
 * @internal
 */

export interface NativeCancellable {
  cancel(): void;
  readonly cancelled: boolean;
}

export interface NativeDevInoCache {
  readonly __brand?: 'DevInoCache';
}

export interface NativeEntry {
  name: string;
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'special';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  target?: string;
  checksum?: string;
}

export type NativeQueryOp =
  | { op: 'stat' | 'list' | 'readlink'; path: string; optional?: boolean }
  | { op: 'read'; path: string; optional?: boolean; maxBytes?: number }
  | { op: 'commit' };

/** One request of `queryBatch`: a rev and its ops, or the rev alone, resolved as `resolveRev` does. */
export type NativeBatchRequest = { rev: string; ops: NativeQueryOp[] } | { rev: string; resolveOnly: true; allowMissing: boolean };
export type NativeQueryResult = NativeEntry | NativeEntry[] | Buffer | string | NativeCommit | null;

/**
 * A commit as native code hands it over: a row, turned into {@link Commit} by lib/repo.ts
 * (indexed stores are cheaper than eleven named ones; native/query.cc CommitToJs).
 */
export type NativeCommit = [
  checksum: string,
  subject: string,
  body: string,
  timestamp: number,
  parent: string | null,
  version: string | null,
  contentChecksum: string | null,
  metadata: Record<string, unknown>,
  detachedMetadata: Record<string, unknown> | null,
  partial: boolean,
];

export interface NativeTransactionStats {
  metadataObjectsTotal: number;
  metadataObjectsWritten: number;
  contentObjectsTotal: number;
  contentObjectsWritten: number;
  contentBytesWritten: number;
}

export interface NativeWriteCommitOptions {
  tree?: string;
  archive?: string;
  fromCommit?: string;
  rootTree?: string;
  rootMeta?: string;
  archiveAutocreateParents?: boolean;
  subject?: string;
  body?: string;
  parent?: string;
  timestamp?: number;
  metadata?: Record<string, unknown>;
  skip?: string[];
  uid?: number;
  gid?: number;
  canonicalPermissions?: boolean;
  skipXattrs?: boolean;
  generateSizes?: boolean;
  devinoCache?: NativeDevInoCache;
}

export interface NativeCheckoutOptions {
  mode?: 'none' | 'user';
  overwrite?: 'none' | 'union' | 'add-files' | 'union-identical';
  hardlinks?: 'allow' | 'require' | 'never';
  subpath?: string;
  processWhiteouts?: boolean;
  processPassthroughWhiteouts?: boolean;
  bareuseronlyDirs?: boolean;
  forceCopyZerosized?: boolean;
  devinoCache?: NativeDevInoCache;
}

export interface NativeFsckProblem {
  checksum: string;
  objectType: string;
  message: string;
}

export interface NativeFsckResult {
  commitsChecked: number;
  partialCommits: number;
  objectsChecked: number;
  missing: NativeFsckProblem[];
  corrupt: NativeFsckProblem[];
}

export interface NativePruneResult {
  objectsTotal: number;
  objectsPruned: number;
  bytesFreed: number;
}

export interface NativeRemoteAddOptions {
  url: string;
  /** Keys of the remote's config section: string → string, boolean → boolean, string[] → list. */
  options?: Record<string, string | boolean | string[]>;
  /** add (fails when it exists, as EXISTS), replace (whole section), add-if-not-exists. Default add. */
  mode?: 'add' | 'replace' | 'add-if-not-exists';
}

export interface NativeRemote {
  name: string;
  url: string | null;
  /** Effective values (libostree defaults: gpg-verify true, gpg-verify-summary false). */
  gpgVerify: boolean;
  gpgVerifySummary: boolean;
  /** Raw config strings of the keys set for the remote (its section plus well-known keys). */
  options: Record<string, string>;
}

export interface NativePullProgress {
  fetched: number;
  requested: number;
  scannedMetadata: number;
  metadataFetched: number;
  outstandingFetches: number;
  outstandingWrites: number;
  fetchedDeltaParts: number;
  totalDeltaParts: number;
  bytesTransferred: number;
  fetchedDeltaPartSize: number;
  totalDeltaPartSize: number;
  scanning: boolean;
  /** libostree's status line; empty until it sets one (at the end). */
  status: string;
  done: boolean;
}

/**
 * Pull options (libostree 2022.7 has no low-speed/timeout options: lib/ enforces timeouts by
 * cancelling). The pull runs on a dedicated thread, into a fresh OstreeRepo handle opened on
 * this handle's path (inheriting disable-fsync), under its own pushed GMainContext.
 */
export interface NativePullOptions {
  /** A remote name, or a URL (then refs are written as local refs unless overrideRemoteName). */
  remote: string;
  refs?: string[];
  depth?: number;
  mirror?: boolean;
  commitOnly?: boolean;
  untrusted?: boolean;
  overrideUrl?: string;
  overrideRemoteName?: string;
  gpgVerify?: boolean;
  gpgVerifySummary?: boolean;
  networkRetries?: number;
  httpHeaders?: Record<string, string>;
  disableStaticDeltas?: boolean;
  requireStaticDeltas?: boolean;
  overrideCommitIds?: string[];
  timestampCheck?: boolean;
  /** Cancel (binding error TOO_LARGE) once more bytes than this arrived; 0 or absent: no budget. */
  maxBytes?: number;
  /** Cancel (TOO_LARGE) once more than this arrived while no object completed, per request on the wire (at most 8); 0 or absent: none. */
  maxObjectBytes?: number;
  /** libostree's update-frequency, ms. Default 100. */
  updateFrequencyMs?: number;
  /** Coalesced snapshots; the final one (done: true) arrives before the Promise settles. */
  onProgress?: (p: NativePullProgress) => void;
}

export interface NativeSignature {
  keyId: string;
  fingerprint: string;
  primaryFingerprint: string | null;
  valid: boolean;
  sigExpired: boolean;
  keyExpired: boolean;
  keyRevoked: boolean;
  keyMissing: boolean;
  /** Unix seconds. */
  timestamp: number;
  /** Unix seconds, 0 when none. */
  expiresAt: number;
  keyExpiresAt: number;
  pubkeyAlgorithm: string | null;
  hashAlgorithm: string | null;
  user: string | null;
  email: string | null;
}

export interface NativeRepo {
  readonly closed: boolean;
  readonly path: string;
  readonly mode: 'bare' | 'archive' | 'bare-user' | 'bare-user-only' | 'bare-split-xattrs';
  close(): void;
  getConfig(): Record<string, Record<string, string>>;
  setConfig(section: string, key: string | null, value: string | null, c?: NativeCancellable): Promise<void>;
  listRefs(prefix: string | null, opts: { remotes?: boolean }, c?: NativeCancellable): Promise<Record<string, string>>;
  resolveRev(rev: string, allowNoent: boolean, c?: NativeCancellable): Promise<string | null>;
  setRefImmediate(remote: string | null, ref: string, checksum: string | null, c?: NativeCancellable): Promise<void>;
  loadCommits(rev: string, maxCount: number, c?: NativeCancellable): Promise<{ commits: NativeCommit[]; truncated: boolean }>;
  writeDetachedMetadata(checksum: string, metadata: Record<string, unknown> | null, c?: NativeCancellable): Promise<void>;
  query(rev: string, ops: NativeQueryOp[], c?: NativeCancellable): Promise<{ commit: string; results: NativeQueryResult[] }>;
  queryMany(requests: { rev: string; ops: NativeQueryOp[] }[], c?: NativeCancellable): Promise<{ commit: string; results: NativeQueryResult[] }[]>;
  querySync(rev: string, ops: NativeQueryOp[]): { commit: string; results: NativeQueryResult[] };
  /** Unrelated reads in one hop, each answered or failed on its own (lib/binding/batch.ts). */
  queryBatch(requests: NativeBatchRequest[]): Promise<Array<{ commit: string | null; results?: NativeQueryResult[] } | { error: unknown }>>;
  /** What the handle's read caches hold now (for tests of their bounds). */
  cacheStats(): { trees: number; entries: number; commits: number };
  resolveRevSync(rev: string, allowNoent: boolean): string | null;
  prepareTransaction(c?: NativeCancellable): Promise<void>;
  commitTransaction(c?: NativeCancellable): Promise<NativeTransactionStats>;
  abortTransaction(): Promise<void>;
  transactionSetRef(remote: string | null, ref: string, checksum: string | null): void;
  writeCommit(opts: NativeWriteCommitOptions, c?: NativeCancellable): Promise<string>;
  checkout(commit: string, dest: string, opts: NativeCheckoutOptions, c?: NativeCancellable): Promise<void>;
  prune(opts: { refsOnly?: boolean; noPrune?: boolean; depth?: number }, c?: NativeCancellable): Promise<NativePruneResult>;
  fsck(c?: NativeCancellable): Promise<NativeFsckResult>;
  remoteAdd(name: string, opts: NativeRemoteAddOptions, c?: NativeCancellable): Promise<void>;
  remoteDelete(name: string, opts: { ifExists?: boolean }, c?: NativeCancellable): Promise<void>;
  remoteList(): NativeRemote[];
  remoteGpgImport(name: string, keys: Buffer, c?: NativeCancellable): Promise<number>;
  remoteListRefs(name: string, c?: NativeCancellable): Promise<Record<string, string>>;
  remoteFetchSummary(name: string, c?: NativeCancellable): Promise<{ summary: Buffer | null; signatures: Buffer | null }>;
  /** Resolves with the final progress snapshot. */
  pull(opts: NativePullOptions, c?: NativeCancellable): Promise<NativePullProgress>;
  signCommit(checksum: string, keyId: string, homedir: string | null, c?: NativeCancellable): Promise<void>;
  /** Rejects with OstreeGpgError NO_SIGNATURE when the commit has none. */
  verifyCommit(checksum: string, opts: { remote?: string; keyringDir?: string; keyring?: string }, c?: NativeCancellable): Promise<NativeSignature[]>;
  regenerateSummary(opts: { keyIds?: string[]; homedir?: string }, c?: NativeCancellable): Promise<void>;
  generateDelta(
    opts: { from: string | null; to: string; inlineParts?: boolean; bsdiff?: boolean; maxChunkSizeMiB?: number },
    c?: NativeCancellable,
  ): Promise<void>;
}

export interface NativeDeployment {
  index: number;
  osname: string;
  checksum: string;
  serial: number;
  bootSerial: number;
  booted: boolean;
  staged: boolean;
  pinned: boolean;
  path: string;
  refspec: string | null;
}

export interface NativeSysroot {
  readonly path: string;
  reload(c?: NativeCancellable): Promise<void>;
  deployments(): NativeDeployment[];
  lock(wait: boolean, c?: NativeCancellable): Promise<boolean>;
  unlock(): void;
  close(): void;
}

/** One layer of the native merged view: the base (a directory or a commit), or an extension commit and the hierarchies it takes part in (`etc:usr/etc` maps one onto another). */
export interface NativeLayer {
  name: string;
  path?: string;
  commit?: string;
  hierarchies?: string[];
}

/** An entry of the native merged view as it crosses the boundary (lib/tree/view.ts shapes it). */
export interface NativeViewEntry {
  name: string;
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'special';
  mode: number;
  size: number;
  uid: number;
  gid: number;
  layer: string;
  target?: string;
  checksum?: string;
  xattrCount?: number;
  whiteout?: boolean;
}

/** What the native engine's writes did (files, directories, links, reused subtrees). */
export interface NativeWriteStats {
  files: number;
  dirs: number;
  symlinks: number;
  reused: number;
  checkouts: number;
  unrepresentable: string[];
}

/** One path several layers provide differently, as the native engine reports it. */
export interface NativeConflict {
  path: string;
  kind: 'content' | 'type' | 'whiteout' | 'opaque' | 'directory-metadata';
  providers: string[];
  types: string[];
  winner: string;
}

/** The native merged view (native/overlay.cc): one tree, or a base with extension layers. */
export interface NativeOverlay {
  query(ops: Array<{ op: string; path: string; maxBytes?: number; xattrs?: boolean }>, c?: NativeCancellable): Promise<unknown[]>;
  conflicts(c?: NativeCancellable): Promise<NativeConflict[]>;
  mounts(
    c?: NativeCancellable,
  ): Promise<{ mounts: Record<string, string[]>; skipped: Array<{ layer: string; hierarchy: string; reason: string }>; createMissing: boolean }>;
  writeDirectory(dest: string, opts: { mode?: 'none' | 'user' }, c?: NativeCancellable): Promise<NativeWriteStats>;
  writeTree(c?: NativeCancellable): Promise<{ tree: string; meta: string; stats: NativeWriteStats }>;
  linkCheckout(dest: string, opts: { mode: 'none' | 'user'; requireLinks: boolean }, c?: NativeCancellable): Promise<NativeWriteStats>;
  close(): void;
}

/** Files as [name, checksum], then directories as [name, tree, meta] (names as raw bytes). */
export type DirtreeParse = [Array<[Buffer, string]>, Array<[Buffer, string, string]>];

export interface NativeModule {
  Cancellable: new () => NativeCancellable;
  DevInoCache: new () => NativeDevInoCache;
  Repo: {
    create(path: string, mode: string, opts: { disableFsync?: boolean }, c?: NativeCancellable): Promise<NativeRepo>;
    open(path: string, opts: { disableFsync?: boolean }, c?: NativeCancellable): Promise<NativeRepo>;
  };
  Sysroot: {
    load(path: string, c?: NativeCancellable): Promise<NativeSysroot>;
  };
  /** `raw`: one commit's stored metadata, as checked out (no systemd layer); `hostHierarchyMode`: systemd 256+'s hierarchy root mode. */
  Overlay: new (repo: NativeRepo | null, layers: NativeLayer[], opts: { createMissing?: boolean; raw?: boolean; hostHierarchyMode?: boolean }) => NativeOverlay;
  setErrorConstructor(ctor: new (message: string, details: { domain: string; gerrorCode: number }) => Error): void;
  /** Test only: a dirtree's bytes read by GLib (null unless in normal form) and by the addon's own reader (null unless they frame). */
  dirtreeParse(bytes: Buffer): { glib: DirtreeParse | null; ours: DirtreeParse | null };
  version: { libostree: string; libostreeRuntime: boolean };
}
