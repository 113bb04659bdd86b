import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RELEASE_BYTES, isExtensionError } from '../../lib/extension/errors.js';
import { formatRelease, parseRelease } from '../../lib/extension/release.js';

const isNonCharacter = (cp: number): boolean => (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;

const fieldName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);

// Characters that exercise every branch of the quoting rules, mixed with arbitrary Unicode.
const tricky = fc.constantFrom('"', "'", '\\', '`', '$', '\n', '\r', '\r\n', ' ', '\t', '#', ';', '=', '~', 'a', 'Z', '0', 'é', '€', '😀');
const anyChar = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((ch) => ch !== '\0' && !isNonCharacter(ch.codePointAt(0) ?? 0));
const fieldValue = fc.oneof(
  fc.array(fc.oneof(tricky, anyChar), { maxLength: 24 }).map((parts) => parts.join('')),
  fc.stringMatching(/^[A-Za-z0-9._-]{0,12}$/),
);
const fieldMap = fc.dictionary(fieldName, fieldValue, { maxKeys: 12 });

describe('formatRelease / parseRelease round trip', () => {
  it('parses back exactly the fields that were written, with no problems', () => {
    fc.assert(
      fc.property(fieldMap, (fields) => {
        const parsed = parseRelease(formatRelease(fields));
        expect({ ...parsed.fields }).toEqual({ ...fields });
        expect(parsed.problems).toEqual([]);
        expect(parsed.loadable).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('survives comments, blank lines and CRLF line ends inserted between the lines', () => {
    const noise = fc.constantFrom('', '# comment', '; comment', '   ', '\t# indented');
    fc.assert(
      fc.property(fieldMap, fc.array(noise, { minLength: 1, maxLength: 8 }), fc.boolean(), (fields, comments, crlf) => {
        // Only single-line values: a CR inserted inside a quoted multi-line value would change it.
        const singleLine = Object.fromEntries(Object.entries(fields).filter(([, v]) => !/[\r\n]/.test(v)));
        const lines = formatRelease(singleLine)
          .split('\n')
          .filter((l) => l !== '');
        const mixed = lines.flatMap((line, i) => [comments[i % comments.length] as string, line]);
        const parsed = parseRelease(mixed.join(crlf ? '\r\n' : '\n'));
        expect({ ...parsed.fields }).toEqual(singleLine);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseRelease robustness', () => {
  it('never throws on text without NUL under the size limit, and reports lines inside the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (raw) => {
        const text = raw.replaceAll('\0', '');
        const parsed = parseRelease(text);
        const lineCount = text.split(/\r\n|\r|\n/).length;
        for (const p of parsed.problems) {
          expect(p.line).toBeGreaterThanOrEqual(1);
          expect(p.line).toBeLessThanOrEqual(lineCount);
        }
        for (const name of Object.keys(parsed.fields)) expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on text built from the syntax characters', () => {
    const syntax = fc.constantFrom('A', 'B', '=', '"', "'", '\\', '\n', '\r', ' ', '#', ';', '$', '`', 'x');
    fc.assert(
      fc.property(fc.array(syntax, { maxLength: 200 }), (chars) => {
        expect(() => parseRelease(chars.join(''))).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on arbitrary bytes without NUL, and refuses any with NUL', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        if (bytes.includes(0)) {
          let error: unknown;
          try {
            parseRelease(bytes);
          } catch (err) {
            error = err;
          }
          expect(isExtensionError(error, 'RELEASE_NUL')).toBe(true);
        } else {
          const parsed = parseRelease(bytes);
          // Unloadable exactly when some problem says so.
          expect(parsed.loadable).toBe(!parsed.problems.some((p) => p.code === 'INVALID_UTF8'));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses anything over the size limit, whatever it holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('x', '\n', '€'), (extra, ch) => {
        const text = 'A=' + ch.repeat(Math.ceil((MAX_RELEASE_BYTES + extra) / Buffer.byteLength(ch)));
        let error: unknown;
        try {
          parseRelease(text);
        } catch (err) {
          error = err;
        }
        expect(isExtensionError(error, 'RELEASE_TOO_LARGE')).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});
