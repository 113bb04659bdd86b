/**
 * Finding the installed systemd and what it does where versions differ: its version from
 * `systemd-sysext --version` / `systemctl --version`, and a capability probe of its shared
 * library (ID_LIKE matching, backported to some 257s). The rules themselves, pure functions of
 * their arguments, are in compat.ts; this module is the only one of the two that does I/O.
 * @module
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { systemdRules, type SystemdInfo } from './compat.js';

/** Options for {@link detectSystemd} and {@link detectSystemdVersion}. */
export interface DetectSystemdVersionOptions {
  /** Aborts the probe. */
  signal?: AbortSignal;
  /** Programs to ask, in order. Default `['systemd-sysext', 'systemctl']`. */
  commands?: readonly string[];
  /**
   * Directories searched for `libsystemd-shared-*.so`, where the capability probe looks.
   * Default: `/usr/lib/systemd`, `/usr/lib64/systemd`, `/lib/systemd` and every
   * `/usr/lib/<multiarch>/systemd`.
   */
  libraryDirs?: readonly string[];
}

/**
 * Parses the first line of `systemd-sysext --version` / `systemctl --version`
 * (`systemd 252 (252.38-1~deb12u1)`) into the major version, or `undefined`.
 *
 * @example
 * ```ts
 * parseSystemdVersion('systemd 256 (256.7-1.fc41)\n+PAM ...'); // 256
 * ```
 */
export function parseSystemdVersion(output: string): number | undefined {
  const match = /^systemd (\d+)\b/.exec(output);
  return match ? Number(match[1]) : undefined;
}

/** Largest file the probe reads (libsystemd-shared is ~4 MiB). */
const PROBE_MAX_BYTES = 256 << 20;
/** The format string of the log line systemd's ID_LIKE-aware ID check prints (258, and its backports). */
const ID_LIKE_MARKER = Buffer.from("but deployed on top of '%s'%s%s%s");

async function defaultLibraryDirs(): Promise<string[]> {
  const dirs = ['/usr/lib/systemd', '/usr/lib64/systemd', '/lib/systemd'];
  const multiarch = await readdir('/usr/lib').catch(() => [] as string[]);
  for (const name of multiarch) if (/-linux-/.test(name)) dirs.push(join('/usr/lib', name, 'systemd'));
  return dirs;
}

/** Where `command` is on PATH, or `undefined`. */
async function onPath(command: string): Promise<string | undefined> {
  if (command.includes('/')) return command;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/**
 * Whether the installed systemd's extension check matches `ID_LIKE`: the code that does so logs
 * with its own format string, which is looked for in that version's shared library
 * (`libsystemd-shared-<version>*.so`) and in the command itself (static builds); false when
 * neither holds it or could be read.
 */
async function probeIdLike(command: string, version: number, opts: DetectSystemdVersionOptions): Promise<boolean> {
  const files: string[] = [];
  const binary = await onPath(command);
  if (binary !== undefined) files.push(binary);
  // The library of this systemd only (`libsystemd-shared-257.so`, `libsystemd-shared-256.7-1.fc41.so`).
  const own = new RegExp(`^libsystemd-shared-${version}([.-][^/]*)?\\.so$`);
  for (const dir of opts.libraryDirs ?? (await defaultLibraryDirs())) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) if (own.test(name)) files.push(join(dir, name));
  }
  for (const file of files) {
    opts.signal?.throwIfAborted();
    // Regular files of a plausible size only: a FIFO or device under that name would block the read.
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || st.size > PROBE_MAX_BYTES) continue;
    const bytes = await readFile(file).catch(() => undefined);
    if (bytes?.includes(ID_LIKE_MARKER)) return true;
  }
  return false;
}

/**
 * Finds the installed systemd and what it does where versions differ: the version from
 * `systemd-sysext --version` (then `systemctl --version`), and from a capability probe whether
 * it matches an extension's `ID` against the host's `ID_LIKE` (upstream 258, backported to
 * distributions' 257). Resolves to `undefined` when no systemd answers. Nothing is remembered:
 * pass the result on (`{ systemd }`) to the calls whose rules it should decide.
 *
 * @example
 * ```ts
 * const systemd = (await detectSystemd()) ?? systemdRules(DEFAULT_SYSTEMD_VERSION);
 * checkCompatibility(ext, host, { systemd });
 * ```
 */
export async function detectSystemd(opts: DetectSystemdVersionOptions = {}): Promise<SystemdInfo | undefined> {
  for (const command of opts.commands ?? ['systemd-sysext', 'systemctl']) {
    opts.signal?.throwIfAborted();
    const stdout = await new Promise<string | undefined>((resolve) => {
      execFile(
        command,
        ['--version'],
        { encoding: 'utf8', timeout: 10_000, env: { ...process.env, SYSTEMD_PAGER: 'cat', LC_ALL: 'C' }, ...(opts.signal ? { signal: opts.signal } : {}) },
        (error, out) => resolve(error ? undefined : out),
      );
    });
    opts.signal?.throwIfAborted();
    const version = stdout === undefined ? undefined : parseSystemdVersion(stdout);
    if (stdout === undefined || version === undefined) continue;
    const full = /^systemd \d+ \(([^)\s]+)\)/.exec(stdout);
    const upstream = systemdRules(version);
    // 258 and later match ID_LIKE by design; older ones only where a backport added the code.
    const idLike = upstream.idLike || (await probeIdLike(command, version, opts));
    const info: SystemdInfo = { version, fullVersion: full ? (full[1] as string) : null, idLike, hostHierarchyMode: upstream.hostHierarchyMode };
    return info;
  }
  return undefined;
}

/**
 * Finds the installed systemd's major version: {@link detectSystemd}, keeping only the number.
 * Resolves to `undefined` when no systemd answers.
 *
 * @example
 * ```ts
 * const systemdVersion = (await detectSystemdVersion()) ?? DEFAULT_SYSTEMD_VERSION;
 * ```
 */
export async function detectSystemdVersion(opts: DetectSystemdVersionOptions = {}): Promise<number | undefined> {
  return (await detectSystemd(opts))?.version;
}
