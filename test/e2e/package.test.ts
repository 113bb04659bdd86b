// The package as a consumer gets it: `npm pack`, then a fresh project in a temporary directory
// installs the tarball (npm builds the addon with its own node-gyp: node-gyp is no dependency),
// type-checks against the shipped declarations with tsc strict and no skipLibCheck under node16
// and bundler resolution, runs ESM `import` and CJS `require`, and arethetypeswrong checks it.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
  exports: unknown;
  dependencies: Record<string, string>;
};
const dir = tempDir('package-');
const app = join(dir, 'app');
let tarball = '';

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
}
function ok(r: SpawnSyncReturns<string>, what: string): string {
  expect(r.status, `${what}:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}
/** The consumer's own tsc, with one tsconfig: strict, skipLibCheck off (tsc's default). */
function tsc(name: string, compilerOptions: Record<string, unknown>, files: string[]): SpawnSyncReturns<string> {
  writeFileSync(
    join(app, `tsconfig.${name}.json`),
    JSON.stringify({ compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', types: ['node'], ...compilerOptions }, files }),
  );
  return run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', `tsconfig.${name}.json`], app);
}

const ESM_SOURCE = `import { Repo, parseRelease, OstreeError, type Commit, type ParsedRelease } from 'ostree-sysext';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const release: ParsedRelease = parseRelease('ID=debian\\nVERSION_ID=12\\n');
const repo: Repo = await Repo.create(join(mkdtempSync(join(tmpdir(), 'consumer-')), 'repo'), { mode: 'archive' });
// Repo's members are typed from the shipped native contract, not \`any\`:
// @ts-expect-error resolve() takes a string
await repo.resolve(42, { allowMissing: true });
const missing: string | null = await repo.resolve('nothing', { allowMissing: true });
const commits: Commit[] = [];
repo.close();
console.log(JSON.stringify({ id: release.fields.ID, missing, commits: commits.length, error: typeof OstreeError }));
`;

const ESM_RUNTIME = `import { Repo, parseRelease, OstreeError } from 'ostree-sysext';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = await Repo.create(join(mkdtempSync(join(tmpdir(), 'consumer-')), 'repo'), { mode: 'archive' });
const missing = await repo.resolve('nothing', { allowMissing: true });
repo.close();
console.log(JSON.stringify({ id: parseRelease('ID=debian\\n').fields.ID, missing, error: typeof OstreeError }));
`;

const CJS_SOURCE = `import sysext = require('ostree-sysext');
import type { ParsedRelease } from 'ostree-sysext' with { 'resolution-mode': 'import' };

const release: ParsedRelease = sysext.parseRelease('ID=debian\\n');
// @ts-expect-error parseRelease takes text
sysext.parseRelease(42);
export const id: string | undefined = release.fields.ID;
`;

const CJS_RUNTIME = `const { Repo, parseRelease } = require('ostree-sysext');
const { mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
(async () => {
  const repo = await Repo.create(join(mkdtempSync(join(tmpdir(), 'consumer-')), 'repo'), { mode: 'archive' });
  const missing = await repo.resolve('nothing', { allowMissing: true });
  repo.close();
  console.log(JSON.stringify({ id: parseRelease('ID=debian\\n').fields.ID, missing, same: require('ostree-sysext') === require('ostree-sysext') }));
})();
`;

beforeAll(() => {
  // --ignore-scripts: dist/ is built by the global setup; `prepare` would rewrite it under the
  // feet of test files running at the same time.
  const packed = ok(run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], ROOT), 'npm pack')
    .trim()
    .split('\n')
    .pop()!;
  tarball = join(dir, packed);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // typescript and @types/node at the versions this repo uses; --prefer-offline takes them from
  // npm's cache, filled by `npm ci`.
  const install = run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tarball,
      `typescript@${rootPkg.devDependencies.typescript}`,
      `@types/node@${rootPkg.devDependencies['@types/node']}`,
    ],
    app,
  );
  ok(install, 'npm install of the packed tarball');
  writeFileSync(join(app, 'esm.mts'), ESM_SOURCE);
  writeFileSync(join(app, 'cjs.cts'), CJS_SOURCE);
  writeFileSync(join(app, 'run.mjs'), ESM_RUNTIME);
  writeFileSync(join(app, 'run.cjs'), CJS_RUNTIME);
}, 600_000);

describe('the packed package in a fresh consumer project', () => {
  it('installs without node-gyp as a dependency, builds the addon, and ships LICENSE and docs/cli.md', () => {
    expect(rootPkg.dependencies).not.toHaveProperty('node-gyp');
    const pkg = join(app, 'node_modules', 'ostree-sysext');
    expect(existsSync(join(pkg, 'build', 'Release', 'ostree_sysext.node'))).toBe(true);
    expect(readFileSync(join(pkg, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} ostree-sysext contributors\n/);
    expect(existsSync(join(pkg, 'docs', 'cli.md'))).toBe(true);
    expect(existsSync(join(pkg, 'types'))).toBe(false);
    expect(readdirSync(join(app, 'node_modules')).sort()).not.toContain('node-gyp');
    const installed = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { os: string[]; license: string };
    expect(installed.os).toEqual(['linux']);
    expect(installed.license).toBe('MIT');
  });

  it('type-checks an ESM consumer under module/moduleResolution node16, strict, no skipLibCheck', () => {
    const r = tsc('node16', { module: 'node16', moduleResolution: 'node16' }, ['esm.mts']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('type-checks an ESM consumer under bundler resolution, strict, no skipLibCheck', () => {
    const r = tsc('bundler', { module: 'esnext', moduleResolution: 'bundler' }, ['esm.mts']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('type-checks a CommonJS consumer (import = require) under node16', () => {
    const r = tsc('cjs', { module: 'node16', moduleResolution: 'node16' }, ['cjs.cts']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('fails to type-check when the consumer misuses the API (the declarations are not `any`)', () => {
    writeFileSync(join(app, 'wrong.mts'), `import { Repo } from 'ostree-sysext';\nconst n: number = await Repo.create('/x');\nexport { n };\n`);
    const r = tsc('wrong', { module: 'node16', moduleResolution: 'node16' }, ['wrong.mts']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/wrong\.mts\(2,7\): error TS2322: Type 'Repo' is not assignable to type 'number'/);
  });

  it('runs with ESM import: a pure function and a repo created through the addon', () => {
    const out = JSON.parse(ok(run(process.execPath, ['run.mjs'], app), 'node run.mjs'));
    expect(out).toEqual({ id: 'debian', missing: null, error: 'function' });
  });

  it('runs with CJS require on a Node.js with require(esm)', () => {
    const r = run(process.execPath, ['run.cjs'], app);
    expect(r.stderr).not.toMatch(/Error/);
    expect(JSON.parse(ok(r, 'node run.cjs'))).toEqual({ id: 'debian', missing: null, same: true });
  });

  it('explains why require() fails on a Node.js without require(esm)', () => {
    const r = run(process.execPath, ['--no-experimental-require-module', 'run.cjs'], app);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `Error: ostree-sysext is an ES module and this Node.js (${process.version}) cannot require() ES modules (that needs Node.js >= 20.19 or >= 22.12 without --no-experimental-require-module). Use \`const sysext = await import('ostree-sysext')\`, or upgrade Node.js.`,
    );
  });

  it('runs the installed command: ostree-sysext --help', () => {
    const out = ok(run(join(app, 'node_modules', '.bin', 'ostree-sysext'), ['--help'], app), 'ostree-sysext --help');
    expect(out).toMatch(/^Usage: ostree-sysext /m);
  });

  it('arethetypeswrong finds no problem in the tarball', () => {
    const r = run(process.execPath, [join(ROOT, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), '--format', 'json', tarball], ROOT);
    const report = JSON.parse(r.stdout) as { analysis: { problems: unknown[] } };
    expect(report.analysis.problems).toEqual([]);
    expect(r.status).toBe(0);
  });
});
