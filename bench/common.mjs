// Shared pieces of the benchmark: data generation, timing, contender processes, statistics.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync, existsSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

export const PYTHON = '/usr/bin/python3';
export const OSTREE = 'ostree';

/** Runs a command, throws with its stderr on failure; returns stdout. */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/** Times a child process: wall clock (fork/exec included) and CPU time (user + sys), in ms. */
export function timeProcess(cmd, args) {
  return JSON.parse(sh(PYTHON, [RUSAGE, cmd, ...args]));
}
const RUSAGE = new URL('./py/rusage.py', import.meta.url).pathname;

/** `ostree --repo=R ...`. */
export function ostree(repo, ...args) {
  return sh(OSTREE, [`--repo=${repo}`, ...args]);
}

export function rmrf(p) {
  if (existsSync(p)) rmSync(p, { recursive: true, force: true });
}

/** A fresh repository made by the CLI, with core.fsync=false so every client skips fsync. */
export function makeRepo(path, mode) {
  rmrf(path);
  mkdirSync(path, { recursive: true });
  ostree(path, 'init', `--mode=${mode}`);
  ostree(path, 'config', 'set', 'core.fsync', 'false');
  return path;
}

// Deterministic pseudo-random bytes (xorshift32), so every run builds the same data.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}
const POOL = (() => {
  const r = rng(12345);
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(r() * 4294967296), i);
  return b;
})();

/** A size from a mix typical of an OS tree: a few empty files, mostly small, a tail of larger ones. */
function pickSize(r) {
  const p = r();
  if (p < 0.02) return 0;
  if (p < 0.62) return Math.floor(r() * 1024) + 1;
  if (p < 0.92) return 1024 + Math.floor(r() * 7 * 1024);
  return 8192 + Math.floor(r() * 56 * 1024);
}

/**
 * Writes `n` files of mixed sizes below `root/sub`, 50 per directory, two directory levels;
 * every file's content is unique (its path is written into it). Returns total bytes.
 */
export function writeFiles(root, sub, n, seed) {
  const r = rng(seed);
  let bytes = 0;
  let dir = '';
  for (let i = 0; i < n; i++) {
    if (i % 50 === 0) {
      dir = join(root, sub, `d${Math.floor(i / 2500)}`, `d${Math.floor(i / 50) % 50}`);
      mkdirSync(dir, { recursive: true });
    }
    const size = pickSize(r);
    const name = `f${i}`;
    if (size === 0) {
      writeFileSync(join(dir, name), '');
      continue;
    }
    const tag = Buffer.from(`${sub}/${name}:${seed}\n`);
    const off = Math.floor(r() * (POOL.length - size));
    const buf = Buffer.concat([tag, POOL.subarray(off, off + Math.max(0, size - tag.length))]);
    writeFileSync(join(dir, name), buf);
    bytes += buf.length;
  }
  return bytes;
}

/** A base OS tree: os-release plus `n` data files under usr/share/base. */
export function makeBaseTree(root, n) {
  rmrf(root);
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  const release = 'ID=benchos\nVERSION_ID=1\nNAME="Bench OS"\n';
  writeFileSync(join(root, 'usr/lib/os-release'), release);
  writeFileSync(join(root, 'etc/os-release'), release);
  mkdirSync(join(root, 'usr/share/common'), { recursive: true });
  for (let k = 0; k < 10; k++) writeFileSync(join(root, `usr/share/common/c${k}`), `base ${k}\n`);
  writeFiles(root, 'usr/share/base', n, 1);
  return root;
}

/**
 * An extension tree: its release file, `n` data files of its own, and 10 paths every
 * extension (and the base) also ships with different content: real conflicts to report.
 */
export function makeExtensionTree(root, name, n, seed) {
  rmrf(root);
  mkdirSync(join(root, 'usr/lib/extension-release.d'), { recursive: true });
  writeFileSync(join(root, `usr/lib/extension-release.d/extension-release.${name}`), `ID=_any\nSYSEXT_VERSION_ID=${seed}.0\n`);
  mkdirSync(join(root, 'usr/share/common'), { recursive: true });
  for (let k = 0; k < 10; k++) writeFileSync(join(root, `usr/share/common/c${k}`), `${name} ${k}\n`);
  if (n > 0) writeFiles(root, `usr/share/${name}`, n, seed);
  return root;
}

/** Statistics of a list of samples. */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/**
 * Runs an async function with event-loop delay monitoring; returns its duration (ms) and the
 * loop delay p99/max (ms) seen while it ran.
 */
export async function timeLib(fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  h.disable();
  // CPU time of the whole process (every thread): the library's work on libuv's pool included.
  return { ms, cpu: (c.user + c.system) / 1000, value, eld: { p99: h.percentile(99) / 1e6, max: h.max / 1e6 } };
}

/**
 * Runs contenders alternately: `runs` rounds, each running every contender once, the order
 * rotated each round so no contender always goes first (cache warmth, background load).
 * `contenders` maps a name to { setup?(), run() → ms | { ms, eld } , teardown?() }.
 */
export async function alternate(contenders, runs, log) {
  const names = Object.keys(contenders);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const elds = Object.fromEntries(names.map((n) => [n, []]));
  const values = Object.fromEntries(names.map((n) => [n, []]));
  const cpus = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < runs; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const n of order) {
      const c = contenders[n];
      if (c.setup) await c.setup();
      const got = await c.run();
      if (c.teardown) await c.teardown();
      const ms = typeof got === 'number' ? got : got.ms;
      samples[n].push(ms);
      if (typeof got === 'object' && got.eld) elds[n].push(got.eld);
      if (typeof got === 'object' && got.value !== undefined) values[n].push(got.value);
      if (typeof got === 'object' && got.cpu !== undefined) cpus[n].push(got.cpu);
      log?.(`    ${n} run ${r + 1}/${runs}: ${ms.toFixed(1)} ms`);
    }
  }
  const out = {};
  for (const n of names) {
    out[n] = stats(samples[n]);
    out[n].samples = samples[n];
    out[n].values = values[n];
    if (cpus[n].length === samples[n].length) out[n].cpu = stats(cpus[n]);
    if (elds[n].length) {
      out[n].eld = { p99: Math.max(...elds[n].map((e) => e.p99)), max: Math.max(...elds[n].map((e) => e.max)) };
    }
  }
  return out;
}

/**
 * The file system under `path`: type, mount options and, for ext4, whether it has a journal.
 * Without one, ext4 skips inodes freed in the last minute (up to five) when it allocates new
 * ones (`find_inode_bit` → `recently_deleted`), so creating a tree right after deleting one
 * scans past every freed inode: timings then depend on what was deleted just before.
 */
export function fsDescription(path) {
  try {
    const [source, fstype, options] = sh('findmnt', ['-no', 'SOURCE,FSTYPE,OPTIONS', '-T', path]).trim().split(/\s+/);
    let journal = '';
    if (fstype === 'ext4') {
      const dev = source.replace(/^\/dev\//, '');
      try {
        journal = sh('cat', [`/sys/fs/ext4/${dev}/journal_task`]).trim() === '<none>' ? ', no journal' : ', with a journal';
      } catch {
        /* no sysfs entry: journal unknown */
      }
    }
    return `${fstype} (${source}, ${options}${journal})`;
  } catch {
    return 'an unknown file system';
  }
}

/** Machine and versions, for the results file. */
export function environment() {
  const mem = Number(/MemTotal:\s+(\d+)/.exec(sh('cat', ['/proc/meminfo']))?.[1] ?? 0);
  const cpu = /model name\s*:\s*(.*)/.exec(sh('cat', ['/proc/cpuinfo']))?.[1] ?? 'unknown';
  let gi = 'not installed';
  try {
    gi = sh(PYTHON, [
      '-c',
      "import gi; gi.require_version('OSTree','1.0'); from gi.repository import OSTree; print(gi.__version__, 'libostree', OSTree.YEAR_VERSION, OSTree.RELEASE_VERSION)",
    ]).trim();
  } catch {
    // no PyGObject: reported as not installed
  }
  const libostree = (() => {
    try {
      return sh('pkg-config', ['--modversion', 'ostree-1']).trim();
    } catch {
      return /Version: '?([\d.]+)/.exec(sh(OSTREE, ['--version']))?.[1] ?? '?';
    }
  })();
  const cli = /Version: '?([\d.]+)/.exec(sh(OSTREE, ['--version']))?.[1] ?? '?';
  let load = '';
  try {
    load = sh('cat', ['/proc/loadavg']).split(' ').slice(0, 3).join(' ');
  } catch {
    /* no /proc: load unknown */
  }
  return {
    nproc: sh('nproc', []).trim(),
    cpu,
    memGiB: (mem / 1048576).toFixed(1),
    node: process.version,
    libostree,
    cli,
    gi,
    load,
    kernel: sh('uname', ['-r']).trim(),
  };
}

export { appendFileSync, execFileSync };
