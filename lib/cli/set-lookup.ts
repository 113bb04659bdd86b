/**
 * How the command reads sets the way a person names them: a set id as `status` prints it (a
 * unique prefix).
 * @module
 */
import { DeploymentSet } from '../sets/deployment-set.js';
import type { Repo } from '../binding/repo.js';
import { CliError, EXIT, usage } from './output.js';

/** The shortest set id accepted (`status` prints 12 characters). */
const MIN_PREFIX = 4;

/**
 * The full commit of the set of `osname` whose id is `id` or starts with it. Throws a usage
 * error for something that is no set id, NOT_FOUND (exit 4) when no set in the history
 * matches, and a usage error naming the candidates when several do.
 */
export async function setByPrefix(repo: Repo, osname: string, id: string): Promise<string> {
  const want = id.toLowerCase();
  if (!/^[0-9a-f]+$/.test(want) || want.length < MIN_PREFIX || want.length > 64) {
    throw usage(
      `'${id}' is not a set id (${MIN_PREFIX} to 64 hex digits, as \`ostree-sysext status\` prints them)`,
      'see the sets with `ostree-sysext status --json`',
    );
  }
  const history = await DeploymentSet.history(repo, osname);
  const found = [...new Set(history.map((r) => r.commit).filter((c) => c.startsWith(want)))];
  if (found.length === 0)
    throw new CliError(`no set of ${osname} has the id ${id}`, EXIT.NOT_FOUND, 'NOT_IN_HISTORY', 'see the history with `ostree-sysext status --json`');
  if (found.length > 1) throw usage(`the set id ${id} is ambiguous: ${found.map((c) => c.slice(0, 16)).join(', ')}`, 'give more of the id');
  return found[0]!;
}
