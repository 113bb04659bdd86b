'use strict';
// The `require` condition of package.json's exports. ostree-sysext is an ES module: Node.js that
// can require() ES modules (>= 20.19, >= 22.12) gets the very same module instance `import`
// gets; older Node.js gets an error saying why and what to do, instead of a bare ERR_REQUIRE_ESM.
try {
  module.exports = require('../dist/lib/index.js');
} catch (err) {
  const code = err && err.code;
  if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') {
    const why =
      code === 'ERR_REQUIRE_ESM'
        ? `this Node.js (${process.version}) cannot require() ES modules (that needs Node.js >= 20.19 or >= 22.12 without --no-experimental-require-module)`
        : 'it waits for something at load time (top-level await), which require() cannot';
    const e = new Error(
      `ostree-sysext is an ES module and ${why}. Use \`const sysext = await import('ostree-sysext')\`${code === 'ERR_REQUIRE_ESM' ? ', or upgrade Node.js' : ''}.`,
      {
        cause: err,
      },
    );
    e.code = code;
    throw e;
  }
  throw err;
}
