// The CLI's commands on OSTree remotes: add, list, delete. They parse, call the library and print.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { table } from '../output.js';

/** Parsed option values of one command. */
import { Command, str } from './common.js';

export const REMOTE_COMMANDS: Command[] = [
  {
    name: 'remote add',
    summary: 'add an OSTree remote (and import its GPG keys)',
    synopsis: 'NAME URL',
    description: "Adds a remote to the repository. GPG verification is on unless --no-gpg-verify; import the vendor's public keys with --gpg-import.",
    options: {
      'gpg-import': { type: 'string', arg: 'FILE', description: "import the remote's public keys from this file" },
      'no-gpg-verify': { type: 'boolean', description: 'accept unsigned commits from this remote' },
      'if-not-exists': { type: 'boolean', description: 'succeed without change when the remote exists' },
      replace: { type: 'boolean', description: "replace an existing remote's configuration" },
    },
    examples: [
      'ostree-sysext remote add vendor https://example.com/repo --gpg-import vendor.gpg',
      'ostree-sysext remote add local file:///srv/repo --no-gpg-verify',
    ],
    args: [2, 2],
    async run(ctx, v, [name, url]) {
      const repo = await ctx.repo();
      await repo.addRemote(name!, {
        url: url!,
        gpgVerify: !v['no-gpg-verify'],
        ifNotExists: Boolean(v['if-not-exists']),
        replace: Boolean(v.replace),
        signal: ctx.signal,
      });
      let imported = 0;
      if (str(v, 'gpg-import')) imported = await repo.importRemoteKeys(name!, await readFile(resolve(str(v, 'gpg-import')!)), { signal: ctx.signal });
      if (!v['no-gpg-verify'] && imported === 0 && !existsSync(resolve(repo.path, `${name}.trustedkeys.gpg`))) {
        ctx.out.warn(
          `remote ${name} verifies GPG signatures but has no key: pulls fail until you import the vendor's key (ostree-sysext remote add ${name} ${url} --gpg-import KEYFILE --replace), unless it is in /usr/share/ostree/trusted.gpg.d`,
        );
      }
      ctx.out.info(`added remote ${name} (${url})${v['no-gpg-verify'] ? ', GPG verification off' : ''}${imported ? `, ${imported} key(s) imported` : ''}`);
      return { remote: repo.getRemote(name!), keysImported: imported };
    },
  },
  {
    name: 'remote list',
    summary: 'list the OSTree remotes',
    synopsis: '',
    description: 'Lists the remotes of the repository with their URL and GPG settings.',
    options: {},
    examples: ['ostree-sysext remote list', 'ostree-sysext remote list --json'],
    args: [0, 0],
    async run(ctx) {
      const remotes = (await ctx.repo()).remotes();
      if (remotes.length === 0) ctx.out.info('no remotes');
      else
        ctx.out.result(
          table(
            ['NAME', 'URL', 'GPG'],
            remotes.map((r) => [r.name, r.url ?? '-', r.gpgVerify ? 'verify' : 'off']),
          ),
        );
      return { remotes };
    },
  },
  {
    name: 'remote delete',
    summary: 'delete an OSTree remote',
    synopsis: 'NAME',
    description: 'Deletes a remote from the repository (its pulled refs go with it).',
    options: { 'if-exists': { type: 'boolean', description: 'succeed when the remote does not exist' } },
    examples: ['ostree-sysext remote delete vendor'],
    args: [1, 1],
    async run(ctx, v, [name]) {
      await (await ctx.repo()).deleteRemote(name!, { ifExists: Boolean(v['if-exists']), signal: ctx.signal });
      ctx.out.info(`deleted remote ${name}`);
      return { deleted: name };
    },
  },
];
