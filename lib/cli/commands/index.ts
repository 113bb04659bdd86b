// Every command of the CLI, in the order `ostree-sysext --help` lists them; each group's file
// holds its commands.
import type { Command } from './common.js';
import { BUILD_COMMANDS, INSTALL_COMMANDS } from './extensions.js';
import { MERGE_COMMANDS } from './merge.js';
import { REMOTE_COMMANDS } from './remotes.js';
import { BOOT_COMMANDS, SET_COMMANDS } from './sets.js';
import { VERIFY_COMMANDS } from './verify.js';

export type { Command, OptionSpec, Values } from './common.js';

export const COMMANDS: Command[] = [
  ...INSTALL_COMMANDS,
  ...SET_COMMANDS,
  ...BUILD_COMMANDS,
  ...MERGE_COMMANDS,
  ...VERIFY_COMMANDS,
  ...REMOTE_COMMANDS,
  ...BOOT_COMMANDS,
];
