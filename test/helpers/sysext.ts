// Drives the real systemd-sysext on test roots inside a private mount namespace (needs root).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Exit status and output of a script run by {@link runInPrivateMountNamespace}. */
export interface NamespaceRun {
  /** Exit code, or `null` if the script was killed by a signal. */
  code: number | null;
  /** The signal that killed the script, if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link runInPrivateMountNamespace}. */
export interface NamespaceOptions {
  /** Positional arguments for the script (`$1`, `$2`, …): pass data here, never in the script. */
  args?: readonly string[];
  /** Extra environment variables. */
  env?: Readonly<Record<string, string>>;
  /**
   * Mount a fresh tmpfs on /run first. Default `true`: systemd-sysext 252 remounts /run MS_SLAVE,
   * which fails when /run is not a mount point (as in containers); it then logs an error, exits 0
   * and merges nothing.
   */
  freshRun?: boolean;
  /** Kill the script after this many milliseconds. Default 120 000. */
  timeoutMs?: number;
}

/**
 * Runs a bash script as root in a new mount namespace whose mounts are all private, so nothing
 * it mounts is seen outside and everything is gone when it exits.
 */
export function runInPrivateMountNamespace(script: string, opts: NamespaceOptions = {}): Promise<NamespaceRun> {
  const prelude = ['mount --make-rprivate /', opts.freshRun === false ? '' : 'mount -t tmpfs -o mode=0755 tmpfs /run'].filter((line) => line !== '').join('\n');
  const argv = ['--mount', '--propagation', 'private', '--', 'bash', '-c', `${prelude}\n${script}`, 'sysext-ns', ...(opts.args ?? [])];
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', argv, {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** One test root for {@link sysextMergeProbe}. */
export interface MergeProbeRoot {
  /** Absolute path of an OS tree holding `usr/lib/os-release` and `var/lib/extensions/…`. */
  root: string;
  /** Paths relative to `root` whose existence is recorded while merged. */
  probePaths?: readonly string[];
}

/** What systemd-sysext did with one root. */
export interface MergeProbeResult {
  root: string;
  /** Exit code of `systemd-sysext --root=ROOT merge`. */
  exitCode: number;
  /** Extensions listed in `<hierarchy>/.systemd-sysext/extensions` of /usr, /opt and /etc (confexts: `etc/.systemd-confext/confexts`) while merged, in order. */
  merged: { usr: string[] | null; opt: string[] | null; etc: string[] | null };
  /** The `probePaths` that existed while merged. */
  present: string[];
  stdout: string;
  /** systemd-sysext's log (debug level unless `SYSTEMD_LOG_LEVEL` is overridden). */
  stderr: string;
  /** Whether the unmerge afterwards succeeded and left no sysext mount behind. */
  unmerged: boolean;
  /**
   * Whether the merge failed as a whole. systemd-sysext 252 exits 0 even when its merge child
   * fails (`merge()` returns `r != 123` for any child exit status), so this also looks for the
   * log line it prints when it ends normally without merging.
   */
  failed: boolean;
}

/** Options for {@link sysextMergeProbe}. */
export interface MergeProbeOptions {
  /** Extra arguments for `systemd-sysext merge`. */
  args?: readonly string[];
  /** Extra environment for systemd-sysext. Default `SYSTEMD_LOG_LEVEL=debug`. */
  env?: Readonly<Record<string, string>>;
  /** Kill the batch after this many milliseconds. Default 300 000. */
  timeoutMs?: number;
  /** `systemd-sysext` (default) or `systemd-confext` (systemd 254+: /etc, var/lib/confexts). */
  tool?: 'systemd-sysext' | 'systemd-confext';
}

// Loops over the roots given as arguments: results-dir, then per root: path, N, N probe paths.
const PROBE_SCRIPT = `
results=$1; shift
nargs=$1; shift
margs=()
for ((k = 0; k < nargs; k++)); do margs+=("$1"); shift; done
i=0
while [ $# -gt 0 ]; do
  root=$1; nprobe=$2; shift 2
  out="$results/$i"
  mkdir -p "$out"
  : >"$out/present"
  mount --bind "$root" "$root" && mount --make-shared "$root"
  rc=0
  "$PROBE_TOOL" --root="$root" "\${margs[@]}" merge >"$out/stdout" 2>"$out/stderr" || rc=$?
  echo "$rc" >"$out/rc"
  for h in usr opt etc; do
    if [ -f "$root/$h/.systemd-sysext/extensions" ]; then cp "$root/$h/.systemd-sysext/extensions" "$out/ext-$h"; fi
  done
  if [ -f "$root/etc/.systemd-confext/confexts" ]; then cp "$root/etc/.systemd-confext/confexts" "$out/ext-etc"; fi
  for ((k = 0; k < nprobe; k++)); do
    if [ -e "$root/$1" ] || [ -L "$root/$1" ]; then printf '%s\\n' "$1" >>"$out/present"; fi
    shift
  done
  um=0
  SYSTEMD_LOG_LEVEL=info "$PROBE_TOOL" --root="$root" unmerge >>"$out/stdout" 2>>"$out/stderr" || um=$?
  for h in usr opt etc; do
    if [ -e "$root/$h/.systemd-sysext" ]; then um=1; fi
  done
  if [ -e "$root/etc/.systemd-confext" ]; then um=1; fi
  echo "$um" >"$out/unmerge"
  umount -l "$root"
  i=$((i + 1))
done
`;

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function lines(text: string | null): string[] | null {
  return text === null ? null : text.split('\n').filter((l) => l !== '');
}

/**
 * Runs `systemd-sysext --root=ROOT merge` on each root in one private mount namespace, records
 * what got merged, then unmerges. On systemd 252 `status --root` is broken while merged, so the
 * merged set is read from `<hierarchy>/.systemd-sysext/extensions` instead.
 */
export async function sysextMergeProbe(roots: readonly MergeProbeRoot[], opts: MergeProbeOptions = {}): Promise<MergeProbeResult[]> {
  const results = await mkdtemp(join(tmpdir(), 'sysext-probe-'));
  try {
    const args: string[] = [results, String(opts.args?.length ?? 0), ...(opts.args ?? [])];
    for (const r of roots) args.push(r.root, String(r.probePaths?.length ?? 0), ...(r.probePaths ?? []));
    const run = await runInPrivateMountNamespace(PROBE_SCRIPT, {
      args,
      env: { SYSTEMD_LOG_LEVEL: 'debug', SYSTEMD_PAGER: 'cat', PROBE_TOOL: opts.tool ?? 'systemd-sysext', ...opts.env },
      timeoutMs: opts.timeoutMs ?? 300_000,
    });
    if (run.code !== 0) {
      throw new Error(`the probe namespace failed (exit ${run.code ?? run.signal}): ${run.stderr}`);
    }
    return await Promise.all(
      roots.map(async (r, i): Promise<MergeProbeResult> => {
        const dir = join(results, String(i));
        const rc = await readOptional(join(dir, 'rc'));
        if (rc === null) throw new Error(`no result for ${r.root}: ${run.stderr}`);
        const exitCode = Number(rc.trim());
        const stderr = (await readOptional(join(dir, 'stderr'))) ?? '';
        const ext =
          lines(await readOptional(join(dir, 'ext-usr'))) ?? lines(await readOptional(join(dir, 'ext-opt'))) ?? lines(await readOptional(join(dir, 'ext-etc')));
        const endedNormally = ext !== null || /No (suitable )?extensions found/.test(stderr);
        return {
          root: r.root,
          exitCode,
          failed: exitCode !== 0 || !endedNormally,
          merged: {
            usr: lines(await readOptional(join(dir, 'ext-usr'))),
            opt: lines(await readOptional(join(dir, 'ext-opt'))),
            etc: lines(await readOptional(join(dir, 'ext-etc'))),
          },
          present: lines(await readOptional(join(dir, 'present'))) ?? [],
          stdout: (await readOptional(join(dir, 'stdout'))) ?? '',
          stderr,
          unmerged: (await readOptional(join(dir, 'unmerge')))?.trim() === '0',
        };
      }),
    );
  } finally {
    await rm(results, { recursive: true, force: true });
  }
}
