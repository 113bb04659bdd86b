// The event loop stays responsive while libostree works: a 10,000-file commit and checkout
// run on worker threads, so perf_hooks sees no long blocks. A control blocks the loop on
// purpose to show the measurement can fail.
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { makeManyFiles } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const base = tempDir('ostree-sysext-eventloop-');
const FILES = 10_000;
const P99_MS = 10;
const MAX_MS = 50;

interface Delay {
  p99: number;
  max: number;
  mean: number;
  samples: number;
  ms: number;
  /** CPU time of the main (JS) thread itself: high means our code blocked it, low means it waited for a CPU. */
  mainThreadCpuMs: number;
  /** Gaps between 1 ms timer ticks longer than 20 ms: [offset from start, length], in ms. */
  gaps: Array<[number, number]>;
}

/** utime + stime of the main thread (tid = pid) in ms, from /proc. */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // fields 14 and 15, USER_HZ = 100
}

/** Runs `work` while a 1 ms-resolution monitor samples event-loop delay; figures in ms. */
async function measure<T>(work: () => Promise<T>): Promise<{ value: T; delay: Delay }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const gaps: Array<[number, number]> = [];
  const started = performance.now();
  const cpu0 = mainThreadCpuMs();
  let last = started;
  const tick = setInterval(() => {
    const now = performance.now();
    if (now - last > 20) gaps.push([Math.round(last - started), Math.round(now - last)]);
    last = now;
  }, 1);
  h.enable();
  const value = await work();
  // One more turn so the monitor records the turn that settled the promise.
  await new Promise((r) => setTimeout(r, 5));
  h.disable();
  clearInterval(tick);
  const delay = {
    p99: h.percentile(99) / 1e6,
    max: h.max / 1e6,
    mean: h.mean / 1e6,
    samples: h.count,
    ms: performance.now() - started,
    mainThreadCpuMs: mainThreadCpuMs() - cpu0,
    gaps,
  };
  return { value, delay };
}

const fmt = (what: string, d: Delay): string =>
  `event loop during ${what}: p99 ${d.p99.toFixed(2)} ms, max ${d.max.toFixed(2)} ms, mean ${d.mean.toFixed(2)} ms ` +
  `(${d.samples} samples over ${d.ms.toFixed(0)} ms; main thread CPU ${d.mainThreadCpuMs.toFixed(0)} ms; ` +
  `gaps > 20 ms at [offset, length] ${JSON.stringify(d.gaps)}; load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} CPUs)`;

describe('event-loop delay', () => {
  let tree: string;
  let repo: Repo;
  beforeAll(async () => {
    tree = makeManyFiles(join(base, 'tree'), FILES); // synchronous: done before any measuring
    repo = await Repo.create(join(base, 'repo'), { mode: 'bare-user-only', disableFsync: true });
    return () => repo.close();
  });

  it('control: a synchronous 100 ms block shows up as max >= 90 ms', async () => {
    const { delay } = await measure(async () => {
      await new Promise((r) => setTimeout(r, 20));
      const until = performance.now() + 100;
      while (performance.now() < until) {
        // busy: the event loop is blocked
      }
      await new Promise((r) => setTimeout(r, 20));
    });
    console.log(fmt('the control (100 ms synchronous block)', delay));
    expect(delay.max).toBeGreaterThanOrEqual(90);
    expect(delay.max).toBeGreaterThan(MAX_MS); // so the bound below is able to fail
  });

  // Retried: on a 2-core machine another process can keep the main thread off the CPU for
  // tens of ms (not our blocking: the test prints main-thread CPU time to tell them apart).
  it(`a ${FILES}-file commit: p99 <= ${P99_MS} ms, max <= ${MAX_MS} ms`, { retry: 2 }, async () => {
    const { value: commit, delay } = await measure(() => repo.commit({ tree, ref: 'big', subject: '10k files' }));
    console.log(fmt(`a ${FILES}-file commit`, delay));
    expect(await repo.resolve('big')).toBe(commit);
    expect(delay.ms).toBeGreaterThan(100); // long enough for the figures to mean something
    expect(delay.p99).toBeLessThanOrEqual(P99_MS);
    expect(delay.max).toBeLessThanOrEqual(MAX_MS);
  });

  for (const hardlinks of ['allow', 'never'] as const) {
    it(`a ${FILES}-file checkout (hardlinks ${hardlinks}): p99 <= ${P99_MS} ms, max <= ${MAX_MS} ms`, { retry: 2 }, async () => {
      const dest = join(base, `co-${hardlinks}`);
      rmSync(dest, { recursive: true, force: true }); // a retry starts from nothing
      const { delay } = await measure(() => repo.checkout('big', dest, { mode: 'user', hardlinks }));
      console.log(fmt(`a ${FILES}-file checkout (hardlinks ${hardlinks})`, delay));
      expect((await import('node:fs')).readdirSync(join(dest, 'd099'))).toHaveLength(100);
      expect(delay.p99).toBeLessThanOrEqual(P99_MS);
      expect(delay.max).toBeLessThanOrEqual(MAX_MS);
    });
  }
});
