// Every command of the CLI, in the order \`ostree-sysext --help\` lists them; each group's file
// holds its commands.
import type { Command } from './common.js';
import { EXTENSION_COMMANDS } from './extensions.js';
import { MERGE_COMMANDS } from './merge.js';
import { REMOTE_COMMANDS } from './remotes.js';
import { SET_COMMANDS } from './sets.js';
import { VERIFY_COMMANDS } from './verify.js';

export type { Command, OptionSpec, Values } from './common.js';

const ORDER = [
  'list',
  'status',
  'add',
  'remove',
  'deploy',
  'undeploy',
  'rollback',
  'upgrade',
  'build',
  'check',
  'merge',
  'verify',
  'remote add',
  'remote list',
  'remote delete',
  'boot',
];
const ALL = [...EXTENSION_COMMANDS, ...SET_COMMANDS, ...MERGE_COMMANDS, ...VERIFY_COMMANDS, ...REMOTE_COMMANDS];

export const COMMANDS: Command[] = ORDER.map((name) => ALL.find((c) => c.name === name)!);
