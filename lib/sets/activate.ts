/**
 * Applying a deployment set on a sysroot: hardlink checkouts, the binding to its base
 * deployment, and an atomic switch of what systemd-sysext sees.
 *
 * Layout (all under the sysroot, see DESIGN.md):
 * - `ostree/deploy/<os>/extensions/<setcommit>.0/` — the set checkout: `state/` (plugin
 *   output), `staged/<NAME>/` (a hardlink checkout of each sysext: real directories, since
 *   systemd 252 does not discover symlinked images under `--root`) and `confexts/<NAME>/` (each
 *   confext, for systemd-confext; an extension with both release files is in both);
 * - `ostree/deploy/<os>/deploy/<base>.<serial>.extensions` → that checkout (the binding);
 * - `<root>/run/ostree/extensions` → the set checkout: the one link that activation replaces,
 *   by one `rename()`, so a crash leaves the old or the new set active, never a mix;
 * - `<root>/run/extensions` → `ostree/extensions/staged` and `<root>/run/confexts` →
 *   `ostree/extensions/confexts`: fixed relative links beneath it ({@link ACTIVATION_LINKS}),
 *   created once and never changed (systemd-sysext and systemd-confext follow a symlinked
 *   search directory, also under `--root`), so sysexts and confexts switch together.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readlinkSync } from 'node:fs';
import { lstat, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import * as is from '../binding/args.js';
import { baseFromDeployment } from '../extension/base.js';
import { checkCompatibility, systemdOption, type SystemdInfo } from '../extension/compat.js';
import { detectSystemd } from '../extension/systemd-detect.js';
import { DeploymentSet, type SetRecord } from './deployment-set.js';
import { ExtensionError } from '../extension/errors.js';
import { releaseFilePath } from '../extension/release.js';
// Node's recursive mkdir reports a full disk as ENOENT.
import { makeDirectory } from '../binding/errors.js';
import type { Plugin } from './plugin.js';
import type { CallOptions, Repo } from '../binding/repo.js';
import { sysext } from './sysext.js';
import { mergeAndVerify } from './sysext-driver.js';
import type { Deployment, Sysroot } from '../binding/sysroot.js';

/** Options of {@link applySet}. */
export interface ApplyOptions extends CallOptions {
  sysroot: Sysroot;
  /** The sysroot's repository (`ostree/repo`), e.g. an {@link ExtensionStore}'s `repo`. */
  repo: Repo;
  osname: string;
  /** The deployment to apply for. Default: the booted one, else the first of `osname`. */
  deployment?: Deployment;
  /**
   * The set commit to apply. Default: the set bound to the deployment; else the OS name's
   * current set, re-checked against this deployment (incompatible extensions are left out
   * and reported in `excluded`).
   */
  set?: string;
  /** Where `run/` lives. Default: the sysroot path (`/` on a booted host). */
  root?: string;
  /** Wait for another apply (or `ostree admin`) holding the sysroot lock. Default false. */
  wait?: boolean;
  /**
   * Then run `systemd-sysext refresh` (and, on systemd 254 and later, `systemd-confext
   * refresh`) for `root` and check the result. A set with confexts is refused, before anything
   * is switched, where the installed systemd (`systemd`, else {@link detectSystemd}) predates
   * 254: it cannot merge them live (`CONFEXT_UNSUPPORTED`). Default false.
   */
  refresh?: boolean;
  /** Plugins for a re-check (see {@link DeploymentSet}). */
  plugins?: Plugin[];
  /** systemd version whose rules apply, as upstream releases them. Default 252. */
  systemdVersion?: number;
  /** The systemd as {@link detectSystemd} describes it (backports included); wins over `systemdVersion`. */
  systemd?: SystemdInfo;
}

/** Result of {@link applySet}. */
export interface ApplyResult {
  /** The applied set. */
  set: SetRecord;
  /** The set checkout directory. */
  checkout: string;
  /** Extensions of the current set left out because they do not fit this deployment. */
  excluded: Array<{ name: string; reason: string }>;
  /** The binding link of the deployment. */
  binding: string;
  /** Extensions merged by systemd-sysext, when `refresh` was asked. */
  merged?: string[];
  /** Confexts merged by systemd-confext, when `refresh` was asked and systemd has it (254+). */
  mergedConfexts?: string[];
}

/** The deployment's root directory name (`<checksum>.<serial>`). */
function deployName(d: Deployment): string {
  return `${d.checksum}.${d.serial}`;
}

/** Where the sets of one OS name live on a sysroot. */
export interface SetLayout {
  /** `ostree/deploy/<os>/extensions`: one checkout per set commit. */
  setsDir: string;
  /** The checkout directory of a set commit. */
  setCheckout(commit: string): string;
  /** The binding link of a deployment (`<deployment dir>.extensions`). */
  binding(d: Deployment): string;
  /** A started `upgrade` not yet applied (`<setsDir>/.upgrade-pending`), see `Host.upgrade`. */
  pendingUpgrade: string;
}

/**
 * Paths of the layout for one sysroot and OS name.
 * @example
 * ```ts
 * layout('/', 'fedora').setsDir; // '/ostree/deploy/fedora/extensions'
 * ```
 */
export function layout(sysrootPath: string, osname: string): SetLayout {
  const osdir = join(sysrootPath, 'ostree', 'deploy', osname);
  return {
    setsDir: join(osdir, 'extensions'),
    setCheckout: (commit: string) => join(osdir, 'extensions', `${commit}.0`),
    binding: (d: Deployment) => join(osdir, 'deploy', `${deployName(d)}.extensions`),
    pendingUpgrade: join(osdir, 'extensions', '.upgrade-pending'),
  };
}

/** The link under a root that activation switches: it points at the active set checkout. */
export const ACTIVE_SET_LINK = 'run/ostree/extensions';

/**
 * The fixed links under a root, each relative and beneath {@link ACTIVE_SET_LINK}, so that
 * switching that one link switches them all (sysexts and confexts together). Created once,
 * never changed afterwards.
 */
export const ACTIVATION_LINKS: ReadonlyArray<{ readonly link: string; readonly target: string }> = [
  { link: 'run/extensions', target: 'ostree/extensions/staged' },
  { link: 'run/confexts', target: 'ostree/extensions/confexts' },
];

/** The set's confexts, as its checkout holds them (`confexts/<NAME>`), in set order. */
function confextsOf(checkout: string, set: SetRecord): string[] {
  return set.order.filter((n) => existsSync(join(checkout, 'confexts', n)));
}

const TMP_SUFFIX = /^[0-9a-f]{12}$/;

/** Removes what an interrupted {@link replaceSymlink} of `linkPath` left (`.<name>.<hex>`). */
async function removeStaleLinkTemps(linkPath: string): Promise<void> {
  const prefix = `.${basename(linkPath)}.`;
  let entries: string[];
  try {
    entries = await readdir(dirname(linkPath));
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.startsWith(prefix) && TMP_SUFFIX.test(e.slice(prefix.length))) await rm(join(dirname(linkPath), e), { force: true });
  }
}

/**
 * Replaces (or creates) a symlink atomically: a new link under a temporary name, renamed over.
 * Nothing happens when the link already has that target; temporaries an interrupted earlier
 * call left beside it are removed (callers hold the sysroot lock).
 * @example
 * ```ts
 * await replaceSymlink('/run/ostree/extensions', '/ostree/deploy/fedora/extensions/' + commit + '.0');
 * ```
 */
export async function replaceSymlink(linkPath: string, target: string): Promise<void> {
  await removeStaleLinkTemps(linkPath);
  try {
    if ((await readlink(linkPath)) === target) return;
  } catch {
    // absent or not a link: replace it
  }
  await makeDirectory(dirname(linkPath));
  const tmp = join(dirname(linkPath), `.${basename(linkPath)}.${randomBytes(6).toString('hex')}`);
  await symlink(target, tmp);
  try {
    await rename(tmp, linkPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function ensureNotForeign(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) return;
  if (st.isDirectory() && (await readdir(path)).length === 0) {
    await rmdir(path);
    return;
  }
  throw new ExtensionError(
    'APPLY_FAILED',
    `${path} exists and is not managed by ostree-sysext (a symlink); move its content to /var/lib/extensions or remove it`,
  );
}

/** A checkout being built (`<set>.0.tmp-<hex>`, or the repository's own `.<dest>.tmp-<hex>`). */
const CHECKOUT_TEMP = /^\.?[0-9a-f]{64}\.0\.tmp-[0-9a-f]{12}(\.tmp-[0-9a-f]{12})?$/;

/**
 * Makes sure the set checkout exists, complete (built aside and renamed into place); removes
 * what interrupted builds left (the caller holds the sysroot lock, so none is in progress).
 */
async function ensureSetCheckout(repo: Repo, dir: string, set: SetRecord, signal?: AbortSignal): Promise<void> {
  const leftovers = existsSync(dirname(dir)) ? (await readdir(dirname(dir))).filter((e) => CHECKOUT_TEMP.test(e)) : [];
  for (const e of leftovers) await rm(join(dirname(dir), e), { recursive: true, force: true });
  // Whiteouts stored as `.ostree-wh.` markers become char 0:0 again, so the live overlay
  // hides what they hide (creating devices needs root, as the live merge does).
  const opts = { processPassthroughWhiteouts: process.getuid?.() === 0, ...(signal ? { signal } : {}) };
  if (existsSync(dir)) {
    // A checkout made before confexts had their own directory: add it (staged/ is untouched).
    if (!existsSync(join(dir, 'confexts'))) await addConfexts(repo, dir, set, opts);
    return;
  }
  await makeDirectory(dirname(dir));
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await repo.checkout(set.commit, tmp, { ...(signal ? { signal } : {}) });
    await makeDirectory(join(tmp, 'staged'));
    await makeDirectory(join(tmp, 'confexts'));
    for (const name of set.order) {
      const staged = join(tmp, 'staged', name);
      await repo.checkout(set.extensions[name]!, staged, opts);
      const sys = existsSync(join(staged, releaseFilePath('sysext', name)));
      // systemd-sysext takes what has usr/lib/extension-release.d, systemd-confext what has
      // etc/extension-release.d; one with neither stays in staged/ (systemd-sysext ignores it).
      if (existsSync(join(staged, releaseFilePath('confext', name)))) {
        if (sys) await repo.checkout(set.extensions[name]!, join(tmp, 'confexts', name), opts);
        else await rename(staged, join(tmp, 'confexts', name));
      }
    }
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function addConfexts(repo: Repo, dir: string, set: SetRecord, opts: { processPassthroughWhiteouts: boolean; signal?: AbortSignal }): Promise<void> {
  // What an interrupted earlier call left (the caller holds the sysroot lock).
  for (const e of await readdir(dir)) if (/^\.confexts\.tmp-[0-9a-f]{12}$/.test(e)) await rm(join(dir, e), { recursive: true, force: true });
  const tmp = join(dir, `.confexts.tmp-${randomBytes(6).toString('hex')}`);
  await makeDirectory(tmp);
  try {
    for (const name of set.order) {
      if (existsSync(join(dir, 'staged', name, releaseFilePath('confext', name)))) await repo.checkout(set.extensions[name]!, join(tmp, name), opts);
    }
    await rename(tmp, join(dir, 'confexts'));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The deployment sets apply to: `given`, else the booted one of `osname`, else its first. */
export function pickDeployment(sysroot: Sysroot, osname: string, given?: Deployment): Deployment {
  if (given) return given;
  const booted = sysroot.bootedDeployment();
  if (booted && booted.osname === osname) return booted;
  const first = sysroot.deployments().find((d) => d.osname === osname);
  if (!first) throw new ExtensionError('APPLY_FAILED', `the sysroot ${sysroot.path} has no deployment of ${osname}`);
  return first;
}

/**
 * The target of an activation link. When `root` is the sysroot itself (an image directory, or
 * `/` as both), a relative link. When `root` is a deployment (a booted system's `/` over
 * `/sysroot`), an absolute `/ostree/…` path: inside a deployment `/ostree` leads to the
 * sysroot's, which is how systemd-sysext resolves it under `--root` too.
 */
function activationTarget(sysrootPath: string, root: string, link: string, target: string): string {
  if (resolve(sysrootPath) === root) return relative(dirname(link), target);
  return '/' + relative(resolve(sysrootPath), target);
}

const SET_CHECKOUT_NAME = /([0-9a-f]{64})\.0$/;

/**
 * The set commit bound to a deployment, or null.
 * @example
 * ```ts
 * const sysroot = await Sysroot.load('/');
 * await boundSet(sysroot, sysroot.deployments()[0]!); // a set commit, or null
 * ```
 */
export async function boundSet(sysroot: Sysroot, d: Deployment): Promise<string | null> {
  try {
    const target = await readlink(layout(sysroot.path, d.osname).binding(d));
    const m = SET_CHECKOUT_NAME.exec(target);
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}

/**
 * The set commit active under `root` (what {@link ACTIVE_SET_LINK} points at), or null. It
 * counts only when every fixed link of {@link ACTIVATION_LINKS} is in place too.
 * @example
 * ```ts
 * activeSet('/'); // the set commit run/ostree/extensions points at, or null
 * ```
 */
export function activeSet(root: string): string | null {
  try {
    for (const l of ACTIVATION_LINKS) if (readlinkSync(join(root, l.link)) !== l.target) return null;
    return SET_CHECKOUT_NAME.exec(readlinkSync(join(root, ACTIVE_SET_LINK)))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * @internal {@link applySet} for a caller that already holds the sysroot lock. `record` is the
 * set to apply when the caller has just read or committed it (not read again).
 */
export async function applyLocked(o: ApplyOptions, record?: SetRecord): Promise<ApplyResult> {
  const sysroot = o.sysroot;
  const repo = o.repo;
  const osname = o.osname;
  const signal = o.signal;
  const root = resolve(o.root ?? o.sysroot.path);
  const paths = layout(o.sysroot.path, osname);
  const deployment = pickDeployment(sysroot, osname, o.deployment);
  const excluded: Array<{ name: string; reason: string }> = [];
  let set = record ?? null;
  const setCommit = set !== null ? null : o.set === undefined ? await boundSet(sysroot, deployment) : is.checksum('set', o.set);
  if (set === null && setCommit === null) {
    const current = await DeploymentSet.current(repo, osname);
    if (current === null) throw new ExtensionError('APPLY_FAILED', `no set was ever committed for ${osname}`);
    if (current.base === deployment.checksum) {
      set = current;
    } else {
      // A new OS deployment: re-check the set against its os-release; leave out what no longer fits.
      const base = await baseFromDeployment(sysroot, deployment);
      const systemd = systemdOption(o.systemd, o.systemdVersion);
      const next = DeploymentSet.fromRecord({ repo, osname, base, systemd, ...(o.plugins ? { plugins: o.plugins } : {}) }, current);
      for (const m of await next.members()) {
        const r = checkCompatibility(m.release, base.osRelease, { kind: m.kind, name: m.name, systemd });
        if (!r.compatible) {
          excluded.push({ name: m.name, reason: r.reason.message });
          next.remove(m.name);
        }
      }
      const subject = `Re-check for deployment ${deployName(deployment)}${excluded.length ? ` (left out: ${excluded.map((x) => x.name).join(', ')})` : ''}`;
      set = (await next.commit({ subject, ...(signal ? { signal } : {}) })).record;
    }
  }
  set ??= await DeploymentSet.load(repo, osname, setCommit!);
  const checkout = paths.setCheckout(set.commit);
  await ensureSetCheckout(repo, checkout, set, signal);
  const confexts = confextsOf(checkout, set);
  // The live systemd decides whether confexts can be merged; ask before switching anything.
  let live: SystemdInfo | undefined;
  if (o.refresh) {
    live = o.systemd !== undefined ? systemdOption(o.systemd, undefined) : ((await detectSystemd()) ?? systemdOption(undefined, o.systemdVersion));
    if (confexts.length > 0 && live.version < 254) {
      throw new ExtensionError(
        'CONFEXT_UNSUPPORTED',
        `the set has confexts (${confexts.join(', ')}), which systemd ${live.version} cannot merge live (systemd-confext came with 254); nothing was switched: apply without refresh, or remove them`,
      );
    }
  }
  const binding = paths.binding(deployment);
  await replaceSymlink(binding, relative(dirname(binding), checkout));
  // The fixed links first: over an older layout (each link switched on its own) they show
  // what run/ostree/extensions shows, so no moment mixes two sets; then the one switch.
  for (const l of ACTIVATION_LINKS) {
    const link = join(root, l.link);
    await ensureNotForeign(link);
    await replaceSymlink(link, l.target);
  }
  const runState = join(root, ACTIVE_SET_LINK);
  await replaceSymlink(runState, activationTarget(sysroot.path, root, runState, checkout));
  const result: ApplyResult = { set, checkout, excluded, binding };
  if (o.refresh) {
    const sysexts = [];
    for (const name of set.order) {
      if (existsSync(join(checkout, 'staged', name, releaseFilePath('sysext', name)))) sysexts.push(name);
    }
    // Over Varlink where the installed systemd serves this root (255+), else the command.
    result.merged = await mergeAndVerify('refresh', sysexts, { root, systemd: live!, ...(signal ? { signal } : {}) });
    // Also with no confexts now: a refresh unmerges those of the set before.
    if (live!.version >= 254)
      result.mergedConfexts = await mergeAndVerify('refresh', confexts, { root, kind: 'confext', systemd: live!, ...(signal ? { signal } : {}) });
  }
  return result;
}

/**
 * Applies a deployment set: checks it out (hardlinks), binds it to its deployment, and
 * switches `run/ostree/extensions` (and with it `run/extensions`) to it by one rename;
 * optionally asks systemd-sysext to refresh. One apply at a time per sysroot (its lock).
 * Applying the same set again changes nothing, and completes an interrupted apply.
 * @example
 * ```ts
 * const { set, checkout } = await applySet({ sysroot, repo: store.repo, osname: 'fedora', refresh: true });
 * ```
 */
export async function applySet(opts: ApplyOptions): Promise<ApplyResult> {
  const o = is.options<ApplyOptions>('options', opts);
  if (!o.sysroot || !o.repo) throw new TypeError('sysroot and repo are required');
  const osname = is.nonEmpty('osname', o.osname);
  const signal = is.signal(o.signal);
  return o.sysroot.withLock(() => applyLocked({ ...(o as ApplyOptions), osname, ...(signal ? { signal } : {}) }), {
    wait: o.wait ?? false,
    ...(signal ? { signal } : {}),
  });
}

/**
 * Deactivates: removes `run/ostree/extensions` (which deactivates everything at once) and
 * then the fixed links (only if they are symlinks) and, with `unmerge`, runs
 * `systemd-sysext unmerge` (and `systemd-confext unmerge` on systemd 254 and later) for `root`.
 * @example
 * ```ts
 * await deactivate({ root: '/', unmerge: true });
 * ```
 */
export async function deactivate(opts: { root: string; unmerge?: boolean; signal?: AbortSignal }): Promise<void> {
  const root = resolve(is.nonEmpty('root', opts.root));
  for (const p of [join(root, ACTIVE_SET_LINK), ...ACTIVATION_LINKS.map((l) => join(root, l.link))]) {
    try {
      if ((await lstat(p)).isSymbolicLink()) await rm(p);
    } catch {
      // absent: nothing to do
    }
  }
  if (opts.unmerge) {
    await sysext('unmerge', { root, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (((await detectSystemd())?.version ?? 0) >= 254) await sysext('unmerge', { root, kind: 'confext', ...(opts.signal ? { signal: opts.signal } : {}) });
  }
}

/**
 * Removes set checkouts no deployment binding and no activation link points to (old sets
 * after upgrades and rollbacks). Returns the removed directories.
 * @example
 * ```ts
 * const removed = await cleanupSetCheckouts(sysroot, 'fedora');
 * ```
 */
export async function cleanupSetCheckouts(sysroot: Sysroot, osname: string, root = sysroot.path): Promise<string[]> {
  const paths = layout(sysroot.path, osname);
  const keep = new Set<string>();
  for (const d of sysroot.deployments().filter((x) => x.osname === osname)) {
    const c = await boundSet(sysroot, d);
    if (c) keep.add(`${c}.0`);
  }
  try {
    const active = await readlink(join(root, ACTIVE_SET_LINK));
    keep.add(basename(active));
  } catch {
    // nothing active
  }
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(paths.setsDir);
  } catch {
    return removed;
  }
  for (const e of entries) {
    // Dot files are records (a pending upgrade), not checkouts.
    if (keep.has(e) || e.startsWith('.')) continue;
    const p = join(paths.setsDir, e);
    await rm(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}
