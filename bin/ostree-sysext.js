#!/usr/bin/env node
// The ostree-sysext command (also `ostree sysext …`): a shim over the compiled CLI in dist/.
import { main } from '../dist/lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
