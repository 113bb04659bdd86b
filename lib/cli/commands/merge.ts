// The CLI's commands on the offline merge. They parse, call the library and print.
import { resolve } from 'node:path';
import { DeploymentSet } from '../../sets/deployment-set.js';
import { mergeOffline } from '../../sets/merge.js';
import { usage } from '../output.js';

/** Parsed option values of one command. */
import { Command, str } from './common.js';

export const MERGE_COMMANDS: Command[] = [
  {
    name: 'merge',
    summary: 'merge extensions onto a base offline, into a directory or a commit',
    synopsis: '[NAME...] (--directory DIR | --ref REF)',
    description:
      "Builds the tree systemd-sysext's overlay would show, without mounts or root: the base (--base, default the OS deployment's commit) with the extensions (default: the current set's) in systemd's order, into a new directory or committed on REF.",
    options: {
      base: { type: 'string', arg: 'DIR|REV', description: 'the base: an OS tree directory or a commit/ref' },
      directory: { type: 'string', arg: 'DIR', description: 'write the merged tree here (must not exist)' },
      ref: { type: 'string', arg: 'REF', description: 'commit the merged tree on this ref' },
      subject: { type: 'string', arg: 'TEXT', description: 'commit subject (with --ref)' },
      'confext-target': { type: 'string', arg: 'etc|usr/etc', description: 'where confext content goes (default etc)' },
    },
    examples: [
      'ostree-sysext merge --directory /tmp/merged',
      'ostree-sysext --repo /srv/repo merge tools --base os/x86_64/stable --ref os/x86_64/stable-with-tools',
    ],
    args: [0, Infinity],
    async run(ctx, v, names) {
      const directory = str(v, 'directory');
      const ref = str(v, 'ref');
      if ((directory === undefined) === (ref === undefined)) throw usage('give exactly one of --directory DIR and --ref REF');
      const target = str(v, 'confext-target');
      if (target !== undefined && target !== 'etc' && target !== 'usr/etc') throw usage('--confext-target is etc or usr/etc');
      const store = await ctx.store();
      const base = (await ctx.base(str(v, 'base'), { required: true, commitForDeployment: true }))!;
      let exts: Array<{ name: string; commit: string; kind: 'sysext' | 'confext' }> = [];
      if (names.length > 0) {
        for (const n of names) {
          const e = await store.get(n);
          exts.push({ name: e.name, commit: e.commit, kind: e.kind });
        }
      } else {
        const current = await DeploymentSet.current(
          store.repo,
          await ctx.osname().catch(() => {
            throw usage('no extensions given and no OS to take the current set from', 'name the extensions, or pass --os');
          }),
        );
        if (!current) throw usage('no extensions given and no set committed', 'name the extensions to merge');
        const set = DeploymentSet.fromRecord({ repo: store.repo, osname: current.osname, base, systemd: await ctx.systemd() }, current);
        exts = (await set.members()).map((m) => ({ name: m.name, commit: m.commit, kind: m.kind }));
      }
      const r = await mergeOffline({
        repo: store.repo,
        base,
        extensions: exts,
        systemd: await ctx.systemd(),
        signal: ctx.signal,
        ...(directory ? { directory: resolve(directory) } : { commit: { ref: ref!, ...(str(v, 'subject') ? { subject: str(v, 'subject')! } : {}) } }),
        ...(target ? { confextTarget: target as 'etc' | 'usr/etc' } : {}),
      });
      ctx.out.info(`merged ${r.order.join(', ') || 'no extensions'} onto ${base.id.slice(0, 12)}: ${r.directory ?? `${ref} -> ${r.commit}`}`);
      return r;
    },
  },
];
