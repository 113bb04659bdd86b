/**
 * Loads the native addon once and explains, in words a person can act on, why it failed.
 * @module
 * @internal
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeModule } from './native-contract.js';
import { OstreeError } from './errors.js';

const require = createRequire(import.meta.url);

/** The package root: the nearest directory above this file holding our package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'ostree-sysext') return dir;
      } catch {
        // keep walking up: an unreadable package.json is not ours
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('ostree-sysext: cannot find the package root');
    dir = up;
  }
}

function explain(err: Error): string {
  const m = err.message;
  const tips: string[] = [];
  if (/Could not locate the bindings file/.test(m)) {
    tips.push('the native addon was never built: run `npm rebuild ostree-sysext` (or `npm install` in a clone)');
    tips.push(
      'npm 11 skips the build when install scripts are denied or ignored: `npm install-scripts approve ostree-sysext` (after removing a `false` entry for it from allowScripts in package.json), then `npm rebuild ostree-sysext`',
    );
    tips.push(
      'building needs pkg-config, a C++ compiler and libostree >= 2022.7 headers: Debian `apt-get install libostree-dev`, Fedora `dnf install ostree-devel`',
    );
  } else if (/libostree-1\.so|cannot open shared object file/.test(m)) {
    tips.push('the libostree shared library is missing: Debian `apt-get install libostree-1-1`, Fedora `dnf install ostree-libs`');
  } else if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(m)) {
    tips.push('the addon was built for another Node.js version: run `npm rebuild ostree-sysext`');
  } else if (/undefined symbol/.test(m)) {
    tips.push('the installed libostree is older than the one the addon was built against: rebuild with `npm rebuild ostree-sysext`');
  } else {
    tips.push('rebuild the addon with `npm rebuild ostree-sysext` and check the build output');
  }
  return `ostree-sysext: cannot load the native libostree addon (${m.split('\n')[0]}).\nPossible solutions:\n${tips.map((t) => `  - ${t}`).join('\n')}`;
}

let loaded: NativeModule | undefined;

/** The native module; throws an {@link OstreeError} `ADDON_LOAD_FAILED` with advice. */
export function native(): NativeModule {
  if (loaded) return loaded;
  let mod: NativeModule;
  try {
    const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => NativeModule;
    mod = bindings({ bindings: 'ostree_sysext', module_root: packageRoot() });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    throw new OstreeError(explain(err), { domain: 'ostree-sysext', gerrorCode: 0, code: 'ADDON_LOAD_FAILED', cause: err });
  }
  mod.setErrorConstructor(OstreeError);
  loaded = mod;
  return mod;
}
