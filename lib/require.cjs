'use strict';
// The `require` condition of package.json's exports. ostree-sysext is an ES module: Node.js that
// can require() ES modules (>= 20.19, >= 22.12) gets the very same module instance `import`
// gets; older Node.js gets an error saying why and what to do, instead of a bare ERR_REQUIRE_ESM.
try {
  module.exports = require('../dist/lib/index.js');
} catch (err) {
  if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    const e = new Error(
      `ostree-sysext is an ES module and this Node.js (${process.version}) cannot require() ES modules ` +
        '(that needs Node.js >= 20.19 or >= 22.12 without --no-experimental-require-module). ' +
        "Use `const sysext = await import('ostree-sysext')`, or upgrade Node.js.",
      { cause: err },
    );
    e.code = 'ERR_REQUIRE_ESM';
    throw e;
  }
  throw err;
}
