/**
 * Pulls: from a remote or URL on a dedicated thread and repository handle (under its own
 * GMainContext), and from another repository on this machine; progress, limits and deadlines.
 * @module
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NativePullOptions, NativePullProgress } from './native-contract.js';
import * as is from './args.js';
import { ArgumentError } from './errors.js';
import { native } from './native.js';
import { cancellable, type CallOptions } from './signal.js';
import { timeoutMs, withDeadline } from './deadline.js';
import { describeSource, remoteUrl } from './remote.js';
import { repoMethods, type RepoAccess } from './repo-access.js';

/** A progress snapshot of a running pull. Snapshots are coalesced: intermediate ones may be skipped. */
export interface PullProgress {
  /** Objects fetched so far. */
  fetched: number;
  /**
   * Objects requested so far (grows while metadata is scanned). libostree's own counters, not
   * one per download: libostree 2025.2 counts the request for detached metadata a server does
   * not have (404) here and never as fetched, so a finished pull can end one below per commit.
   */
  requested: number;
  /** Metadata objects scanned. */
  scannedMetadata: number;
  /** Metadata objects fetched. */
  metadataFetched: number;
  /** Requests in flight. */
  outstandingFetches: number;
  /** Object writes queued. */
  outstandingWrites: number;
  /** Static delta parts fetched, and their total (0 when no delta is used). */
  fetchedDeltaParts: number;
  /** Static delta parts to fetch. */
  totalDeltaParts: number;
  /** Bytes received over the network. */
  bytesTransferred: number;
  /** Bytes of delta parts fetched. */
  fetchedDeltaPartSize: number;
  /** Bytes of all delta parts. */
  totalDeltaPartSize: number;
  /** True while metadata is still being scanned. */
  scanning: boolean;
  /** A one-line description: libostree's own when it sets one, else like `ostree pull` prints. */
  status: string;
  /** True on the final snapshot, delivered before the pull's Promise settles. */
  done: boolean;
  /** Milliseconds since the pull started. */
  elapsedMs: number;
}

/** Options for {@link Repo.pull}. */
export interface PullOptions extends CallOptions {
  /** Refs to pull. Default: every ref the remote's summary lists. */
  refs?: string[];
  /** Pull these exact commits for `refs` (same length and order) instead of the refs' heads. */
  commits?: string[];
  /** Parent commits to fetch too: 0 (default) only the head, -1 the whole history. */
  depth?: number;
  /** Write the refs as local refs (a mirror) instead of `remote:ref`. Default false. */
  mirror?: boolean;
  /** Fetch only commit objects, no trees or files. Default false. */
  commitOnly?: boolean;
  /** Fetch from this URL instead of the remote's configured one. */
  url?: string;
  /** Overrides the remote's `gpg-verify` for this pull. */
  gpgVerify?: boolean;
  /** Overrides the remote's `gpg-verify-summary` for this pull. */
  gpgVerifySummary?: boolean;
  /** Retries of a failed request on transient network errors (libostree's default is 5). */
  networkRetries?: number;
  /** Extra HTTP request headers. */
  httpHeaders?: Record<string, string>;
  /** Never use static deltas. */
  disableStaticDeltas?: boolean;
  /** Fail unless static deltas can be used. */
  requireStaticDeltas?: boolean;
  /** Refuse a commit older than the one the ref points at now. Default false. */
  timestampCheck?: boolean;
  /** Give up with `TIMED_OUT` after this many milliseconds in total. Default 0: no overall limit. */
  timeout?: number;
  /**
   * Give up with `TIMED_OUT` when the pull makes no progress for this many milliseconds (a
   * server that accepts and never answers). Default 60000; 0 disables.
   */
  stallTimeout?: number;
  /** Receives coalesced {@link PullProgress} snapshots while the pull runs, and a final one. */
  onProgress?: (progress: PullProgress) => void;
  /** How often libostree samples progress, in milliseconds. Default 100. */
  progressInterval?: number;
  /**
   * Most bytes the whole pull may receive before it is cancelled with `TOO_LARGE` (a mirror
   * that serves an endless or huge object). Default {@link DEFAULT_PULL_MAX_BYTES} (4 GiB);
   * 0 disables.
   */
  maxBytes?: number;
  /**
   * Most bytes that may arrive while no object completes, per object being fetched, before
   * the pull is cancelled with `TOO_LARGE`: a bound on one object's size, measured from the
   * pull's progress (libostree reports no per-object sizes). Default
   * {@link DEFAULT_PULL_MAX_OBJECT_BYTES} (1 GiB); 0 disables.
   */
  maxObjectBytes?: number;
}

/** Default {@link PullOptions.maxBytes}: 4 GiB. */
export const DEFAULT_PULL_MAX_BYTES = 4 * 1024 ** 3;
/** Default {@link PullOptions.maxObjectBytes}: 1 GiB. */
export const DEFAULT_PULL_MAX_OBJECT_BYTES = 1024 ** 3;

/** Options for {@link Repo.pullLocal}. */
export interface PullLocalOptions extends CallOptions {
  /** Refs to pull. Default: every local ref of the source. */
  refs?: string[];
  /** Parent commits to fetch too: 0 (default) only the head, -1 the whole history. */
  depth?: number;
  /** Copy refs as a mirror (the same names). Default false: local refs of the same names. */
  mirror?: boolean;
  /** Fetch only commit objects. */
  commitOnly?: boolean;
  /** Write the refs as `remote:ref` under this configured remote's name instead of local refs. */
  remote?: string;
  /**
   * Verify every object's checksum while copying (a source that may be corrupt or hostile).
   * Default false: objects are trusted. Either way they are hardlinked where the two
   * repositories allow it (same filesystem and compatible modes).
   */
  untrusted?: boolean;
  /** Require GPG signatures (needs keys imported for `remote`). Default false. */
  gpgVerify?: boolean;
  /** Give up with `TIMED_OUT` after this many milliseconds. Default 0: no limit. */
  timeout?: number;
  /** Receives coalesced progress snapshots. */
  onProgress?: (progress: PullProgress) => void;
}

/** What a finished pull reports. */
export interface PullResult {
  /** The pulled refs and the commits they now point at (names as written: `remote:ref` or `ref`). */
  refs: Record<string, string>;
  /** The final progress snapshot: totals of the pull. */
  progress: PullProgress;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function refList(name: string, v: unknown): string[] {
  const refs = is.stringArray(name, v).map((r, i) => is.refName(`${name}[${i}]`, r));
  if (refs.length === 0) throw new ArgumentError(`${name} must not be empty (omit it to pull every ref)`, 'ERR_INVALID_ARG_VALUE');
  return refs;
}

function callback<T extends (...a: never[]) => unknown>(name: string, v: unknown): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'function') throw new ArgumentError(`${name} must be a function`);
  return v as T;
}

function units(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${u[i]}`;
}

/** The line `ostree pull` prints for a snapshot, used when libostree set no status. */
function statusLine(p: NativePullProgress): string {
  if (p.status) return p.status;
  if (p.totalDeltaParts > 0) {
    return `Receiving delta parts: ${p.fetchedDeltaParts}/${p.totalDeltaParts} ${units(p.fetchedDeltaPartSize)}/${units(p.totalDeltaPartSize)}`;
  }
  if (p.scanning || p.requested === 0) return `Receiving metadata objects: ${p.metadataFetched}/(estimating) ${units(p.bytesTransferred)}`;
  const pct = Math.floor((100 * p.fetched) / Math.max(1, p.requested));
  return `Receiving objects: ${pct}% (${p.fetched}/${p.requested}) ${units(p.bytesTransferred)}`;
}

function toProgress(p: NativePullProgress, started: number): PullProgress {
  return { ...p, status: statusLine(p), elapsedMs: Math.round(performance.now() - started) };
}

interface PullPlan {
  native: NativePullOptions;
  operation: string;
  total: number;
  stall: number;
  onProgress: ((p: PullProgress) => void) | undefined;
  /** How pulled refs are named locally: `prefix + ref`. */
  refPrefix: string;
  /** The commits the refs are known to be pulled at (pullLocal resolves them first). */
  expected?: Record<string, string>;
  /** Byte budgets (0: none), see {@link PullOptions.maxBytes}. */
  maxBytes?: number;
  maxObjectBytes?: number;
}

async function runPull(access: RepoAccess, plan: PullPlan, signal: AbortSignal | undefined): Promise<PullResult> {
  const started = performance.now();
  // The byte budgets are enforced on the pull thread (native/pull.cc): at each progress tick,
  // not at the JS thread's pace, which under load saw one snapshot in seconds.
  // A budget needs a cancellable to cancel with, even in a pull without signal or deadlines.
  const watched = signal ?? (plan.maxBytes || plan.maxObjectBytes ? new AbortController().signal : undefined);
  const final = await withDeadline(plan.operation, watched, plan.total, plan.stall, (c, d) =>
    access.native.pull(
      {
        ...plan.native,
        onProgress: (p) => {
          d.touch();
          if (!plan.onProgress) return;
          try {
            plan.onProgress(toProgress(p, started));
          } catch (e) {
            // A throwing callback stops the pull and becomes its rejection.
            d.fail(e);
          }
        },
      },
      c,
    ),
  );
  const names = plan.native.refs;
  const all = await access.native.listRefs(null, { remotes: true });
  const refs: Record<string, string> = {};
  if (names) {
    for (const r of names) {
      const full = plan.refPrefix + r;
      if (all[full] === undefined && plan.refPrefix === '') {
        // libostree 2022.7 skips writing a local ref when resolve_rev's fallback to a remote
        // ref of the same name already yields the pulled commit; write it as it meant to.
        const candidates = new Set(
          Object.entries(all)
            .filter(([k]) => k.endsWith(`:${r}`))
            .map(([, v]) => v),
        );
        const c = plan.expected?.[r] ?? (candidates.size === 1 ? [...candidates][0]! : null);
        if (c !== null) {
          await access.write(`set ref ${r}`, undefined, (cc) => access.native.setRefImmediate(null, r, c, cc));
          all[full] = c;
        }
      }
      if (all[full] !== undefined) refs[full] = all[full]!;
    }
  } else if (plan.refPrefix) {
    for (const [k, v] of Object.entries(all)) if (k.startsWith(plan.refPrefix)) refs[k] = v;
  }
  return { refs, progress: toProgress(final, started) };
}

/** @internal */
export async function pull(access: RepoAccess, remote: string, opts: PullOptions = {}): Promise<PullResult> {
  const isUrl = typeof remote === 'string' && remote.includes('://');
  const source = isUrl ? remoteUrl('remote', remote) : is.remoteName('remote', remote);
  // libostree takes a URL in place of a remote name only for file:// (as pull-local does).
  if (isUrl && !source.startsWith('file:')) {
    throw new ArgumentError(
      `remote: pull from ${source} through a configured remote (addRemote), or its url option; only file:// URLs can stand for a remote`,
      'ERR_INVALID_ARG_VALUE',
    );
  }
  const o = is.options<PullOptions>('options', opts);
  const n: NativePullOptions = { remote: source };
  if (o.refs !== undefined) n.refs = refList('refs', o.refs);
  if (o.commits !== undefined) {
    n.overrideCommitIds = is.stringArray('commits', o.commits).map((c, i) => is.checksum(`commits[${i}]`, c));
    if (!n.refs || n.refs.length !== n.overrideCommitIds.length) {
      throw new ArgumentError('commits needs refs of the same length (one commit per ref)', 'ERR_INVALID_ARG_VALUE');
    }
  }
  if (o.depth !== undefined) n.depth = is.integer('depth', o.depth, -1, 2 ** 31 - 1);
  n.mirror = is.bool('mirror', o.mirror, false);
  n.commitOnly = is.bool('commitOnly', o.commitOnly, false);
  if (o.url !== undefined) n.overrideUrl = remoteUrl('url', o.url);
  if (o.gpgVerify !== undefined) n.gpgVerify = is.bool('gpgVerify', o.gpgVerify, true);
  if (o.gpgVerifySummary !== undefined) n.gpgVerifySummary = is.bool('gpgVerifySummary', o.gpgVerifySummary, false);
  if (o.networkRetries !== undefined) n.networkRetries = is.integer('networkRetries', o.networkRetries, 0, 1000);
  if (o.httpHeaders !== undefined) {
    const h = is.options<Record<string, unknown>>('httpHeaders', o.httpHeaders);
    n.httpHeaders = {};
    for (const [k, v] of Object.entries(h)) {
      if (!HEADER_NAME.test(k)) throw new ArgumentError(`httpHeaders: ${JSON.stringify(k)} is not a valid header name`, 'ERR_INVALID_ARG_VALUE');
      const s = is.string(`httpHeaders.${k}`, v);
      if (/[\r\n]/.test(s)) throw new ArgumentError(`httpHeaders.${k} must not contain line breaks`, 'ERR_INVALID_ARG_VALUE');
      n.httpHeaders[k] = s;
    }
  }
  if (o.disableStaticDeltas !== undefined) n.disableStaticDeltas = is.bool('disableStaticDeltas', o.disableStaticDeltas, false);
  if (o.requireStaticDeltas !== undefined) n.requireStaticDeltas = is.bool('requireStaticDeltas', o.requireStaticDeltas, false);
  if (n.disableStaticDeltas && n.requireStaticDeltas)
    throw new ArgumentError('disableStaticDeltas and requireStaticDeltas exclude each other', 'ERR_INVALID_ARG_VALUE');
  if (o.timestampCheck !== undefined) n.timestampCheck = is.bool('timestampCheck', o.timestampCheck, false);
  n.updateFrequencyMs = is.optInteger('progressInterval', o.progressInterval, 10, 60_000) ?? 100;
  const total = timeoutMs('timeout', o.timeout, 0);
  const stall = timeoutMs('stallTimeout', o.stallTimeout, 60_000);
  const maxBytes = is.optInteger('maxBytes', o.maxBytes, 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_PULL_MAX_BYTES;
  const maxObjectBytes = is.optInteger('maxObjectBytes', o.maxObjectBytes, 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_PULL_MAX_OBJECT_BYTES;
  const onProgress = callback<(p: PullProgress) => void>('onProgress', o.onProgress);
  const signal = is.signal(o.signal);
  const what = n.refs ? n.refs.join(', ') : 'all refs';
  const from = n.overrideUrl ? `${describeSource(access, source)} via ${n.overrideUrl}` : describeSource(access, source);
  const refPrefix = n.mirror || isUrl ? '' : `${source}:`;
  if (maxBytes > 0) n.maxBytes = maxBytes;
  if (maxObjectBytes > 0) n.maxObjectBytes = maxObjectBytes;
  return runPull(access, { native: n, operation: `pull ${what} from ${from}`, total, stall, onProgress, refPrefix, maxBytes, maxObjectBytes }, signal);
}

/** @internal */
export async function pullLocal(access: RepoAccess, sourcePath: string, opts: PullLocalOptions = {}): Promise<PullResult> {
  is.nonEmpty('sourcePath', sourcePath);
  const o = is.options<PullLocalOptions>('options', opts);
  const url = pathToFileURL(resolve(sourcePath)).href;
  const n: NativePullOptions = { remote: url };
  if (o.refs !== undefined) n.refs = refList('refs', o.refs);
  if (o.depth !== undefined) n.depth = is.integer('depth', o.depth, -1, 2 ** 31 - 1);
  n.mirror = is.bool('mirror', o.mirror, false);
  n.commitOnly = is.bool('commitOnly', o.commitOnly, false);
  n.untrusted = is.bool('untrusted', o.untrusted, false);
  const signal = is.signal(o.signal);
  if (o.remote !== undefined) n.overrideRemoteName = is.remoteName('remote', o.remote);
  n.gpgVerify = is.bool('gpgVerify', o.gpgVerify, false);
  if (n.gpgVerify && n.overrideRemoteName === undefined)
    throw new ArgumentError('gpgVerify needs remote: the remote whose imported keys to trust', 'ERR_INVALID_ARG_VALUE');
  n.updateFrequencyMs = 100;
  const total = timeoutMs('timeout', o.timeout, 0);
  const onProgress = callback<(p: PullProgress) => void>('onProgress', o.onProgress);
  const what = n.refs ? n.refs.join(', ') : 'all refs';
  const operation = `pull ${what} from ${sourcePath}`;
  // Resolve the refs in the source first and pull exactly those commits: "all refs" needs a
  // summary a local repository may lack, and the commits make the result deterministic.
  const expected: Record<string, string> = {};
  const src = await cancellable(operation, signal, (c) => native().Repo.open(resolve(sourcePath), {}, c));
  try {
    if (n.refs) {
      for (const r of n.refs) expected[r] = (await cancellable(operation, signal, (c) => src.resolveRev(r, false, c))) as string;
    } else {
      Object.assign(expected, await cancellable(operation, signal, (c) => src.listRefs(null, { remotes: false }, c)));
      n.refs = Object.keys(expected).sort();
    }
  } finally {
    src.close();
  }
  if (n.refs.length === 0) {
    const none: NativePullProgress = {
      fetched: 0,
      requested: 0,
      scannedMetadata: 0,
      metadataFetched: 0,
      outstandingFetches: 0,
      outstandingWrites: 0,
      fetchedDeltaParts: 0,
      totalDeltaParts: 0,
      bytesTransferred: 0,
      fetchedDeltaPartSize: 0,
      totalDeltaPartSize: 0,
      scanning: false,
      status: `${sourcePath} has no refs`,
      done: true,
    };
    return { refs: {}, progress: toProgress(none, performance.now()) };
  }
  n.overrideCommitIds = n.refs.map((r) => expected[r]!);
  const refPrefix = n.overrideRemoteName && !n.mirror ? `${n.overrideRemoteName}:` : '';
  // No stall timeout: a local copy has no network to hang on.
  return runPull(access, { native: n, operation, total, stall: 0, onProgress, refPrefix, expected }, signal);
}

/**
 * {@link Repo}'s pull methods: from a remote or URL, and from another local repository (lib/binding/pull.ts).
 */
export interface PullMethods {
  /**
   * Pulls refs from a remote (by name) or a `file://` URL. Runs on its own thread and its own
   * repository handle, so pulls run concurrently with each other and with this handle's work.
   * @example
   * ```ts
   * const ac = new AbortController();
   * const { refs } = await repo.pull('origin', {
   *   refs: ['os/stable'],
   *   onProgress: (p) => console.log(p.status),
   *   signal: ac.signal,
   * });
   * ```
   */
  pull(remoteOrUrl: string, opts?: PullOptions): Promise<PullResult>;

  /**
   * Copies refs from another repository on this machine, hardlinking objects where possible.
   *
   * The source's commits, trees and content objects are validated first (a damaged local
   * source is an error, not a crash). When both repositories have one mode, are on one file
   * system, have no parent repository and the pull is trusted (neither `commitOnly` nor
   * `untrusted`), the content objects are hardlinked into this repository directly, one
   * `linkat` each, before libostree's pull copies the metadata; `progress.status` then ends
   * with "N content objects linked before the pull". The objects and links that result are
   * those `ostree pull-local` leaves.
   */
  pullLocal(sourcePath: string, opts?: PullLocalOptions): Promise<PullResult>;
}

/** @internal The PullMethods methods, attached to {@link Repo}'s prototype by lib/binding/repo.ts. */
export const pullMethods = repoMethods<PullMethods>({
  pull: pull,
  pullLocal: pullLocal,
});
