// The corruption corpus (issue 12, "the process dies"): every damage corrupt.py knows ×
// every public entry point that reads a repository (corpus-child.mjs), in bare, archive and
// bare-user repositories written by the library. Each damage runs in child processes: a
// signal, a sanitizer report (under scripts/test-asan.sh) or no answer within the hang limit
// fails the attempt that was running, and the child is restarted after it; success or a
// typed OstreeError/ExtensionError/ArgumentError passes. Outcomes go to
// test-results/corruption.json (damage × entry point → outcome and error code).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv } from '../helpers/child.js';
import { isRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';
import { DAMAGES, MODES, PYTHON, buildPristine, damagedCopy, writeExtensionTree, type Damage, type Mode } from './corrupt.js';

const dist = process.env.OSX_CORPUS_DIST ?? resolve(import.meta.dirname, '../../dist/lib/index.js');
const CHILD = resolve(import.meta.dirname, 'corpus-child.mjs');
const sanitized = process.env.OSX_SANITIZED === '1';
// A FIFO open blocks forever; everything else here takes milliseconds per attempt.
const HANG_MS = Number(process.env.OSX_CORPUS_HANG_MS ?? (sanitized ? 30_000 : 10_000));
const JOBS = Number(process.env.OSX_CORPUS_JOBS ?? 2);
// The entry points, as the child names them (it owns the list).
const NAMES: string[] = JSON.parse(execFileSync(process.execPath, [CHILD, dist, '-', '-', 'names', '0'], { env: childEnv, encoding: 'utf8' }));

interface Attempt {
  entry: string;
  outcome: 'ok' | 'typed' | 'untyped' | 'crash' | 'hang' | 'not-run';
  code?: string;
  message?: string;
  detail?: unknown;
}

const dir = tempDir('osx-corpus-');
const pristine: Record<string, string> = {};
const results: Record<string, Attempt[]> = {};

// At most JOBS children at once (the machine is shared).
let running = 0;
const queue: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= JOBS) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

function runChild(
  repo: string,
  work: string,
  start: number,
): Promise<{ lines: any[]; code: number | null; signal: string | null; killed: boolean; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [CHILD, dist, repo, work, String(start), String(HANG_MS)], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    // The child's own timer handles a hung worker; this one a hung main thread.
    const timer = setTimeout(
      () => {
        killed = true;
        child.kill('SIGKILL');
      },
      HANG_MS * (NAMES.length - start + 2),
    );
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const lines = out
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          try {
            return JSON.parse(l);
          } catch {
            return { junk: l };
          }
        });
      resolveRun({ lines, code, signal, killed, stderr: err });
    });
  });
}

async function runDamage(mode: Mode, damage: Damage): Promise<Attempt[]> {
  const base = mkdtempSync(join(dir, `${mode}-${damage}-`));
  const repo = join(base, 'repo');
  damagedCopy(pristine[mode]!, repo, damage);
  const attempts: Attempt[] = NAMES.map((entry) => ({ entry, outcome: 'not-run' }));
  let start = 0;
  let round = 0;
  let retries = 0;
  while (start < NAMES.length) {
    const work = join(base, `work${round++}`);
    mkdirSync(work);
    const r = await runChild(repo, work, start);
    // A child that failed before its first attempt (no signal) could not load dist/, which a
    // concurrent vitest run may be rebuilding: not an attempt, run it again.
    if (!r.lines.some((l) => typeof l.start === 'number') && r.signal === null && !r.killed && retries++ < 5) {
      await new Promise((res) => setTimeout(res, 2000));
      continue;
    }
    let last = -1;
    let hung = -1;
    for (const l of r.lines) {
      if (typeof l.start === 'number') last = l.start;
      if (typeof l.hang === 'number') hung = l.hang;
      if (typeof l.end === 'number') {
        attempts[l.end] = { entry: NAMES[l.end]!, outcome: l.outcome, code: l.code, message: l.message, detail: l.detail };
        last = -1;
        start = l.end + 1;
      }
    }
    if (r.code === 0 && !r.killed) break;
    const culprit = hung >= 0 ? hung : last >= 0 ? last : start;
    if (culprit >= NAMES.length) break;
    attempts[culprit] = {
      entry: NAMES[culprit]!,
      outcome: hung >= 0 || r.killed ? 'hang' : 'crash',
      code: r.signal ?? `exit ${r.code}`,
      message: r.stderr.split('\n').filter(Boolean).slice(-3).join(' | ').slice(0, 400),
    };
    start = culprit + 1;
  }
  return attempts;
}

// bare repositories need root to check out (ownership); the others do not.
const modes = MODES.filter((m) => m !== 'bare' || isRoot);

beforeAll(async () => {
  try {
    execFileSync(PYTHON, ['-c', 'from gi.repository import GLib'], { stdio: 'ignore' });
  } catch {
    throw new Error(`the corruption corpus needs python3-gi for ${PYTHON} (Debian: apt-get install python3-gi)`);
  }
  const tree = join(dir, 'tree');
  writeExtensionTree(tree);
  for (const mode of modes) {
    pristine[mode] = join(dir, `pristine-${mode}`);
    await buildPristine(pristine[mode]!, mode, tree);
  }
});

afterAll(() => {
  const out = resolve(import.meta.dirname, '../../test-results');
  mkdirSync(out, { recursive: true });
  const failed = Object.entries(results).flatMap(([k, as]) =>
    as.filter((a) => a.outcome === 'crash' || a.outcome === 'hang' || a.outcome === 'untyped').map((a) => `${k} ${a.entry}: ${a.outcome} ${a.code ?? ''}`),
  );
  const attempts = Object.values(results).reduce((n, as) => n + as.length, 0);
  // An entry point's answer for the 5,000-level tree nests that deep: the report keeps outcomes
  // and codes, and details only where they serialise.
  let text: string;
  try {
    text = JSON.stringify({ attempts, failed, results }, null, 1);
  } catch {
    const plain = Object.fromEntries(Object.entries(results).map(([k, as]) => [k, as.map(({ detail: _detail, ...rest }) => rest)]));
    text = JSON.stringify({ attempts, failed, results: plain }, null, 1);
  }
  writeFileSync(join(out, 'corruption.json'), text);
});

describe.concurrent('corruption corpus: no damaged object takes the process down', () => {
  for (const mode of modes) {
    for (const damage of DAMAGES) {
      it(`${mode} ${damage}`, async () => {
        const attempts = await slot(() => runDamage(mode, damage));
        results[`${mode} ${damage}`] = attempts;
        const bad = attempts.filter((a) => a.outcome !== 'ok' && a.outcome !== 'typed');
        expect(bad, JSON.stringify(bad)).toEqual([]);
        // fsck finds every damage (as corrupt or missing objects, or a typed refusal).
        const fsck = attempts.find((a) => a.entry === 'fsck')!;
        if (damage !== 'none' && fsck.outcome === 'ok') expect((fsck.detail as { ok: boolean }).ok, `fsck missed ${damage}`).toBe(false);
        if (damage === 'none') {
          // The control: every entry point really works on the undamaged repository.
          expect(attempts.filter((a) => a.outcome !== 'ok').map((a) => `${a.entry}: ${a.code} ${a.message}`)).toEqual([]);
        }
      }, 600_000);
    }
  }
});
