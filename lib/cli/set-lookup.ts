/**
 * How the command reads sets the way a person names them: a set id as `status` prints it (a
 * unique prefix), and warnings a person already accepted with --force for the current set.
 * @module
 */
import { baseFromDeployment } from '../base.js';
import { DeploymentSet, type SetRecord } from '../deployment-set.js';
import type { Plugin, Vote } from '../plugins.js';
import type { ExtensionStore } from '../store.js';
import type { Context } from './context.js';
import { CliError, EXIT, usage } from './output.js';

/** The shortest set id accepted (`status` prints 12 characters). */
const MIN_PREFIX = 4;

/**
 * The full commit of the set of `osname` whose id is `id` or starts with it. Throws a usage
 * error for something that is no set id, NOT_FOUND (exit 4) when no set in the history
 * matches, and a usage error naming the candidates when several do.
 */
export async function setByPrefix(store: ExtensionStore, osname: string, id: string): Promise<string> {
  const want = id.toLowerCase();
  if (!/^[0-9a-f]+$/.test(want) || want.length < MIN_PREFIX || want.length > 64) {
    throw usage(
      `'${id}' is not a set id (${MIN_PREFIX} to 64 hex digits, as \`ostree-sysext status\` prints them)`,
      'see the sets with `ostree-sysext status --json`',
    );
  }
  const history = await DeploymentSet.history(store, osname);
  const found = [...new Set(history.map((r) => r.commit).filter((c) => c.startsWith(want)))];
  if (found.length === 0)
    throw new CliError(`no set of ${osname} has the id ${id}`, EXIT.NOT_FOUND, 'NOT_IN_HISTORY', 'see the history with `ostree-sysext status --json`');
  if (found.length > 1) throw usage(`the set id ${id} is ambiguous: ${found.map((c) => c.slice(0, 16)).join(', ')}`, 'give more of the id');
  return found[0]!;
}

const key = (v: Vote): string => `${v.plugin}\0${v.message}`;
const items = (v: Vote): string[] | null => (Array.isArray(v.details) ? v.details.map((d) => JSON.stringify(d)) : null);

/**
 * When the current set was accepted with --force and `next` draws only warnings that were
 * accepted then — the same plugin with the same message, or with structured details (such as
 * file-conflicts' list of paths) that were all among that plugin's details then — those
 * warnings; else null. A person who accepted a warning about one extension is not asked again
 * when removing another. Runs one extra vote, and only when the current set was forced.
 */
export async function warningsAlreadyAccepted(next: DeploymentSet, current: SetRecord | null, signal?: AbortSignal): Promise<Vote[] | null> {
  const before = current?.votes;
  if (!before?.forced) return null;
  const forced = before.votes.filter((v) => v.verdict === 'warn');
  if (forced.length === 0) return null;
  const messages = new Set(forced.map(key));
  const report = await next.vote(signal ? { signal } : {});
  if (report.verdict !== 'warn') return null;
  const warnings = report.votes.filter((v) => v.verdict === 'warn');
  const seen = (w: Vote): boolean => {
    if (messages.has(key(w))) return true;
    const now = items(w);
    if (now === null) return false;
    const then = new Set(forced.filter((f) => f.plugin === w.plugin).flatMap((f) => items(f) ?? []));
    return now.every((d) => then.has(d));
  };
  return warnings.every(seen) ? warnings : null;
}

/**
 * Whether a change of the current set may pass with force because its only warnings were
 * accepted with --force before (printed as such). Cheap when the current set was not forced.
 */
export async function stillAccepted(ctx: Context, plugins: Plugin[], change: (set: DeploymentSet) => void): Promise<boolean> {
  const store = await ctx.store();
  const osname = await ctx.osname();
  const current = await DeploymentSet.current(store, osname);
  if (!current?.votes?.forced) return false;
  const base = await baseFromDeployment(await ctx.sysroot(), await ctx.deployment());
  const next = await DeploymentSet.fromCurrent({ store, osname, base, plugins });
  try {
    change(next);
  } catch {
    return false; // not a change this check is about (e.g. a name not in the set): the host decides
  }
  const accepted = await warningsAlreadyAccepted(next, current, ctx.signal);
  for (const w of accepted ?? []) ctx.out.info(`accepted with --force before, still accepted: ${w.plugin}: ${w.message}`);
  return accepted !== null;
}
