// Types for the `require` condition (lib/require.cjs): require() returns the ES module's namespace.
// Type names are reachable from CommonJS as
// `import type { Repo } from 'ostree-sysext' with { 'resolution-mode': 'import' }`.
declare const sysext: typeof import('../dist/lib/index.js', { with: { 'resolution-mode': 'import' } });
export = sysext;
