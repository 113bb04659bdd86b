// The CLI's commands on signatures and the repository check. They parse, call the library and print.
import { verifyExtensions } from '../../extension/verify.js';
import { EXIT } from '../output.js';

/** Parsed option values of one command. */
import { Command, str } from './common.js';

export const VERIFY_COMMANDS: Command[] = [
  {
    name: 'verify',
    summary: 'verify extension signatures and the repository (fsck)',
    synopsis: '[NAME...]',
    description:
      "Verifies the GPG signatures of installed extensions (default: all): those pulled from a remote against that remote's keys, others against --keyring or --remote when given, else reported as unsigned local builds. Then checks every object of the repository (fsck). Exit 6 when a required signature is missing or bad, or fsck finds a problem.",
    options: {
      keyring: { type: 'string', arg: 'FILE', description: 'trusted keys (exported keyring) for extensions not pulled from a remote' },
      remote: { type: 'string', arg: 'NAME', description: "check every extension against this remote's keys" },
      'no-fsck': { type: 'boolean', description: 'skip the repository check' },
    },
    examples: ['ostree-sysext verify', 'ostree-sysext verify tools --keyring vendor.gpg', 'ostree-sysext verify --no-fsck --json'],
    args: [0, Infinity],
    async run(ctx, v, given) {
      const store = await ctx.store();
      const keyring = str(v, 'keyring');
      const remote = str(v, 'remote');
      const r = await verifyExtensions(store, given, { signal: ctx.signal, fsck: false, ...(remote ? { remote } : {}), ...(keyring ? { keyring } : {}) });
      for (const x of r.extensions) {
        const unsigned = x.pulledFrom
          ? `unsigned (pulled from remote ${x.pulledFrom}, which does not require signatures)`
          : 'unsigned (local build; nothing to verify against)';
        ctx.out.result(`${x.name}: ${x.status === 'unsigned' ? unsigned : x.message}`);
      }
      let fsck = null;
      if (!v['no-fsck']) {
        // libostree's fsck reports no progress: say what runs and for how long, not a fake bar.
        const p = ctx.out.activity('fsck', `checking every object of ${store.repo.path}`);
        try {
          fsck = await store.repo.fsck({ signal: ctx.signal });
        } finally {
          p.end();
        }
        ctx.out.result(
          `fsck: ${fsck.ok ? 'ok' : 'PROBLEMS'}: ${fsck.commitsChecked} commits, ${fsck.objectsChecked} objects, ${fsck.missing.length} missing, ${fsck.corrupt.length} corrupt`,
        );
        for (const p2 of [...fsck.missing, ...fsck.corrupt]) ctx.out.result(`  ${p2.objectType} ${p2.checksum}: ${p2.message}`);
      }
      if (!r.ok || fsck?.ok === false) ctx.exitCode = EXIT.VERIFY_FAILED;
      const extensions = r.extensions.map(({ pulledFrom: _, ...x }) => x);
      return { extensions, fsck };
    },
  },
];
