/**
 * Driving the real `systemd-sysext` for a root directory, with systemd 252's quirks handled:
 * `status --root` fails while merged and `list` may say `"none"`, so the merged state is read
 * from `<hierarchy>/.systemd-sysext/extensions`; and a merge that printed errors but exited 0
 * (seen when `/run` is not a mount point) is detected by checking that state afterwards.
 * A hierarchy systemd could not mount in that root (absent, in an immutable root such as an
 * OSTree deployment's) is left out with `SYSTEMD_SYSEXT_HIERARCHIES`: 252 and 254 skip it with
 * a log line, 257 and later fail the whole merge ("Failed to create hierarchy mount point").
 * @module
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ExtensionError } from '../extension/errors.js';
import { Overlay } from './overlay.js';
import { HIERARCHIES } from '../extension/hierarchies.js';
import { directoryReader } from '../tree/directory.js';
import { chase } from '../tree/reader.js';

const run = promisify(execFile);

/** Actions of systemd-sysext this library drives. */
export type SysextAction = 'merge' | 'unmerge' | 'refresh';

/** Options of the systemd-sysext calls. */
export interface SysextOptions {
  /** The root directory (`--root`); `/` (default) means the running system. */
  root?: string;
  /** `sysext` (default: `systemd-sysext`, /usr and /opt) or `confext` (`systemd-confext`, /etc; systemd 254 and later). */
  kind?: 'sysext' | 'confext';
  /** The binary. Default `systemd-sysext` (or `systemd-confext` for `kind: 'confext'`) from PATH. */
  binary?: string;
  /** `--force`: merge what the release rules would refuse. */
  force?: boolean;
  /** `--no-reload`: do not reload the service manager afterwards (implied by a `root` other than `/`). */
  noReload?: boolean;
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
  constructor(message: string, stderr: string, exitCode: number | null, code = 'APPLY_FAILED') {
    super(code, stderr.trim() ? `${message}: ${stderr.trim().split('\n').slice(-5).join(' / ')}` : message);
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/**
 * The hierarchies systemd-sysext can merge in `root`: each of `hierarchies` that resolves to a
 * directory there (symlinks chased inside `root`), or is missing where systemd can create it —
 * below an existing directory, or in the root itself when that is writable. Missing in an
 * immutable root (an OSTree deployment without /opt), it cannot be mounted: 252 and 254 skip it,
 * 257 and later fail the merge, so {@link sysext} leaves it out for every version (the rule the
 * offline merge applies too).
 * @example
 * ```ts
 * await mergeableHierarchies(sysroot.deploymentPath(d)); // ['usr'] when the deployment has no /opt
 * ```
 */
export async function mergeableHierarchies(root = '/', hierarchies: readonly string[] = HIERARCHIES.sysext): Promise<string[]> {
  const out: string[] = [];
  const reader = directoryReader(root);
  let creates: boolean | undefined;
  for (const h of hierarchies) {
    // systemd mkdirs a missing hierarchy (and what follows it) below an existing directory, and
    // in the root itself only when the root is writable.
    const r = await chase(reader, h);
    if (r.status === 'found' ? r.entry?.type === 'dir' : r.status === 'missing' && r.at !== '') out.push(h);
    else if (r.status === 'missing' && (creates ??= await Overlay.createsMissingHierarchies(root))) out.push(h);
  }
  return out;
}

/**
 * The environment {@link sysext} runs systemd-sysext with for `action` in `root`: the caller's,
 * plus `SYSTEMD_SYSEXT_HIERARCHIES` naming only {@link mergeableHierarchies} when a merge would
 * otherwise need a mount point systemd cannot create. A `SYSTEMD_SYSEXT_HIERARCHIES` already set
 * is the caller's choice and is kept.
 * @example
 * ```ts
 * const env = await sysextEnvironment('refresh', '/sysroot/ostree/deploy/os/deploy/abc.0');
 * ```
 */
export async function sysextEnvironment(action: SysextAction | 'list', root = '/', env: NodeJS.ProcessEnv = process.env): Promise<NodeJS.ProcessEnv> {
  if ((action !== 'merge' && action !== 'refresh') || env.SYSTEMD_SYSEXT_HIERARCHIES !== undefined) return env;
  const all = HIERARCHIES.sysext;
  const usable = await mergeableHierarchies(root, all);
  if (usable.length === all.length) return env;
  // Nothing mergeable at all: keep systemd's own answer (it reports it) rather than an empty list.
  if (usable.length === 0) return env;
  return { ...env, SYSTEMD_SYSEXT_HIERARCHIES: usable.map((h) => `/${h}`).join(':') };
}

/** Where {@link writeServiceEnvironment} puts systemd-sysext.service's environment, below the `run/` root. */
export const SERVICE_ENVIRONMENT_FILE = 'run/ostree-sysext/systemd-sysext.env';

/**
 * Writes the environment systemd-sysext.service needs to merge the OS tree `osRoot` (the booted
 * deployment) as {@link sysext} would — `SYSTEMD_SYSEXT_HIERARCHIES` when a hierarchy cannot be
 * mounted there — to `<runRoot>/run/ostree-sysext/systemd-sysext.env` (atomically), or removes
 * that file when nothing is needed. The shipped drop-in
 * `systemd/systemd-sysext.service.d/ostree-sysext.conf` reads it (`EnvironmentFile=-…`);
 * `ostree-sysext boot` calls this before systemd-sysext.service starts. Returns what it wrote.
 * @example
 * ```ts
 * await writeServiceEnvironment('/', sysroot.deploymentPath(booted)); // { SYSTEMD_SYSEXT_HIERARCHIES: '/usr' }
 * ```
 */
export async function writeServiceEnvironment(runRoot: string, osRoot: string): Promise<Record<string, string>> {
  const vars: Record<string, string> = {};
  const env = await sysextEnvironment('refresh', osRoot, {});
  if (env.SYSTEMD_SYSEXT_HIERARCHIES !== undefined) vars.SYSTEMD_SYSEXT_HIERARCHIES = env.SYSTEMD_SYSEXT_HIERARCHIES;
  const file = join(runRoot, SERVICE_ENVIRONMENT_FILE);
  if (Object.keys(vars).length === 0) {
    await rm(file, { force: true });
    return vars;
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  // Written only into a real directory, never through a symlink planted there.
  if (!(await lstat(dirname(file))).isDirectory()) {
    throw new ExtensionError('APPLY_FAILED', `${dirname(file)} is not a directory (a symlink?): refusing to write systemd-sysext's environment through it`);
  }
  const tmp = `${file}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  const text = Object.entries(vars)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('');
  await writeFile(tmp, text, { mode: 0o644, flag: 'wx' });
  await rename(tmp, file);
  return vars;
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
  const confext = opts.kind === 'confext';
  const bin = opts.binary ?? (confext ? 'systemd-confext' : 'systemd-sysext');
  try {
    // /etc always exists: SYSTEMD_SYSEXT_HIERARCHIES is about /usr and /opt only.
    const env = confext ? process.env : await sysextEnvironment(action, opts.root ?? '/');
    const extra = [...(action === 'list' ? ['--json=short'] : []), ...(opts.force ? ['--force'] : []), ...(opts.noReload ? ['--no-reload'] : [])];
    const r = await run(bin, [...args(action, opts.root), ...extra], {
      ...(opts.signal ? { signal: opts.signal } : {}),
      env,
      maxBuffer: 16 << 20,
    });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { stderr?: string; code?: number | string; message: string };
    const code = typeof err.code === 'number' ? err.code : null;
    if (err.code === 'ENOENT') throw new SysextError(`${bin} is not installed (Debian/Fedora: the systemd package)`, '', null);
    throw new SysextError(`${basename(bin)} ${action} failed${opts.root ? ` for root ${opts.root}` : ''}`, err.stderr ?? err.message, code);
  }
}

/**
 * Which extensions are merged into each hierarchy, read from the merged trees themselves
 * (`<hierarchy>/.systemd-sysext/extensions`; for `etc`, systemd-confext's
 * `etc/.systemd-confext/confexts`).
 * @example
 * ```ts
 * await mergedExtensions('/'); // { usr: ['tools'], opt: [] }
 * await mergedExtensions('/', ['etc']); // { etc: ['site-config'] }
 * ```
 */
export async function mergedExtensions(root = '/', hierarchies: readonly string[] = ['usr', 'opt']): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const h of hierarchies) {
    try {
      const meta = h === 'etc' ? ['.systemd-confext', 'confexts'] : ['.systemd-sysext', 'extensions'];
      const text = await readFile(join(root, h, ...meta), 'utf8');
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
