/**
 * Builders create or update one extension from an outside source. The store validates and
 * commits whatever a builder produces, recording the builder's name and context so
 * `upgrade()` can run it again after a reboot.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { OstreeError } from '../binding/errors.js';
import { ExtensionError } from './errors.js';
import type { PullProgress } from '../binding/pull.js';
import type { Repo } from '../binding/repo.js';

/** A builder's verdict on whether an extension can be updated. */
export type UpdateStatus = 'available' | 'warn' | 'veto' | 'none' | 'unknown';

/** Result of {@link Builder.checkUpdate}. */
export interface UpdateCheck {
  /**
   * `available`: an update exists; `warn`: one exists but needs `force`; `veto`: it must not
   * be applied; `none`: up to date; `unknown`: could not tell (offline, source gone).
   */
  status: UpdateStatus;
  /** Why, in words for a person. */
  message: string;
}

/** JSON-safe context a builder records with the extension (source path, remote, …). */
export type BuilderContext = Record<string, unknown>;

/** What a builder is given. */
export interface BuildRequest {
  /** The extension's name. */
  name: string;
  /** The context recorded at the last build (or given at install). */
  context: BuilderContext;
  /** The repository the extension lives in. */
  repo: Repo;
  /** The commit installed now, or null on first install. */
  current: string | null;
  /** Cancels the work. */
  signal?: AbortSignal;
  /** Receives download progress (the `remote` builder's pulls). */
  onProgress?: (progress: PullProgress) => void;
  /**
   * Accept content older than `current` (a commit with an earlier timestamp). Default false:
   * the `remote` builder refuses it with `ExtensionError` `DOWNGRADE`, so a mirror replaying
   * an older, validly signed commit cannot roll an extension back.
   */
  allowDowngrade?: boolean;
}

/** What a builder produced: a directory or archive to commit, or a commit already in the repo. */
export type BuildOutput =
  | { tree: string; context?: BuilderContext; subject?: string }
  | { archive: string; context?: BuilderContext; subject?: string }
  | { commit: string; context?: BuilderContext };

/**
 * A source of one extension. Implement it to let `ExtensionStore.build` and `upgrade` handle
 * your own sources (a package feed, a CI artifact store, …).
 * @example
 * ```ts
 * const builder: Builder = {
 *   name: 'hello',
 *   async checkUpdate() { return { status: 'none', message: 'always current' }; },
 *   async build({ name }) { return { tree: await makeHelloTree(name) }; },
 * };
 * store.registerBuilder(builder);
 * await store.build('hello', {}, { name: 'hello' });
 * ```
 */
export interface Builder {
  /** Unique name, recorded with every extension it builds. */
  readonly name: string;
  /** Says whether an update is available, without changing anything. */
  checkUpdate(req: BuildRequest): Promise<UpdateCheck>;
  /** Produces the extension's new content. */
  build(req: BuildRequest): Promise<BuildOutput>;
}

const MAX_FINGERPRINT_ENTRIES = 1_000_000;

/**
 * A fingerprint of a directory tree (paths, types, modes, sizes, mtimes, link targets): it
 * changes when anything in the tree changes, without reading file contents.
 * @example
 * ```ts
 * const before = await directoryFingerprint('./build/tools');
 * // … rebuild …
 * if ((await directoryFingerprint('./build/tools')) !== before) console.log('changed');
 * ```
 */
export async function directoryFingerprint(root: string): Promise<string> {
  const h = createHash('sha256');
  let count = 0;
  async function walk(rel: string): Promise<void> {
    const entries = (await readdir(join(root, rel), { withFileTypes: true })).map((d) => d.name).sort();
    for (const name of entries) {
      if (++count > MAX_FINGERPRINT_ENTRIES) throw new Error(`${root} has more than ${MAX_FINGERPRINT_ENTRIES} entries`);
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      h.update(`${p}\0${st.mode}\0${st.size}\0${st.mtimeMs}\0${st.uid}:${st.gid}\n`);
      if (st.isDirectory()) await walk(p);
    }
  }
  await walk('');
  return h.digest('hex');
}

/**
 * SHA-256 of a file's content.
 * @example
 * ```ts
 * await fileSha256('tools.tar.gz'); // 64 hex digits
 * ```
 */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function contextPath(req: BuildRequest): string {
  const p = req.context.path;
  if (typeof p !== 'string' || p.length === 0) throw new TypeError(`the ${req.name} extension's builder context has no path`);
  return p;
}

/** Built-in builder: an extension tree in a directory. Context `{ path, fingerprint }`. */
export const directoryBuilder: Builder = {
  name: 'directory',
  async checkUpdate(req) {
    const path = contextPath(req);
    let now: string;
    try {
      now = await directoryFingerprint(path);
    } catch (e) {
      return { status: 'unknown', message: `cannot read ${path}: ${(e as Error).message}` };
    }
    return now === req.context.fingerprint
      ? { status: 'none', message: `${path} is unchanged` }
      : { status: 'available', message: `${path} changed since the last build` };
  },
  async build(req) {
    const path = contextPath(req);
    const fingerprint = await directoryFingerprint(path);
    return { tree: path, context: { path, fingerprint }, subject: `Build ${req.name} from directory ${path}` };
  },
};

/** Built-in builder: a tar archive (any format libarchive reads). Context `{ path, sha256 }`. */
export const archiveBuilder: Builder = {
  name: 'archive',
  async checkUpdate(req) {
    const path = contextPath(req);
    let now: string;
    try {
      now = await fileSha256(path);
    } catch (e) {
      return { status: 'unknown', message: `cannot read ${path}: ${(e as Error).message}` };
    }
    return now === req.context.sha256
      ? { status: 'none', message: `${path} is unchanged` }
      : { status: 'available', message: `${path} changed since the last build` };
  },
  async build(req) {
    const path = contextPath(req);
    let sha256: string;
    try {
      sha256 = await fileSha256(path);
    } catch (e) {
      // A typed error like every other failed build: the archive is missing or unreadable.
      const code = (e as NodeJS.ErrnoException).code;
      throw new OstreeError(`cannot read archive ${path}: ${(e as Error).message}`, {
        domain: 'g-io-error-quark',
        gerrorCode: code === 'ENOENT' ? 1 : code === 'EACCES' ? 14 : code === 'EISDIR' ? 3 : 0,
        operation: 'archive build',
      });
    }
    return { archive: path, context: { path, sha256 }, subject: `Build ${req.name} from archive ${path}` };
  },
};

function downgrade(req: BuildRequest, remote: string, ref: string, to: string, detail: string): ExtensionError {
  return new ExtensionError(
    'DOWNGRADE',
    `${remote}:${ref} offers ${to.slice(0, 12)}, which is older than the installed ${String(req.current).slice(0, 12)} of ${req.name || ref} (${detail}); refusing to go back (allowDowngrade to permit)`,
  );
}

function remoteContext(req: BuildRequest): { remote: string; ref: string; budgets: { maxBytes?: number; maxObjectBytes?: number } } {
  const { remote, ref, maxBytes, maxObjectBytes } = req.context as { remote?: unknown; ref?: unknown; maxBytes?: unknown; maxObjectBytes?: unknown };
  if (typeof remote !== 'string' || typeof ref !== 'string') throw new TypeError(`the ${req.name} extension's builder context needs remote and ref`);
  const budgets: { maxBytes?: number; maxObjectBytes?: number } = {};
  if (typeof maxBytes === 'number') budgets.maxBytes = maxBytes;
  if (typeof maxObjectBytes === 'number') budgets.maxObjectBytes = maxObjectBytes;
  return { remote, ref, budgets };
}

/**
 * Built-in builder: a ref of an OSTree remote, pulled (signature checks as the remote is
 * configured: `gpg-verify` is on by default). Context `{ remote, ref }`, optionally with the
 * pull's byte budgets `maxBytes` and `maxObjectBytes` (see `PullOptions`; recorded with the
 * extension, so upgrades use them too). Never goes back to an older commit than the installed
 * one unless `allowDowngrade`.
 * @example
 * ```ts
 * // An extension with one file larger than the default 1 GiB per-object budget.
 * await store.build('remote', { remote: 'vendor', ref: 'ext/big', maxObjectBytes: 8 * 1024 ** 3 });
 * ```
 */
export const remoteBuilder: Builder = {
  name: 'remote',
  async checkUpdate(req) {
    const { remote, ref } = remoteContext(req);
    let refs: Record<string, string>;
    try {
      refs = await req.repo.listRemoteRefs(remote, req.signal ? { signal: req.signal } : {});
    } catch (e) {
      return { status: 'unknown', message: `cannot reach ${remote}: ${(e as Error).message}` };
    }
    const head = refs[ref];
    if (head === undefined) return { status: 'unknown', message: `${remote} no longer has ${ref}` };
    if (head === req.current) return { status: 'none', message: `${remote}:${ref} is at the installed commit` };
    // Never offer going back as an update, when the offered commit is already known here.
    if (req.current !== null && !req.allowDowngrade) {
      const [now, next] = await Promise.all([req.repo.loadCommit(req.current).catch(() => null), req.repo.loadCommit(head).catch(() => null)]);
      if (now && next && next.timestamp < now.timestamp) {
        return { status: 'veto', message: downgrade(req, remote, ref, head, `${next.timestamp.toISOString()} < ${now.timestamp.toISOString()}`).message };
      }
    }
    return { status: 'available', message: `${remote}:${ref} moved to ${head.slice(0, 12)}` };
  },
  async build(req) {
    const { remote, ref, budgets } = remoteContext(req);
    const guard = req.current !== null && !req.allowDowngrade;
    let r;
    try {
      // libostree's own check refuses an older commit than the tracking ref before moving it.
      r = await req.repo.pull(remote, {
        refs: [ref],
        ...budgets,
        ...(guard ? { timestampCheck: true } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
        ...(req.onProgress ? { onProgress: req.onProgress } : {}),
      });
    } catch (e) {
      const m = /Upgrade target revision '([0-9a-f]{64})'.*chronologically older/s.exec((e as Error)?.message ?? '');
      if (guard && m) throw Object.assign(downgrade(req, remote, ref, m[1]!, 'by commit timestamp'), { cause: e });
      throw e;
    }
    const commit = r.refs[`${remote}:${ref}`] ?? (await req.repo.resolve(`${remote}:${ref}`));
    // And against what is installed, which the tracking ref need not be.
    if (guard && commit !== req.current) {
      const [now, next] = await Promise.all([req.repo.loadCommit(req.current!), req.repo.loadCommit(commit)]);
      if (next.timestamp < now.timestamp) throw downgrade(req, remote, ref, commit, `${next.timestamp.toISOString()} < ${now.timestamp.toISOString()}`);
    }
    return { commit, context: { remote, ref, ...budgets } };
  },
};
