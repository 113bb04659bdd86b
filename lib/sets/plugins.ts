/**
 * Plugins see a base and a complete set of extensions, vote on it (`approve`, `warn`,
 * `veto`) and may generate state files for exactly that combination. They come three ways:
 * objects registered in-process, modules in a plugin directory, and executables speaking JSON.
 * Plugins fail closed: one that crashes, hangs or answers garbage counts as a veto.
 * @module
 */
import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCompatibility } from '../extension/compat.js';
import type { DeployContext, Plugin, PluginContext, Verdict, Vote, VoteAnswer, VoteReport } from './plugin.js';
import { canonicalizeState, executablePlugin, modulePlugin } from './plugin-sandbox.js';

/** Default time limit of one plugin call. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 30_000;
const RANK: Record<Verdict, number> = { approve: 0, warn: 1, veto: 2 };

function isAnswer(v: unknown): v is VoteAnswer {
  if (typeof v !== 'object' || v === null) return false;
  const a = v as Record<string, unknown>;
  return (a.verdict === 'approve' || a.verdict === 'warn' || a.verdict === 'veto') && typeof a.message === 'string';
}

async function withTimeout<T>(what: string, ms: number, work: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
  const ac = new AbortController();
  const onOuter = () => ac.abort(outer?.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(ac.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const late = new Error(`${what} did not answer within ${ms} ms`);
          ac.abort(late);
          reject(late);
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
  }
}

/**
 * Runs every plugin's `checkCompatible` on the set and collects the votes. Fails closed: a
 * plugin that throws, times out or answers something that is not a vote is a veto.
 * @example
 * ```ts
 * const report = await runVote([releaseCompatibilityPlugin, fileConflictPlugin], { osname: 'fedora', base, extensions, systemdVersion: 256 });
 * if (!report.accepted) console.log(report.votes.map((v) => `${v.plugin}: ${v.verdict}`));
 * ```
 */
export async function runVote(plugins: readonly Plugin[], ctx: PluginContext, opts: { force?: boolean; timeoutMs?: number } = {}): Promise<VoteReport> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  const votes: Vote[] = [];
  for (const p of plugins) {
    if (!p.checkCompatible) continue;
    const t0 = performance.now();
    let answer: VoteAnswer;
    try {
      const got: unknown = await withTimeout(`plugin ${p.name}`, timeoutMs, (signal) => p.checkCompatible!({ ...ctx, signal }), ctx.signal);
      answer = isAnswer(got)
        ? { verdict: got.verdict, message: got.message, ...(got.details === undefined ? {} : { details: got.details }) }
        : { verdict: 'veto', message: `plugin ${p.name} answered something that is not a vote (${JSON.stringify(got)?.slice(0, 200)}); counted as a veto` };
    } catch (e) {
      if (ctx.signal?.aborted) throw e;
      answer = { verdict: 'veto', message: `plugin ${p.name} failed: ${(e as Error)?.message ?? String(e)}; counted as a veto` };
    }
    votes.push({ plugin: p.name, ...answer, durationMs: Math.round(performance.now() - t0) });
  }
  const verdict = votes.reduce<Verdict>((w, v) => (RANK[v.verdict] > RANK[w] ? v.verdict : w), 'approve');
  const force = opts.force ?? false;
  return { verdict, votes, accepted: verdict === 'approve' || (verdict === 'warn' && force), forced: force };
}

/**
 * Runs every plugin's `deployFinish`; the first failure rejects (the set is then not
 * committed). After each plugin the state directory is made canonical, or refused with
 * `STATE_REFUSED` (see {@link canonicalizeState}).
 * @example
 * ```ts
 * await runDeployFinish(plugins, { osname: 'fedora', base, extensions, systemdVersion: 256, merged, stateDir: '/tmp/state' });
 * ```
 */
export async function runDeployFinish(plugins: readonly Plugin[], ctx: DeployContext, opts: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  for (const p of plugins) {
    if (!p.deployFinish) continue;
    try {
      await withTimeout(`plugin ${p.name}`, timeoutMs, (signal) => p.deployFinish!({ ...ctx, signal }), ctx.signal);
    } catch (e) {
      throw new Error(`plugin ${p.name} failed to generate state: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    // After each plugin, so the refusal names the one that left the file.
    await canonicalizeState(ctx.stateDir, p.name);
  }
}

// ---- built-in plugins ----

/** Built-in: vetoes the set if any extension is incompatible with the base (systemd's rules). */
export const releaseCompatibilityPlugin: Plugin = {
  name: 'release-compatibility',
  async checkCompatible(ctx) {
    const bad = ctx.extensions
      .map((e) => ({
        e,
        r: checkCompatibility(e.release, ctx.base.osRelease, {
          kind: e.kind,
          name: e.name,
          systemdVersion: ctx.systemdVersion,
          ...(ctx.systemd ? { systemd: ctx.systemd } : {}),
        }),
      }))
      .filter(({ r }) => !r.compatible);
    if (bad.length === 0) return { verdict: 'approve', message: `all ${ctx.extensions.length} extensions fit ${ctx.base.osRelease.ID ?? 'the base'}` };
    return {
      verdict: 'veto',
      message: bad.map(({ e, r }) => `${e.name}: ${r.reason.message}`).join('; '),
      details: bad.map(({ e, r }) => ({ name: e.name, reason: r.reason })),
    };
  },
};

// ---- executable and module plugins ----

/**
 * Loads the plugins in `dir`: `*.js` / `*.mjs` modules whose default export (or `plugin`
 * export) is a {@link Plugin}, run in worker threads as {@link modulePlugin}s, and executable
 * files as {@link executablePlugin}s. Sorted by file name. A module that fails to load
 * becomes a plugin that vetoes (fail closed).
 * @example
 * ```ts
 * const plugins = await loadPluginDirectory('/usr/lib/ostree-sysext/plugins');
 * const report = await runVote(plugins, ctx);
 * ```
 */
export async function loadPluginDirectory(dir: string): Promise<Plugin[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const plugins: Plugin[] = [];
  for (const file of names) {
    const path = join(dir, file);
    const st = await stat(path);
    if (!st.isFile()) continue;
    if (/\.(m?js)$/.test(file)) {
      try {
        plugins.push(await modulePlugin(path));
      } catch (e) {
        const message = `plugin module ${path} cannot be loaded: ${(e as Error).message}; counted as a veto`;
        plugins.push({ name: file, checkCompatible: async () => ({ verdict: 'veto', message }) });
      }
      continue;
    }
    try {
      await access(path, constants.X_OK);
      plugins.push(executablePlugin(path, file));
    } catch {
      // Not executable: documentation or data next to the plugins.
    }
  }
  return plugins;
}
