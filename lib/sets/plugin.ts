/**
 * The plugin contract: what a plugin is, what it is asked with, and what it answers. Plugins in
 * this process ({@link runVote}), in a worker ({@link modulePlugin}) and in a confined child
 * ({@link executablePlugin}) all meet it.
 * @module
 */
import type { Repo } from '../binding/repo.js';
import type { Base } from '../extension/base.js';
import type { SystemdInfo } from '../extension/compat.js';
import type { TreeReader } from '../tree/reader.js';

/** A plugin's verdict. `warn` passes only with `force`; `veto` never passes. */
export type Verdict = 'approve' | 'warn' | 'veto';

/** What a plugin answers from {@link Plugin.checkCompatible}. */
export interface VoteAnswer {
  verdict: Verdict;
  /** Why, for a person. */
  message: string;
  /** Structured details (JSON-safe), e.g. the conflicting paths. */
  details?: unknown;
}

/** One plugin's vote in a {@link VoteReport}. */
export interface Vote extends VoteAnswer {
  /** The plugin's name. */
  plugin: string;
  /** How long the plugin took, in milliseconds. */
  durationMs: number;
}

/** One extension of the set, as plugins see it. */
export interface SetMember {
  name: string;
  commit: string;
  kind: 'sysext' | 'confext';
  /** Its extension-release fields. */
  release: Record<string, string>;
  /** Reads its tree. */
  reader: TreeReader;
  /** A directory holding its tree, when one exists (a checkout), for executables. */
  path?: string;
  /** The repository holding `commit` (the merged view reads it from there). */
  repo?: Repo;
}

/** What every plugin call is given. */
export interface PluginContext {
  /** The OS name the set is for. */
  osname: string;
  /** The base OS. */
  base: Base;
  /** The extensions, in systemd's overlay order (bottom first). */
  extensions: SetMember[];
  /** The systemd version whose rules apply. */
  systemdVersion: number;
  /**
   * The systemd whose behaviour applies, where it is known beyond the version number
   * ({@link detectSystemd}: backports such as `ID_LIKE` matching); its `version` equals
   * `systemdVersion`. Absent: upstream's rules for `systemdVersion`.
   */
  systemd?: SystemdInfo;
  /** The repository holding the extensions' commits (for the merged view and conflicts). */
  repo?: Repo;
  /** Cancels the work. */
  signal?: AbortSignal;
}

/** What {@link Plugin.deployFinish} is given on top of {@link PluginContext}. */
export interface DeployContext extends PluginContext {
  /** A read-only merged view of base + extensions, as systemd-sysext will show it. */
  merged: TreeReader;
  /** The set's `state/` directory: the only place the plugin may write. */
  stateDir: string;
}

/**
 * A plugin.
 * @example
 * ```ts
 * const noBigSets: Plugin = {
 *   name: 'no-big-sets',
 *   async checkCompatible({ extensions }) {
 *     return extensions.length > 10
 *       ? { verdict: 'warn', message: `${extensions.length} extensions is a lot` }
 *       : { verdict: 'approve', message: 'ok' };
 *   },
 * };
 * ```
 */
export interface Plugin {
  /** Unique name, shown in reports. */
  readonly name: string;
  /** Votes on the whole set. */
  checkCompatible?(ctx: PluginContext): Promise<VoteAnswer>;
  /** Writes state files for the set into `ctx.stateDir`. */
  deployFinish?(ctx: DeployContext): Promise<void>;
}

/** The outcome of a vote round. */
export interface VoteReport {
  /** The worst verdict of all votes (`approve` when there were none). */
  verdict: Verdict;
  /** Every plugin's vote, in plugin order. */
  votes: Vote[];
  /** True when the set may be deployed: no veto, and no warning unless forced. */
  accepted: boolean;
  /** Whether `force` was given. */
  forced: boolean;
}
