// Every state-changing CLI command converges: the command (deploy, undeploy, rollback, remove,
// upgrade) is killed (SIGKILL) at a filesystem or repository event of its own, then run again
// the same way; the final state (the set ref's history, the applied checkout, the run/ links,
// the installed, keep and origin records, no temporaries left) must equal an uninterrupted
// run's. Events are counted from outside, with no hook in the code: an LD_PRELOAD shim
// (compiled here) counts every rename/renameat/renameat2, unlink/unlinkat, symlink/symlinkat,
// link/linkat, mkdir/mkdirat, fsync/fdatasync and creating open/openat of the process, in all
// its threads, with one counter, and kills the process at the Nth. (strace's inject counts per
// syscall and per thread, so "the Nth event" is not one point there.)
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  readFileSync,
  realpathSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/binding/repo.js';
import { makeTestSysroot, makeTree } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { removeTree, tempDir } from '../helpers/tmp.js';
import { childEnv } from '../helpers/child.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const dir = tempDir('converge-');
// The children run a private copy of the package (dist/, bin/, the addon) taken when the test
// starts: other test runs rebuild dist/ meanwhile, and a half-emitted dist/ is not this test's.
const PKG = join(dir, 'pkg');
const BIN = join(PKG, 'bin', 'ostree-sysext.js');
/** Kill points tried per command, at most (chosen from the event log, see `killPoints`); CONVERGE_MAX_POINTS=Infinity tries all distinct ones. */
const MAX_POINTS = Number(process.env.CONVERGE_MAX_POINTS ?? 30);
/** CONVERGE_EVERY_EVENT=1: every event is a kill point (no thinning of runs of like events). */
const EVERY_EVENT = process.env.CONVERGE_EVERY_EVENT === '1';
const PARALLEL = 2;
/** Per command: minutes when asked for many points. */
const TEST_TIMEOUT = EVERY_EVENT || MAX_POINTS > 30 ? 3_600_000 : 300_000;

const SHIM = String.raw`
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_long counter;
static long kill_at = -1;
static int logfd = -1;

__attribute__((constructor)) static void init(void) {
  const char *k = getenv("CONVERGE_KILL_AT");
  if (k) kill_at = atol(k);
  const char *l = getenv("CONVERGE_LOG");
  if (l) logfd = (int)syscall(SYS_openat, AT_FDCWD, l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void event(const char *kind, int dirfd, const char *path) {
  long n = atomic_fetch_add(&counter, 1) + 1;
  if (logfd >= 0) {
    char buf[1200];
    int len = snprintf(buf, sizeof buf, "%ld %s %d %s\n", n, kind, dirfd == AT_FDCWD ? -1 : dirfd, path ? path : "");
    if (len > (int)sizeof buf) len = sizeof buf;
    syscall(SYS_write, logfd, buf, len);
  }
  if (n == kill_at) syscall(SYS_kill, getpid(), SIGKILL);
}

#define REAL(ret, name, ...) static ret (*real_##name)(__VA_ARGS__); if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

int rename(const char *a, const char *b) { REAL(int, rename, const char *, const char *); event("rename", AT_FDCWD, b); return real_rename(a, b); }
int renameat(int fa, const char *a, int fb, const char *b) { REAL(int, renameat, int, const char *, int, const char *); event("rename", fb, b); return real_renameat(fa, a, fb, b); }
int renameat2(int fa, const char *a, int fb, const char *b, unsigned f) { REAL(int, renameat2, int, const char *, int, const char *, unsigned); event("rename", fb, b); return real_renameat2(fa, a, fb, b, f); }
int unlink(const char *p) { REAL(int, unlink, const char *); event("unlink", AT_FDCWD, p); return real_unlink(p); }
int unlinkat(int d, const char *p, int f) { REAL(int, unlinkat, int, const char *, int); event("unlink", d, p); return real_unlinkat(d, p, f); }
int rmdir(const char *p) { REAL(int, rmdir, const char *); event("unlink", AT_FDCWD, p); return real_rmdir(p); }
int symlink(const char *t, const char *p) { REAL(int, symlink, const char *, const char *); event("symlink", AT_FDCWD, p); return real_symlink(t, p); }
int symlinkat(const char *t, int d, const char *p) { REAL(int, symlinkat, const char *, int, const char *); event("symlink", d, p); return real_symlinkat(t, d, p); }
int link(const char *a, const char *b) { REAL(int, link, const char *, const char *); event("link", AT_FDCWD, b); return real_link(a, b); }
int linkat(int fa, const char *a, int fb, const char *b, int f) { REAL(int, linkat, int, const char *, int, const char *, int); event("link", fb, b); return real_linkat(fa, a, fb, b, f); }
int mkdir(const char *p, mode_t m) { REAL(int, mkdir, const char *, mode_t); event("mkdir", AT_FDCWD, p); return real_mkdir(p, m); }
int mkdirat(int d, const char *p, mode_t m) { REAL(int, mkdirat, int, const char *, mode_t); event("mkdir", d, p); return real_mkdirat(d, p, m); }
int fsync(int fd) { REAL(int, fsync, int); event("fsync", fd, ""); return real_fsync(fd); }
int fdatasync(int fd) { REAL(int, fdatasync, int); event("fsync", fd, ""); return real_fdatasync(fd); }

static int creates(int flags) { return (flags & O_CREAT) || ((flags & O_TMPFILE) == O_TMPFILE); }
#define OPEN_MODE(flags) mode_t mode = 0; if (creates(flags)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
int open(const char *p, int flags, ...) { REAL(int, open, const char *, int, mode_t); OPEN_MODE(flags); if (creates(flags)) event("create", AT_FDCWD, p); return real_open(p, flags, mode); }
int open64(const char *p, int flags, ...) { REAL(int, open64, const char *, int, mode_t); OPEN_MODE(flags); if (creates(flags)) event("create", AT_FDCWD, p); return real_open64(p, flags, mode); }
int openat(int d, const char *p, int flags, ...) { REAL(int, openat, int, const char *, int, mode_t); OPEN_MODE(flags); if (creates(flags)) event("create", d, p); return real_openat(d, p, flags, mode); }
int openat64(int d, const char *p, int flags, ...) { REAL(int, openat64, int, const char *, int, mode_t); OPEN_MODE(flags); if (creates(flags)) event("create", d, p); return real_openat64(d, p, flags, mode); }
`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let shim = '';

/** Runs the CLI on `sysroot` (children share the machine: the caller runs at most PARALLEL). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const preload = [childEnv.LD_PRELOAD, env.CONVERGE_KILL_AT || env.CONVERGE_LOG ? shim : ''].filter(Boolean).join(':');
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // io_uring would take file operations past libc (and the shim); libuv then uses its threads.
      env: { ...childEnv, OSTREE_SYSEXT_DEBUG: '', UV_USE_IO_URING: '0', ...env, ...(preload ? { LD_PRELOAD: preload } : {}) },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

/** Copies a fixture sysroot (hardlinks within it kept). */
function copyTree(from: string, to: string): void {
  const r = spawnSync('cp', ['-a', from, to]);
  expect(r.status, String(r.stderr)).toBe(0);
}

/** A JSON-able picture of everything the commands change, with commit checksums normalised. */
async function snapshot(sysroot: string): Promise<Record<string, unknown>> {
  const repo = await Repo.open(join(sysroot, 'ostree', 'repo'));
  try {
    const content = async (c: string): Promise<string> => {
      const x = await repo.loadCommit(c).catch(() => null);
      return x?.contentChecksum ?? `MISSING ${c}`;
    };
    const refs = await repo.listRefs({ remotes: false });
    const ext: Record<string, string> = {};
    const keep: string[] = [];
    for (const [ref, c] of Object.entries(refs)) {
      if (ref.startsWith('ostree-sysext/ext/')) ext[ref] = await content(c);
      if (ref.startsWith('ostree-sysext/keep/')) keep.push(await content(c));
    }
    const head = refs['ostree-sysext/set/testos'] ?? null;
    const history = head === null ? [] : (await repo.log(head)).commits;
    const pos = (c: unknown) => (typeof c === 'string' ? history.findIndex((h) => h.checksum === c) : null);
    const sets = [];
    for (const h of history) {
      const exts: Record<string, string> = {};
      for (const [n, c] of Object.entries((h.metadata['ostree-sysext.extensions'] ?? {}) as Record<string, string>)) exts[n] = await content(c);
      sets.push({ subject: h.subject, extensions: exts, rollbackOf: pos(h.metadata['ostree-sysext.rollback-of']), base: h.metadata['ostree-sysext.base'] });
    }
    const norm = (s: string) => (head ? s.split(head).join('HEAD') : s);
    const link = (p: string) => {
      try {
        return norm(readlinkSync(p));
      } catch {
        return null;
      }
    };
    const setsDir = join(sysroot, 'ostree/deploy/testos/extensions');
    const deployDir = join(sysroot, 'ostree/deploy/testos/deploy');
    const bindings = readdirSync(deployDir)
      .filter((e) => e.endsWith('.extensions'))
      .map((e) => link(join(deployDir, e)));
    const active = link(join(sysroot, 'run/ostree/extensions'));
    // The applied checkout, as a listing (path, type, size).
    const listing: string[] = [];
    const walk = (p: string) => {
      for (const e of readdirSync(p).sort()) {
        const q = join(p, e);
        const st = lstatSync(q);
        listing.push(`${relative(setsDir, q)} ${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : `f${st.size}`}`);
        if (st.isDirectory()) walk(q);
      }
    };
    if (head && existsSync(join(setsDir, `${head}.0`))) walk(join(setsDir, `${head}.0`));
    const config = readFileSync(join(sysroot, 'ostree/repo/config'), 'utf8');
    return {
      installed: ext,
      keep: keep.sort(),
      origins: [...config.matchAll(/^\[ostree-sysext-origin "([^"]+)"\]$/gm)].map((m) => m[1]).sort(),
      removing: /^removing=/m.test(config),
      sets,
      bindings,
      active,
      runExtensions: link(join(sysroot, 'run/extensions')),
      checkout: listing.map(norm),
      // Temporaries an interrupted run left (checkouts, link temporaries, the pending upgrade).
      leftovers: [
        ...(existsSync(setsDir) ? readdirSync(setsDir).filter((e) => e.startsWith('.') || e.includes('.tmp-')) : []),
        ...readdirSync(join(sysroot, 'run')).filter((e) => e.startsWith('.')),
        ...(existsSync(join(sysroot, 'run/ostree')) ? readdirSync(join(sysroot, 'run/ostree')).filter((e) => e.startsWith('.')) : []),
        ...readdirSync(deployDir).filter((e) => e.startsWith('.')),
      ],
    };
  } finally {
    repo.close();
  }
}

/** Null when run/extensions shows `<the set run/ostree/extensions names>/staged` (or nothing is active); else what it shows. */
function mixedView(sysroot: string): string | null {
  let state: string;
  try {
    state = realpathSync(join(sysroot, 'run/ostree/extensions'));
  } catch {
    return existsSync(join(sysroot, 'run/extensions')) ? `run/extensions without run/ostree/extensions` : null;
  }
  const ext = realpathSync(join(sysroot, 'run/extensions'));
  return ext === join(state, 'staged') ? null : `run/extensions shows ${ext}, run/ostree/extensions ${state}`;
}

/**
 * The kill points: every event, except that in a run of consecutive events of one kind on
 * paths that differ only in checksums or file names (objects written, files checked out)
 * the first and last stand for the run; then at most MAX_POINTS, evenly spread, always with
 * every rename and symlink (the state transitions) and the last event.
 */
function killPoints(log: string): { total: number; points: number[]; candidates: number } {
  const events = log
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [n, kind, , ...p] = l.split(' ');
      const path = p.join(' ');
      return { n: Number(n), kind: kind!, key: `${kind} ${path.replace(/[0-9a-f]{6,}/g, '*').replace(/[^/]*$/, '')}` };
    });
  const candidates: Array<{ n: number; kind: string }> = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const prev = events[i - 1];
    const next = events[i + 1];
    if (!EVERY_EVENT && prev?.key === e.key && next?.key === e.key) continue;
    candidates.push(e);
  }
  let points = candidates;
  if (points.length > MAX_POINTS) {
    // The state transitions, and the last event (after it only the exit: a completed run).
    const last = points[points.length - 1]!;
    const must = points.filter((e) => e.kind === 'rename' || e.kind === 'symlink' || e === last);
    const rest = points.filter((e) => !must.includes(e));
    const room = Math.max(0, MAX_POINTS - must.length);
    const picked = room === 0 ? [] : Array.from({ length: room }, (_, i) => rest[Math.floor((i * rest.length) / room)]!);
    points = [...new Set([...must.slice(0, MAX_POINTS), ...picked])].sort((a, b) => a.n - b.n);
  }
  return { total: events.length, points: points.map((e) => e.n), candidates: candidates.length };
}

/** Runs `work` over `items`, at most PARALLEL at a time. */
async function pool<T, R>(items: T[], work: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]!, i);
      }
    }),
  );
  return out;
}

describeAsRoot('every CLI command converges after a kill at any event', () => {
  const fixtures: Record<string, string> = {};
  const alphaSrc = join(dir, 'src-alpha');
  const summary: string[] = [];

  beforeAll(async () => {
    mkdirSync(join(PKG, 'build', 'Release'), { recursive: true });
    for (const p of ['package.json', 'dist', 'bin']) copyTree(join(ROOT, p), join(PKG, p));
    copyFileSync(join(ROOT, 'build', 'Release', 'ostree_sysext.node'), join(PKG, 'build', 'Release', 'ostree_sysext.node'));
    symlinkSync(join(ROOT, 'node_modules'), join(PKG, 'node_modules'));
    shim = join(dir, 'event-kill.so');
    writeFileSync(join(dir, 'event-kill.c'), SHIM);
    const cc = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-o', shim, join(dir, 'event-kill.c'), '-ldl'], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);

    // F0: alpha and beta installed; the set {alpha} deployed and applied.
    const f0 = join(dir, 'f0');
    const s = makeTestSysroot(f0, { osname: 'testos', deployments: 1 });
    makeTree(alphaSrc, {
      'usr/lib/extension-release.d/extension-release.alpha': 'ID=_any\nSYSEXT_VERSION_ID=1\n',
      'usr/share/alpha/a': 'a\n',
      'usr/share/alpha/b': 'b\n',
    });
    const betaSrc = join(dir, 'src-beta');
    makeTree(betaSrc, { 'usr/lib/extension-release.d/extension-release.beta': 'ID=_any\n', 'usr/share/beta/a': 'beta a\n', 'usr/share/beta/b': 'beta b\n' });
    for (const args of [
      ['add', alphaSrc],
      ['add', betaSrc],
      ['deploy', 'alpha'],
    ]) {
      const r = await cli(['--sysroot', s.path, ...args]);
      expect(r.code, r.stderr).toBe(0);
    }
    fixtures.f0 = f0;
    // F1: F0, then beta deployed too ({alpha, beta}).
    fixtures.f1 = join(dir, 'f1');
    copyTree(f0, fixtures.f1);
    const r = await cli(['--sysroot', fixtures.f1, 'deploy', 'beta']);
    expect(r.code, r.stderr).toBe(0);
    // F0old: F0 in the layout before one-rename activation (run/extensions switched on its own).
    fixtures.f0old = join(dir, 'f0old');
    copyTree(f0, fixtures.f0old);
    const active = readlinkSync(join(fixtures.f0old, 'run/ostree/extensions'));
    const oldLink = join(fixtures.f0old, 'run/.extensions-old');
    // The old apply wrote both links relative: run/ostree/extensions -> ../../ostree/…/<set>.0, run/extensions -> ../ostree/…/<set>.0/staged.
    expect(active).toMatch(/^\.\.\/\.\.\/ostree\//);
    symlinkSync(`${active.slice(3)}/staged`, oldLink);
    renameSync(oldLink, join(fixtures.f0old, 'run/extensions'));
    expect(readlinkSync(join(fixtures.f0old, 'run/extensions'))).toMatch(/^\.\.\/ostree\/deploy\/testos\/extensions\/[0-9a-f]{64}\.0\/staged$/);
    expect(readdirSync(join(fixtures.f0old, 'run/extensions'))).toEqual(['alpha']);
    // alpha's source changes: every copy's upgrade finds an update.
    writeFileSync(join(alphaSrc, 'usr/lib/extension-release.d/extension-release.alpha'), 'ID=_any\nSYSEXT_VERSION_ID=2\n');
    writeFileSync(join(alphaSrc, 'usr/share/alpha/c'), 'c\n');
  }, 240_000);

  const cases: Array<{ name: string; fixture: string; args: string[]; check: (s: Record<string, any>) => void }> = [
    { name: 'deploy', fixture: 'f0', args: ['deploy', 'beta'], check: (s) => expect(Object.keys(s.sets[0].extensions).sort()).toEqual(['alpha', 'beta']) },
    {
      name: 'deploy over the old layout (migration)',
      fixture: 'f0old',
      args: ['deploy', 'beta'],
      check: (s) => expect([Object.keys(s.sets[0].extensions).sort(), s.runExtensions]).toEqual([['alpha', 'beta'], 'ostree/extensions/staged']),
    },
    { name: 'undeploy', fixture: 'f1', args: ['undeploy', 'beta'], check: (s) => expect(Object.keys(s.sets[0].extensions)).toEqual(['alpha']) },
    {
      name: 'rollback',
      fixture: 'f1',
      args: ['rollback'],
      check: (s) => expect([Object.keys(s.sets[0].extensions), s.sets[0].rollbackOf, s.sets.length]).toEqual([['alpha'], 2, 3]),
    },
    {
      name: 'remove',
      fixture: 'f0',
      args: ['remove', 'beta'],
      check: (s) => expect([Object.keys(s.installed), s.origins]).toEqual([['ostree-sysext/ext/alpha'], ['alpha']]),
    },
    {
      name: 'upgrade',
      fixture: 'f0',
      args: ['upgrade', 'alpha'],
      check: (s) =>
        expect([s.sets.length, s.sets[0].extensions.alpha, s.sets[0].extensions.alpha === s.sets[1].extensions.alpha]).toEqual([
          2,
          s.installed['ostree-sysext/ext/alpha'],
          false,
        ]),
    },
  ];

  for (const c of cases) {
    it(
      `${c.name}: killed at each event, then run again, ends where an uninterrupted run ends`,
      async () => {
        const t0 = Date.now();
        // The uninterrupted run, with its event log.
        const refDir = join(dir, `${c.name}-ref`);
        copyTree(fixtures[c.fixture]!, refDir);
        const logPath = join(dir, `${c.name}.events`);
        const ref = await cli(['--sysroot', refDir, ...c.args], { CONVERGE_LOG: logPath });
        expect(ref.code, ref.stderr).toBe(0);
        const want = await snapshot(refDir);
        c.check(want);
        expect(want.leftovers).toEqual([]);
        expect(want.runExtensions).toBe('ostree/extensions/staged');
        // A kill after the last change (releasing the lock) leaves a completed run: the re-run is
        // then a second run, and must do what a second uninterrupted run does.
        const second = await cli(['--sysroot', refDir, ...c.args]);
        const want2 = await snapshot(refDir);
        removeTree(refDir);
        const log = readFileSync(logPath, 'utf8');
        const { total, points, candidates } = killPoints(log);
        const at = (n: number) => log.split('\n')[n - 1] ?? '?';
        expect(total).toBeGreaterThan(5);

        const results = await pool(points, async (n) => {
          const trial = join(dir, `${c.name}-${n}`);
          copyTree(fixtures[c.fixture]!, trial);
          try {
            const killed = await cli(['--sysroot', trial, ...c.args], { CONVERGE_KILL_AT: String(n) });
            const mixed = mixedView(trial);
            const complete = isDeepStrictEqual(await snapshot(trial), want);
            const again = await cli(['--sysroot', trial, ...c.args]);
            const got = await snapshot(trial);
            return {
              n,
              killed: killed.signal === 'SIGKILL',
              complete,
              mixed,
              firstCode: killed.code,
              firstStderr: killed.stderr,
              code: again.code,
              stderr: again.stderr,
              got,
            };
          } finally {
            removeTree(trial);
          }
        });
        const killedCount = results.filter((r) => r.killed).length;
        for (const r of results) {
          // An uninterrupted first run (the event count moved) must have succeeded.
          // Whatever the kill left, run/extensions shows the staged dir of the set run/ostree/extensions names.
          expect(r.mixed, `after a kill at ${at(r.n)}`).toBeNull();
          if (!r.killed) expect(r.firstCode, `kill point ${r.n} (${at(r.n)}) was not reached: ${r.firstStderr}`).toBe(0);
          if (r.complete) {
            expect(r.code, `second run after a kill at ${at(r.n)} (the first had finished its changes): ${r.stderr}`).toBe(second.code);
            expect(r.got, `state after a kill at ${at(r.n)}, the first run complete, and a second run`).toEqual(want2);
          } else {
            expect(r.code, `re-run after a kill at event ${at(r.n)}: ${r.stderr}`).toBe(0);
            expect(r.got, `state after a kill at event ${at(r.n)} and a re-run`).toEqual(want);
          }
        }
        const complete = results.filter((r) => r.complete).length;
        expect(killedCount).toBeGreaterThan(points.length / 2);
        const line = `converge ${c.name}: ${total} events, ${candidates} distinct kill points, ${points.length} tried, ${killedCount} killed, ${results.length} converged (${complete} of them killed after the last change, then re-run as a second run) (${((Date.now() - t0) / 1000).toFixed(0)} s)`;
        summary.push(line);
        process.stdout.write(line + '\n');
      },
      TEST_TIMEOUT,
    );
  }

  describe('the counter itself', () => {
    it('kills at the Nth event and not before (the shim works on this machine)', async () => {
      const trial = join(dir, 'shim-check');
      copyTree(fixtures.f0!, trial);
      try {
        const r = await cli(['--sysroot', trial, 'deploy', 'beta'], { CONVERGE_KILL_AT: '1' });
        expect(r.signal).toBe('SIGKILL');
        // Killed at its first event: nothing changed.
        const s = await snapshot(trial);
        expect(Object.keys((s.sets as Array<{ extensions: object }>)[0]!.extensions)).toEqual(['alpha']);
      } finally {
        removeTree(trial);
      }
    }, 60_000);
  });
});
