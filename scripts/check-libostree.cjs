'use strict';
// Runs before node-gyp so that a missing libostree gives one actionable message, not a gyp trace.
const { execFileSync } = require('node:child_process');

const MIN = '2022.7';
function fail(why) {
  process.stderr.write(
    `\nostree-sysext: cannot build the native addon: ${why}\n` +
      `  It needs libostree >= ${MIN} with its development headers, found through pkg-config.\n` +
      '  Possible solutions:\n' +
      '    Debian/Ubuntu: sudo apt-get install -y pkg-config libostree-dev\n' +
      '    Fedora/RHEL:   sudo dnf install -y pkgconf-pkg-config ostree-devel\n' +
      '  If libostree is installed in a non-standard prefix, add its pkgconfig directory to PKG_CONFIG_PATH.\n\n',
  );
  process.exit(1);
}

try {
  execFileSync('pkg-config', ['--version'], { stdio: 'ignore' });
} catch {
  fail('pkg-config is not installed');
}
let version;
try {
  version = execFileSync('pkg-config', ['--modversion', 'ostree-1'], { encoding: 'utf8' }).trim();
} catch {
  fail('pkg-config cannot find ostree-1 (libostree development files are missing)');
}
try {
  execFileSync('pkg-config', ['--atleast-version=' + MIN, 'ostree-1'], { stdio: 'ignore' });
} catch {
  fail(`found libostree ${version}, which is older than ${MIN}`);
}
