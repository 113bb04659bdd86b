/**
 * Driving the real `systemd-sysext` for a root directory, with systemd 252's quirks handled:
 * `status --root` fails while merged and `list` may say `"none"`, so the merged state is read
 * from `<hierarchy>/.systemd-sysext/extensions`; and a merge that printed errors but exited 0
 * (seen when `/run` is not a mount point) is detected by checking that state afterwards.
 * @module
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ExtensionError } from './errors-domain.js';

const run = promisify(execFile);

/** Actions of systemd-sysext this library drives. */
export type SysextAction = 'merge' | 'unmerge' | 'refresh';

/** Options of the systemd-sysext calls. */
export interface SysextOptions {
  /** The root directory (`--root`); `/` (default) means the running system. */
  root?: string;
  /** The systemd-sysext binary. Default `systemd-sysext` from PATH. */
  binary?: string;
  /** Cancels the command. */
  signal?: AbortSignal;
}

/** Error from systemd-sysext, with its own words. */
export class SysextError extends ExtensionError {
  /** systemd-sysext's standard error. */
  readonly stderr: string;
  /** Its exit code (null if killed). */
  readonly exitCode: number | null;
  /** An error for a failed systemd-sysext run; `stderr` and `exitCode` are its own. */
  constructor(message: string, stderr: string, exitCode: number | null) {
    super('APPLY_FAILED', stderr.trim() ? `${message}: ${stderr.trim().split('\n').slice(-5).join(' / ')}` : message);
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

function args(action: string, root: string | undefined): string[] {
  return root && root !== '/' ? [`--root=${root}`, action] : [action];
}

/**
 * Runs `systemd-sysext [--root=ROOT] ACTION` and returns its output; failures are {@link SysextError}s.
 * @example
 * ```ts
 * const { stdout } = await sysext('status', { root: '/mnt/image' });
 * ```
 */
export async function sysext(action: SysextAction | 'list', opts: SysextOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const bin = opts.binary ?? 'systemd-sysext';
  try {
    const r = await run(bin, [...args(action, opts.root), ...(action === 'list' ? ['--json=short'] : [])], {
      ...(opts.signal ? { signal: opts.signal } : {}),
      maxBuffer: 16 << 20,
    });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { stderr?: string; code?: number | string; message: string };
    const code = typeof err.code === 'number' ? err.code : null;
    if (err.code === 'ENOENT') throw new SysextError(`${bin} is not installed (Debian/Fedora: the systemd package)`, '', null);
    throw new SysextError(`systemd-sysext ${action} failed${opts.root ? ` for root ${opts.root}` : ''}`, err.stderr ?? err.message, code);
  }
}

/**
 * Which extensions are merged into each hierarchy, read from the merged trees themselves.
 * @example
 * ```ts
 * await mergedExtensions('/'); // { usr: ['tools'], opt: [] }
 * ```
 */
export async function mergedExtensions(root = '/', hierarchies: readonly string[] = ['usr', 'opt']): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const h of hierarchies) {
    try {
      const text = await readFile(join(root, h, '.systemd-sysext', 'extensions'), 'utf8');
      out[h] = text
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
    } catch {
      out[h] = [];
    }
  }
  return out;
}

/**
 * Images systemd-sysext sees (its `list`), with 252's `"none"` normalised to an empty list.
 * @example
 * ```ts
 * for (const image of await listImages()) console.log(image.name, image.path);
 * ```
 */
export async function listImages(opts: SysextOptions = {}): Promise<Array<{ name: string; type: string; path: string }>> {
  const { stdout } = await sysext('list', opts);
  const t = stdout.trim();
  if (t === '' || t === '"none"') return [];
  const parsed: unknown = JSON.parse(t);
  return Array.isArray(parsed) ? (parsed as Array<{ name: string; type: string; path: string }>) : [];
}

/**
 * Merges (or refreshes) and checks that `expected` sysexts really are merged into /usr
 * afterwards: systemd 252 can print errors and still exit 0 having merged nothing.
 * @example
 * ```ts
 * await mergeAndVerify('refresh', ['tools', 'debug-tools'], { root: '/' });
 * ```
 */
export async function mergeAndVerify(action: 'merge' | 'refresh', expected: readonly string[], opts: SysextOptions = {}): Promise<string[]> {
  const r = await sysext(action, opts);
  const merged = (await mergedExtensions(opts.root ?? '/', ['usr'])).usr ?? [];
  const missing = expected.filter((n) => !merged.includes(n));
  if (missing.length > 0) {
    throw new SysextError(`systemd-sysext ${action} did not merge ${missing.join(', ')}${opts.root ? ` into ${opts.root}` : ''}`, r.stderr, 0);
  }
  return merged;
}
