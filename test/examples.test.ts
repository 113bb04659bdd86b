// Every example in examples/ runs as a user would run it (`node examples/<x>/index.mjs`, against
// dist/ through the package's own name), and what it prints is checked.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeAsRoot } from './helpers/root.js';

const ROOT = resolve(import.meta.dirname, '..');

function example(name: string): string {
  const r = spawnSync(process.execPath, [resolve(ROOT, 'examples', name, 'index.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, `${name}: ${r.stderr}`).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout;
}

describe('examples', () => {
  it('covers every example directory', () => {
    const dirs = readdirSync(resolve(ROOT, 'examples'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(dirs).toEqual(['builder-custom', 'image-build', 'plugin-executable', 'plugin-module', 'updater']);
  });

  it('image-build bakes the compatible extensions into an image commit', () => {
    const out = example('image-build');
    expect(out).toContain('debug-tools: compatible (MATCH)\n');
    expect(out).toContain('legacy: incompatible (VERSION_ID_MISMATCH)\n');
    expect(out).toContain('site-config: compatible (MATCH)\n');
    expect(out).toMatch(/^image commit [0-9a-f]{64} on vendoros\/x86_64\/image$/m);
    expect(out).toContain('layers: debug-tools, site-config\n');
    expect(out).toContain('/usr/bin/strace: fake strace\n');
    expect(out).toContain('/usr/etc/vendor.conf: mode=site\n');
    expect(out).toContain('legacy in image: false\n');
    expect(out).toContain('version: 42.1\n');
  });

  it('plugin-module vetoes a package-database conflict, even with force', () => {
    const out = example('plugin-module');
    expect(out).toContain('set web+db: approve\n');
    expect(out).toContain('  package-db: approve: 4 packages, no conflict\n');
    expect(out).toContain('set web+legacy-tls: veto (even with force)\n');
    expect(out).toContain('  package-db: veto: package database conflict: openssl (base 3.0.11 vs legacy-tls 1.1.1w vs web 3.0.11)\n');
    expect(out).toContain('current set: db, web\n');
  });

  it('plugin-executable (Python) votes and generates a state file', () => {
    const out = example('plugin-executable');
    expect(out).toContain('vote: 2 extension(s) for pyos\n');
    expect(out).toContain('state/manifest.json: compilers@12.2, editor@9.0 on pyos 7\n');
    expect(out).toContain('4 extensions: warn, accepted: false\n');
    expect(out).toContain('with force: 4 extensions in state/manifest.json\n');
  });

  it('builder-custom builds, upgrades, and honours a veto', () => {
    const out = example('builder-custom');
    expect(out.split('\n')).toEqual([
      'built greeter 1.0 (origin: recipe)',
      'upgrade greeter: skipped (none: recipe still at 1.0)',
      'upgrade greeter: updated (available: recipe moved from 1.0 to 1.1)',
      'upgrade greeter: vetoed (veto: version 1.2 was withdrawn: breaks the greeting)',
      'installed: 1.1, hello 1.1',
      'history: greeter 1.1 from recipe <- greeter 1.0 from recipe',
      '',
    ]);
  });
});

describeAsRoot('examples needing root', () => {
  it('updater pulls with progress, aborts, upgrades, applies and rolls back', () => {
    const out = example('updater');
    expect(out).toContain('vendor remote: nginx\n');
    expect(out).toMatch(/^pull big: \d+\/\d+ objects, \d+ bytes -> abort$/m);
    expect(out).toContain('pull big: aborted (AbortError); installed: nothing\n');
    expect(out).toMatch(/^installed vendor-tools 1\.0: (\d+)\/\1 objects, \d+ bytes \(done\)$/m);
    expect(out).toMatch(/^applied set [0-9a-f]{12}: vendor-tools 1\.0$/m);
    expect(out).toMatch(/^upgrade vendor-tools: updated \(vendor:extensions\/vendor-tools moved to [0-9a-f]{12}\)$/m);
    expect(out).toMatch(/^applied set [0-9a-f]{12}: vendor-tools 1\.1$/m);
    expect(out).toMatch(/^rolled back to set [0-9a-f]{12}: vendor-tools 1\.0$/m);
    expect(out).toMatch(/^set history: Roll back to [0-9a-f]{12} <- vendor-tools 1\.1 <- Set for hostos: vendor-tools$/m);
  });
});
