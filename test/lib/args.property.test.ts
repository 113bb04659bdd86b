import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NAME_MAX, PATH_MAX, treePath } from '../../lib/binding/args.js';

// The rule treePath promises, written out plainly: split on '/', drop empty and '.' parts,
// refuse '..', a component over NAME_MAX bytes or a path of PATH_MAX bytes or more, and
// join what is left under one leading '/'. treePath takes a shortcut for paths already in
// that form; whatever the input, its answer must be this one.
function model(s: string): string | 'refused' {
  if (s.includes('\0') || Buffer.byteLength(s) >= PATH_MAX) return 'refused';
  const parts = s.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || Buffer.byteLength(p) > NAME_MAX)) return 'refused';
  return '/' + parts.join('/');
}

function answer(s: string): string | 'refused' {
  try {
    return treePath('path', s);
  } catch {
    return 'refused';
  }
}

// Components near every boundary: '.', '..', '...', empty, ASCII and 2-, 3- and 4-byte runs around
// 85 units (the shortcut's limit) and 255 bytes (NAME_MAX).
const component = fc.oneof(
  fc.constantFrom('', '.', '..', '...', '.a', 'a.', 'usr', 'lib', 'é', '😀'),
  fc.integer({ min: 80, max: 90 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 250, max: 260 }).map((n) => 'b'.repeat(n)),
  fc.integer({ min: 80, max: 130 }).map((n) => 'é'.repeat(n)),
  fc.integer({ min: 80, max: 90 }).map((n) => '€'.repeat(n)),
  fc.integer({ min: 40, max: 70 }).map((n) => '😀'.repeat(n)),
  fc.string({ maxLength: 12 }),
);
const path = fc
  .tuple(fc.boolean(), fc.array(component, { maxLength: 40 }), fc.boolean())
  .map(([lead, parts, trail]) => (lead ? '/' : '') + parts.join('/') + (trail ? '/' : ''));
// Long canonical paths around 1,365 units and PATH_MAX bytes.
const long = fc
  .integer({ min: 10, max: 60 })
  .chain((n) =>
    fc
      .array(fc.constantFrom('a'.repeat(85), 'é'.repeat(85), '€'.repeat(85), '€'.repeat(84), 'xyz', 'é'.repeat(20)), { minLength: n, maxLength: n })
      .map((p) => '/' + p.join('/')),
  );

describe('treePath', () => {
  it('answers exactly as its rule says, shortcut or not, on paths near every limit', () => {
    fc.assert(
      fc.property(fc.oneof(path, long), (s) => {
        expect(answer(s)).toBe(model(s));
      }),
      { numRuns: 20000 },
    );
  });

  it('takes canonical paths as they are and normalises the rest', () => {
    expect(treePath('p', '/usr/lib/os-release')).toBe('/usr/lib/os-release');
    expect(treePath('p', 'usr//lib/./os-release/')).toBe('/usr/lib/os-release');
    expect(treePath('p', '/')).toBe('/');
    expect(() => treePath('p', '/usr/../etc')).toThrow(/must not contain '\.\.'/);
    expect(() => treePath('p', '/' + 'é'.repeat(128))).toThrow(/NAME_MAX/);
  });
});
