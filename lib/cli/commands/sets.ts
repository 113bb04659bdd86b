// The CLI's commands on the deployment set on the host: deploy, undeploy, rollback, upgrade, boot. They parse, call the library and print.
import type { HostUpgradeResult } from '../../host/host.js';
import { SERVICE_ENVIRONMENT_FILE } from '../../sets/sysext.js';
import { EXIT } from '../output.js';
import { setByPrefix } from '../set-lookup.js';
import type { ApplyResult } from '../../sets/activate.js';
import type { HostCallOptions, SetChange } from '../../host/host.js';
import type { SetRecord } from '../../sets/deployment-set.js';
import type { Plugin, VoteReport } from '../../sets/plugin.js';
import type { Context } from '../context.js';
import {
  type Command,
  type OptionSpec,
  type Values,
  short,
  pluginOption,
  moduleOption,
  loadPlugins,
  loadBuilders,
  remoteWithProgress,
  printVotes,
} from './common.js';

/** `--refresh` / `--no-refresh` of the commands that apply a set. */
const refreshOptions: Record<string, OptionSpec> = {
  refresh: { type: 'boolean', description: 'run `systemd-sysext refresh` (and `systemd-confext refresh`, systemd 254+) afterwards (default when --root is /)' },
  'no-refresh': { type: 'boolean', description: 'do not run `systemd-sysext refresh` / `systemd-confext refresh`' },
};

/** Whether to refresh systemd-sysext: as asked, else `dflt` (when `--root` is `/`). */
function wantRefresh(ctx: Context, v: Values, dflt = ctx.root === '/'): boolean {
  if (v['no-refresh']) return false;
  if (v.refresh) return true;
  return dflt;
}

/** Host options of deploy and undeploy: warnings accepted with --force before pass again. */
function memberChange(ctx: Context, v: Values, plugins: Plugin[]): HostCallOptions {
  return { force: ctx.opts.force, keepAcceptedWarnings: true, wait: ctx.opts.wait, refresh: wantRefresh(ctx, v), plugins, signal: ctx.signal };
}

/** An apply result as `--json` prints it. */
function applyJson(a: ApplyResult): Record<string, unknown> {
  return {
    set: a.set.commit,
    checkout: a.checkout,
    binding: a.binding,
    excluded: a.excluded,
    ...(a.merged ? { merged: a.merged } : {}),
    ...(a.mergedConfexts ? { mergedConfexts: a.mergedConfexts } : {}),
  };
}

/** Prints a set change of the host API (refusals with their votes) and returns its `--json` part. */
async function changeSet(ctx: Context, run: () => Promise<SetChange>): Promise<{ set: SetRecord; votes: VoteReport | null; applied: Record<string, unknown> }> {
  const change = await run().catch((e: unknown) => {
    const r = (e as { report?: VoteReport }).report;
    if (r) {
      ctx.out.info('plugins refused the set:');
      printVotes(ctx, r);
    }
    throw e;
  });
  const { set: record, votes: report, applied } = change;
  for (const w of change.acceptedBefore) ctx.out.info(`accepted with --force before, still accepted: ${w.plugin}: ${w.message}`);
  ctx.out.info(
    `set ${short(record.commit)} for ${record.osname}: ${record.order.join(', ') || '(empty)'}${change.committed ? '' : change.completed ? ' (already committed; now applied)' : ' (unchanged)'}`,
  );
  if (report) printVotes(ctx, report);
  ctx.out.info(`applied: ${ctx.root}/run/extensions -> ${applied.checkout}/staged${applied.merged ? ` (merged: ${applied.merged.join(', ') || 'none'})` : ''}`);
  return { set: record, votes: report, applied: applyJson(applied) };
}

export const SET_COMMANDS: Command[] = [
  {
    name: 'deploy',
    summary: 'add extensions to the active set (plugins vote), then apply it',
    synopsis: 'NAME...',
    description:
      "Adds installed extensions to the OS deployment's current set (at their installed commits), lets the plugins vote (built-in release compatibility and file conflicts, the base's plugins, and --plugin), commits the set, and applies it: run/extensions points to it atomically. A veto is final; warnings pass with --force.",
    options: { ...refreshOptions, ...pluginOption },
    examples: ['ostree-sysext deploy tools', 'ostree-sysext deploy --force tools debug-tools', 'ostree-sysext --sysroot /mnt/sysroot deploy tools --json'],
    args: [1, Infinity],
    async run(ctx, v, names) {
      const host = await ctx.host();
      const plugins = await loadPlugins(v);
      return changeSet(ctx, () => host.deploy(names, memberChange(ctx, v, plugins)));
    },
  },
  {
    name: 'undeploy',
    summary: 'remove extensions from the active set, then apply it',
    synopsis: 'NAME...',
    description: 'Removes extensions from the current set (they stay installed), lets the plugins vote on what is left, commits and applies it.',
    options: { ...refreshOptions, ...pluginOption },
    examples: ['ostree-sysext undeploy tools'],
    args: [1, Infinity],
    async run(ctx, v, names) {
      const host = await ctx.host();
      const plugins = await loadPlugins(v);
      return changeSet(ctx, () => host.undeploy(names, memberChange(ctx, v, plugins)));
    },
  },
  {
    name: 'rollback',
    summary: 'make the previous set (or SET) current again and apply it',
    synopsis: '[SET]',
    description:
      'Re-commits an earlier set of the OS (default: the previous one) on top of the history, so a rollback can itself be rolled back, and applies it.',
    options: { ...refreshOptions },
    examples: ['ostree-sysext rollback', 'ostree-sysext rollback fbe953dab273     # a set id as `status` prints it (any unique prefix)'],
    args: [0, 1],
    async run(ctx, v, [to]) {
      const host = await ctx.host();
      const id = to === undefined ? undefined : await setByPrefix(await ctx.repo(), await ctx.osname(), to);
      const { set, applied, committed } = await host.rollback(id, { wait: ctx.opts.wait, refresh: wantRefresh(ctx, v), signal: ctx.signal });
      ctx.out.info(
        `${committed ? 'rolled back' : 'already rolled back'} the set of ${set.osname}: ${set.order.join(', ') || '(empty)'} (set commit ${short(set.commit)})`,
      );
      ctx.out.info(`applied: ${ctx.root}/run/extensions -> ${applied.checkout}/staged`);
      return { set, applied: applyJson(applied) };
    },
  },
  {
    name: 'upgrade',
    summary: 'update extensions from their origin, then refresh the set',
    synopsis: '[NAME...]',
    description:
      "Asks each extension's builder (directory, archive, remote, or one loaded with --module) for an update and installs it: `available` always, `warn` only with --force, `veto` never. When updated extensions are in the OS's current set, a new set with them is voted on, committed and applied (unless --no-apply). Exit 3 when an update was vetoed, 1 when one failed.",
    options: {
      ...moduleOption,
      ...refreshOptions,
      ...pluginOption,
      'no-apply': { type: 'boolean', description: 'only update the extensions; leave the set as it is' },
      'allow-downgrade': {
        type: 'boolean',
        description: 'accept an origin that now offers older content than what is installed (refused by default: a mirror replaying an old commit)',
      },
    },
    examples: [
      'ostree-sysext upgrade',
      'ostree-sysext upgrade tools --no-apply',
      'ostree-sysext upgrade --module ./my-builder.mjs',
      'ostree-sysext upgrade tools --allow-downgrade',
    ],
    args: [0, Infinity],
    async run(ctx, v, names) {
      const store = await ctx.store();
      store.registerBuilder(remoteWithProgress(ctx));
      await loadBuilders(ctx, v);
      // On a sysroot the host upgrades and moves the set in one convergent step; else only the store.
      const host = !v['no-apply'] && (await ctx.maybeSysroot()) ? await ctx.host() : null;
      const upgrading = host
        ? host.upgrade({
            force: ctx.opts.force,
            wait: ctx.opts.wait,
            refresh: wantRefresh(ctx, v),
            plugins: await loadPlugins(v),
            signal: ctx.signal,
            ...(v['allow-downgrade'] ? { allowDowngrade: true } : {}),
            ...(names.length ? { names } : {}),
          })
        : store
            .upgrade({
              force: ctx.opts.force,
              signal: ctx.signal,
              ...(v['allow-downgrade'] ? { allowDowngrade: true } : {}),
              ...(names.length ? { names } : {}),
            })
            .then((outcomes) => ({ outcomes, change: null }));
      const { outcomes, change, setError } = (await upgrading) as HostUpgradeResult;
      for (const o of outcomes) {
        ctx.out.info(
          `${o.name}: ${o.result}${o.result === 'updated' ? ` ${short(o.from)} -> ${short(o.to)}` : ''} (${o.check.status}: ${o.error ? o.error.message.split('\n')[0] : o.check.message})`,
        );
      }
      if (outcomes.some((o) => o.result === 'failed')) ctx.exitCode = EXIT.FAILURE;
      else if (outcomes.some((o) => o.result === 'vetoed')) ctx.exitCode = EXIT.REFUSED;
      const result: Record<string, unknown> = {
        outcomes: outcomes.map((o) => ({
          name: o.name,
          result: o.result,
          check: o.check,
          from: o.from,
          to: o.to,
          ...(o.error ? { error: o.error.message } : {}),
        })),
      };
      // Outcomes first, then the set change (or its refusal, which is the exit code).
      if (setError || change) Object.assign(result, await changeSet(ctx, () => (change ? Promise.resolve(change) : Promise.reject(setError))));
      return result;
    },
  },
];

export const BOOT_COMMANDS: Command[] = [
  {
    name: 'boot',
    summary: 're-apply the set bound to the booted deployment (run by ostree-sysext.service)',
    synopsis: '',
    description:
      'Points run/extensions at the set bound to the booted deployment; after an OS upgrade (no set bound yet) the current set is re-checked against the new OS and incompatible extensions are left out. Run early at boot by systemd/ostree-sysext.service, before systemd-sysext.service merges; writes run/ostree-sysext/systemd-sysext.env for that service (SYSTEMD_SYSEXT_HIERARCHIES=/usr when the deployment has no /opt, which systemd 257 and later could not mount). Waits for the sysroot lock. With nothing ever deployed it does nothing and exits 0.',
    options: { ...refreshOptions },
    examples: ['ostree-sysext boot', 'systemctl enable ostree-sysext.service'],
    args: [0, 0],
    async run(ctx, v) {
      const host = await ctx.host();
      const { deployment } = host;
      const { applied, environment } = await host.boot({ refresh: wantRefresh(ctx, v, false), signal: ctx.signal });
      if (applied === null) {
        ctx.out.info(`no set for ${await ctx.osname()}: nothing to apply`);
        return { applied: null };
      }
      ctx.out.info(
        `applied set ${short(applied.set.commit)} (${applied.set.order.join(', ') || 'empty'}) for ${short(deployment.checksum)}.${deployment.serial}`,
      );
      for (const x of applied.excluded) ctx.out.warn(`left out ${x.name}: ${x.reason}`);
      for (const [k, val] of Object.entries(environment ?? {})) ctx.out.info(`systemd-sysext.service: ${k}=${val} (${SERVICE_ENVIRONMENT_FILE})`);
      return { applied: applyJson(applied), environment };
    },
  },
];
