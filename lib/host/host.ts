/**
 * `Host`: what a host does to its sysroot — deploy, undeploy, roll back, upgrade and remove
 * extensions — each under the sysroot lock, and each convergent: the applied state is a
 * function of the set ref's target, so re-running a command after a kill or a failure at any
 * point ends in the state the first run intended. The CLI only parses for it and prints.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as is from '../binding/args.js';
import { activeSet, applyLocked, applySet, boundSet, layout, pickDeployment, type ApplyResult } from '../sets/activate.js';
import { writeServiceEnvironment } from '../sets/sysext.js';
import { baseFromDeployment } from '../extension/base.js';
import type { SystemdInfo } from '../extension/compat.js';
import { DeploymentSet, type SetRecord } from '../sets/deployment-set.js';
import { ExtensionError } from '../extension/errors.js';
import type { Plugin, Vote, VoteReport } from '../sets/plugin.js';
import { extensionRef } from '../extension/refs.js';
import type { CallOptions } from '../binding/repo.js';
import type { ExtensionStore, UpgradeOutcome } from '../extension/store.js';
import type { Deployment, Sysroot } from '../binding/sysroot.js';

/** Options of a {@link Host}. */
export interface HostOptions {
  sysroot: Sysroot;
  /** A store over the sysroot's repository. */
  store: ExtensionStore;
  osname: string;
  /** The deployment sets are made for and applied to. Default: the booted one, else the first of `osname`. */
  deployment?: Deployment;
  /** Where `run/` lives. Default: the sysroot path (`/` on a booted host). */
  root?: string;
  /** systemd version whose rules apply, as upstream releases them. Default 252. */
  systemdVersion?: number;
  /** The host's systemd as {@link detectSystemd} describes it (backports included); wins over `systemdVersion`. */
  systemd?: SystemdInfo;
}

/** Options of one host command. */
export interface HostCallOptions extends CallOptions {
  /** Wait for another command (or `ostree admin`) holding the sysroot lock. Default false. */
  wait?: boolean;
  /** Then run `systemd-sysext refresh` (and `systemd-confext refresh` on 254+) for the root and check the result, as {@link applySet} does. Default false. */
  refresh?: boolean;
  /** Plugins that vote on a new set, besides the built-ins and the base's. */
  plugins?: Plugin[];
  /** Let warnings pass (vetoes never do). Default false. */
  force?: boolean;
  /**
   * Let pass the warnings the current set was accepted with (`force`) and no others: each new
   * warning must come from the same plugin with the same message, or carry structured details
   * (such as file-conflicts' paths) all among that plugin's details then. Checked under the
   * sysroot lock against the set current then, so a set another process committed meanwhile
   * is judged on its own warnings. A person who accepted a warning about one extension is not
   * asked again when removing another. Default false.
   */
  keepAcceptedWarnings?: boolean;
}

/** What a set-changing command did. */
export interface SetChange {
  /** The set ref's target, now applied. */
  set: SetRecord;
  /** The vote of the set committed by this call, else the vote recorded with the set. */
  votes: VoteReport | null;
  /** True when this call committed a new set. */
  committed: boolean;
  /** True when nothing was committed but the set was not applied yet (an interrupted command finished). */
  completed: boolean;
  /** The apply. */
  applied: ApplyResult;
  /** The warnings that passed because the set before was accepted with them (`keepAcceptedWarnings`). */
  acceptedBefore: Vote[];
}

/** Result of {@link Host.upgrade}. */
export interface HostUpgradeResult {
  outcomes: UpgradeOutcome[];
  /** The set change, when members of the set were updated (now or by an interrupted run). */
  change: SetChange | null;
  /**
   * Why the set change failed (a `SetRefusedError` when plugins refused it), after the
   * extensions were updated; the pending record stays, so a re-run tries the same change.
   */
  setError?: Error;
}

const voteKey = (v: Vote): string => `${v.plugin}\0${v.message}`;
const voteItems = (v: Vote): string[] | null => (Array.isArray(v.details) ? v.details.map((d) => JSON.stringify(d)) : null);

/**
 * When `current` was accepted with force and `next` draws only warnings that were accepted
 * then (see {@link HostCallOptions.keepAcceptedWarnings}), those warnings; else null. Runs one
 * extra vote, and only when the current set was forced.
 */
async function warningsAlreadyAccepted(next: DeploymentSet, current: SetRecord | null, signal?: AbortSignal): Promise<Vote[] | null> {
  const before = current?.votes;
  if (!before?.forced) return null;
  const forced = before.votes.filter((v) => v.verdict === 'warn');
  if (forced.length === 0) return null;
  const messages = new Set(forced.map(voteKey));
  const report = await next.vote(signal ? { signal } : {});
  if (report.verdict !== 'warn') return null;
  const warnings = report.votes.filter((v) => v.verdict === 'warn');
  const seen = (w: Vote): boolean => {
    if (messages.has(voteKey(w))) return true;
    const now = voteItems(w);
    if (now === null) return false;
    const then = new Set(forced.filter((f) => f.plugin === w.plugin).flatMap((f) => voteItems(f) ?? []));
    return now.every((d) => then.has(d));
  };
  return warnings.every(seen) ? warnings : null;
}

/** What `upgrade` records before it moves any extension ref: each name's commit before. */
interface PendingUpgrade {
  from: Record<string, string | null>;
}

async function readPending(path: string): Promise<PendingUpgrade | null> {
  try {
    const p = JSON.parse(await readFile(path, 'utf8')) as PendingUpgrade;
    return p && typeof p.from === 'object' && p.from !== null ? p : null;
  } catch {
    return null;
  }
}

const TEMP_SUFFIX = /^\.[0-9a-f]{12}$/;

/** Writes `path` by a rename; first removes the temporaries of interrupted earlier writes. */
async function writeAtomically(path: string, text: string): Promise<void> {
  for (const e of await readdir(dirname(path))) {
    if (e.startsWith(basename(path)) && TEMP_SUFFIX.test(e.slice(basename(path).length))) await rm(join(dirname(path), e), { force: true });
  }
  const tmp = `${path}.${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/**
 * The host-level commands on one sysroot and OS name.
 *
 * @example
 * ```ts
 * const sysroot = await Sysroot.load('/');
 * const host = new Host({ sysroot, store: new ExtensionStore(await sysroot.repo()), osname: 'fedora' });
 * const { set, committed } = await host.deploy(['tools'], { refresh: true });
 * await host.rollback();            // the previous set again, applied
 * ```
 */
export class Host {
  readonly #o: HostOptions;

  /** A host over `opts.sysroot`; nothing is read yet. */
  constructor(opts: HostOptions) {
    const o = is.options<HostOptions>('options', opts);
    if (!o.sysroot || !o.store) throw new TypeError('sysroot and store are required');
    is.nonEmpty('osname', o.osname);
    this.#o = opts;
  }

  /** The systemd whose rules every check and merge of this host follows (as given). */
  get #rules(): { systemdVersion?: number; systemd?: SystemdInfo } {
    return {
      ...(this.#o.systemdVersion === undefined ? {} : { systemdVersion: this.#o.systemdVersion }),
      ...(this.#o.systemd === undefined ? {} : { systemd: this.#o.systemd }),
    };
  }

  /** The deployment the commands work on. */
  get deployment(): Deployment {
    return pickDeployment(this.#o.sysroot, this.#o.osname, this.#o.deployment);
  }

  get #root(): string {
    return resolve(this.#o.root ?? this.#o.sysroot.path);
  }

  #locked<T>(opts: HostCallOptions, fn: () => Promise<T>): Promise<T> {
    const signal = opts.signal;
    return this.#o.sysroot.withLock(
      async () => {
        // What a kill inside libostree's ref replace left (a `tmp.XXXXXX` ref) goes first.
        const osnames = [...new Set(this.#o.sysroot.deployments().map((d) => d.osname))];
        await this.#o.store.removeStrayRefs({ osnames, ...(signal ? { signal } : {}) });
        return fn();
      },
      { wait: opts.wait ?? false, ...(signal ? { signal } : {}) },
    );
  }

  /** True when `commit` is bound to the deployment and active under the root. */
  async #isApplied(commit: string): Promise<boolean> {
    return (await boundSet(this.#o.sysroot, this.deployment)) === commit && activeSet(this.#root) === commit;
  }

  /** Applies `set` (the set ref's target) and keeps the commits it names from any prune. */
  async #apply(set: SetRecord, votes: VoteReport | null, committed: boolean, opts: HostCallOptions, acceptedBefore: Vote[] = []): Promise<SetChange> {
    const { sysroot, store, osname } = this.#o;
    const before = committed ? false : await this.#isApplied(set.commit);
    await store.keepSetExtensions(opts.signal ? { signal: opts.signal } : {});
    const applied = await applyLocked(
      {
        sysroot,
        repo: store.repo,
        osname,
        deployment: this.deployment,
        root: this.#root,
        refresh: opts.refresh ?? false,
        ...(opts.plugins ? { plugins: opts.plugins } : {}),
        ...this.#rules,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      set,
    );
    return { set, votes, committed, completed: !committed && !before, applied, acceptedBefore };
  }

  /** Changes the current set (`current`, as the caller read it under the lock), commits and applies it. */
  async #commit(current: SetRecord | null, change: (set: DeploymentSet) => void, subject: string, opts: HostCallOptions): Promise<SetChange> {
    const { sysroot, store, osname } = this.#o;
    const base = await baseFromDeployment(sysroot, this.deployment);
    const set = DeploymentSet.fromRecord(
      {
        repo: store.repo,
        osname,
        base,
        ...(opts.plugins ? { plugins: opts.plugins } : {}),
        ...this.#rules,
      },
      current,
    );
    change(set);
    let force = opts.force ?? false;
    let acceptedBefore: Vote[] = [];
    if (!force && opts.keepAcceptedWarnings) {
      const accepted = await warningsAlreadyAccepted(set, current, opts.signal);
      if (accepted) [force, acceptedBefore] = [true, accepted];
    }
    const { record, report } = await set.commit({ force, subject, ...(opts.signal ? { signal: opts.signal } : {}) });
    return this.#apply(record, report, true, opts, acceptedBefore);
  }

  /**
   * Adds installed extensions (at their installed commits) to the set, lets the plugins vote,
   * commits and applies it. When the set already holds them at those commits (for this
   * deployment's base), nothing is committed and the set is applied as it is.
   */
  async deploy(names: string[], opts: HostCallOptions = {}): Promise<SetChange> {
    const list = is.stringArray('names', names).map((n, i) => is.nonEmpty(`names[${i}]`, n));
    return this.#locked(opts, async () => {
      const { store, osname } = this.#o;
      const installed: Record<string, string> = {};
      for (const n of list) {
        const c = await store.repo.resolve(extensionRef(n), { allowMissing: true });
        if (c === null) throw new ExtensionError('NOT_INSTALLED', `${n} is not installed`);
        installed[n] = c;
      }
      const current = await DeploymentSet.current(store.repo, osname);
      if (current !== null && current.base === this.deployment.checksum && list.every((n) => current.extensions[n] === installed[n])) {
        return this.#apply(current, current.votes, false, opts);
      }
      return this.#commit(current, (set) => list.forEach((n) => set.add(n, installed[n])), `Deploy ${list.join(', ')}`, opts);
    });
  }

  /**
   * Removes extensions from the set (they stay installed), lets the plugins vote on what is
   * left, commits and applies it. When none of them is in the set any more but the set is
   * not applied yet (an interrupted undeploy), it is applied; when it is, `NOT_INSTALLED`.
   */
  async undeploy(names: string[], opts: HostCallOptions = {}): Promise<SetChange> {
    const list = is.stringArray('names', names).map((n, i) => is.nonEmpty(`names[${i}]`, n));
    return this.#locked(opts, async () => {
      const current = await DeploymentSet.current(this.#o.store.repo, this.#o.osname);
      if (current !== null && list.length > 0 && list.every((n) => !(n in current.extensions))) {
        if (!(await this.#isApplied(current.commit))) return this.#apply(current, current.votes, false, opts);
        throw new ExtensionError('NOT_INSTALLED', `${list[0]} is not in the set`);
      }
      return this.#commit(current, (set) => list.forEach((n) => set.remove(n)), `Undeploy ${list.join(', ')}`, opts);
    });
  }

  /**
   * Makes an earlier set (default: the previous one) current again, as a new commit on top of
   * the history, and applies it. When the current set already is `to`, or is a rollback not
   * applied yet (an interrupted rollback), it is applied instead of going further back.
   */
  async rollback(to?: string, opts: HostCallOptions = {}): Promise<SetChange> {
    const wanted = to === undefined ? undefined : is.checksum('to', to);
    return this.#locked(opts, async () => {
      const { store, osname } = this.#o;
      const head = await DeploymentSet.current(store.repo, osname);
      if (wanted === undefined && head !== null && head.rollbackOf !== null && !(await this.#isApplied(head.commit))) {
        return this.#apply(head, head.votes, false, opts);
      }
      const set = await DeploymentSet.rollback(store.repo, osname, wanted);
      return this.#apply(set, set.votes, set.commit !== head?.commit, opts);
    });
  }

  /**
   * Updates extensions from their origin (see {@link ExtensionStore.upgrade}); members of the
   * set that were updated go into a new set, voted on, committed and applied. What each name
   * was before is recorded first (`.upgrade-pending` beside the set checkouts), so a re-run
   * after an interruption still moves the set to what the first run installed.
   */
  async upgrade(opts: HostCallOptions & { names?: string[]; allowDowngrade?: boolean } = {}): Promise<HostUpgradeResult> {
    const names = opts.names === undefined ? undefined : is.stringArray('names', opts.names);
    return this.#locked(opts, async () => {
      const { sysroot, store, osname } = this.#o;
      const path = layout(sysroot.path, osname).pendingUpgrade;
      const pending = await readPending(path);
      const from: Record<string, string | null> = { ...(pending?.from ?? {}) };
      for (const n of names ?? (await store.names())) {
        if (!(n in from)) from[n] = await store.repo.resolve(extensionRef(n), { allowMissing: true });
      }
      await mkdir(layout(sysroot.path, osname).setsDir, { recursive: true });
      await writeAtomically(path, JSON.stringify({ from } satisfies PendingUpgrade));
      const outcomes = await store.upgrade({
        force: opts.force ?? false,
        ...(opts.allowDowngrade ? { allowDowngrade: true } : {}),
        ...(names ? { names } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const current = await DeploymentSet.current(store.repo, osname);
      let change: SetChange | null = null;
      if (current !== null) {
        const moved: Record<string, string> = {};
        for (const [n, before] of Object.entries(from)) {
          const now = await store.repo.resolve(extensionRef(n), { allowMissing: true });
          if (now !== null && now !== before && n in current.extensions && current.extensions[n] !== now) moved[n] = now;
        }
        const inSet = Object.keys(moved).sort();
        try {
          if (inSet.length > 0) change = await this.#commit(current, (set) => inSet.forEach((n) => set.add(n, moved[n])), `Upgrade ${inSet.join(', ')}`, opts);
          else if (pending !== null) change = await this.#apply(current, current.votes, false, opts);
        } catch (e) {
          if (!(e instanceof Error)) throw e;
          return { outcomes, change: null, setError: e };
        }
      }
      await rm(path, { force: true });
      return { outcomes, change };
    });
  }

  /**
   * What ostree-sysext.service runs early at boot, before systemd-sysext.service merges: applies
   * the set bound to the deployment (after an OS upgrade, with none bound yet, the current set
   * re-checked against the new OS, incompatible extensions left out) and writes
   * `run/ostree-sysext/systemd-sysext.env` for systemd-sysext.service (see
   * {@link writeServiceEnvironment}). Waits for the sysroot lock unless `wait: false`. With
   * nothing ever deployed for the OS it does nothing: `applied: null`.
   * @example
   * ```ts
   * const { applied, environment } = await host.boot();
   * for (const x of applied?.excluded ?? []) console.warn(`left out ${x.name}: ${x.reason}`);
   * ```
   */
  async boot(opts: HostCallOptions = {}): Promise<{ applied: ApplyResult | null; environment: NodeJS.ProcessEnv | null }> {
    const { sysroot, store, osname } = this.#o;
    const deployment = this.deployment;
    if ((await boundSet(sysroot, deployment)) === null && (await DeploymentSet.current(store.repo, osname)) === null)
      return { applied: null, environment: null };
    const applied = await applySet({
      sysroot,
      repo: store.repo,
      osname,
      deployment,
      root: this.#root,
      wait: opts.wait ?? true,
      refresh: opts.refresh ?? false,
      ...(opts.plugins ? { plugins: opts.plugins } : {}),
      ...this.#rules,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const environment = await writeServiceEnvironment(this.#root, sysroot.deploymentPath(deployment));
    return { applied, environment };
  }

  /**
   * Removes an installed extension (see {@link ExtensionStore.remove}) under the sysroot lock,
   * so no set change runs at the same time: a set never names a commit that was pruned.
   */
  async remove(name: string, opts: HostCallOptions & { prune?: boolean } = {}): Promise<void> {
    is.nonEmpty('name', name);
    await this.#locked(opts, () =>
      this.#o.store.remove(name, { force: opts.force ?? false, prune: opts.prune ?? true, ...(opts.signal ? { signal: opts.signal } : {}) }),
    );
  }
}
