// The layout ARCHITECTURE.md describes, held against the code: lib/'s folders are layers, a
// module imports only from its own layer or the ones below, and no import (type-only ones
// included) closes a cycle. Both checks read every import of every lib/ module.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { expect, test } from 'vitest';

const LIB = join(import.meta.dirname, '../../lib');
// Bottom first. lib/index.ts (the public API) and the require() shim sit on top of everything.
const LAYERS = ['binding', 'tree', 'extension', 'sets', 'host', 'cli'] as const;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|cts)$/.test(n) && !n.endsWith('.d.cts') ? [relative(LIB, p)] : [];
  });
}

/** Every module a lib/ file imports or re-exports (static, dynamic and type-only), as lib-relative .ts paths. */
export function importsOf(file: string, text = readFileSync(join(LIB, file), 'utf8')): string[] {
  // Template strings hold code that runs elsewhere (the plugin worker): not imports of this module.
  const code = text.replace(/`(?:[^`\\]|\\.)*`/gs, '``');
  const specs = [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)].map((m) => m[1]!);
  return specs.map((s) => posix.normalize(posix.join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

function layerOf(file: string): number {
  const top = file.split('/')[0]!;
  const i = (LAYERS as readonly string[]).indexOf(top);
  return i === -1 ? LAYERS.length : i; // index.ts, require.cjs: the top
}

const files = sources(LIB);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('the import reader sees static, type-only, re-export and dynamic imports, and skips template code', () => {
  const sample =
    "import { a } from './x.js';\nimport type { B } from '../y/z.js';\nexport { c } from './w.js';\nconst m = await import('./d.js');\nconst s = `import { e } from './no.js'`;\n";
  expect(importsOf('sets/f.ts', sample)).toEqual(['sets/x.ts', 'y/z.ts', 'sets/w.ts', 'sets/d.ts']);
});

test('every lib/ module lives in a layer folder (only the public entry points sit at the top)', () => {
  const loose = files.filter((f) => !f.includes('/')).sort();
  expect(loose).toEqual(['index.ts']);
  for (const f of files) if (f.includes('/')) expect(LAYERS, f).toContain(f.split('/')[0]);
});

test('no module imports from a layer above its own', () => {
  const upward: string[] = [];
  for (const [f, deps] of graph) for (const d of deps) if (layerOf(d) > layerOf(f)) upward.push(`${f} -> ${d}`);
  expect(upward).toEqual([]);
});

test('every import names a module that exists', () => {
  const missing: string[] = [];
  for (const [f, deps] of graph) for (const d of deps) if (!graph.has(d) && !d.endsWith('.cjs')) missing.push(`${f} -> ${d}`);
  expect(missing).toEqual([]);
});

test('no import cycle anywhere in lib/, type-only imports included', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  expect(cycles).toEqual([]);
});
