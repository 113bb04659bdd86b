// Where libostree gives only G_IO_ERROR_FAILED, OstreeError.code comes from the message
// (FAILED_MESSAGES in lib/binding/errors.ts). Each row names where its wording comes from (every
// version's wording); here every text must map to its row's code through its own row (no row is
// shadowed by another), and for each library a row names, the library this process loaded must
// print at least one of them — so a libostree, curl or glibc that rewords them fails this test,
// in every Debian suite the versions script runs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { codeFromGError, FAILED_MESSAGES, type MessageSource } from '../../lib/binding/errors.js';
import { native } from '../../lib/binding/native.js';

native(); // loads the addon, and with it libostree and what it links
const mapped = readFileSync('/proc/self/maps', 'utf8')
  .split('\n')
  .map((l) => l.split(/\s+/)[5] ?? '')
  .filter((p) => p.startsWith('/'));
const LIBS: Record<Exclude<MessageSource['in'], 'binding'>, RegExp> = {
  libostree: /\/libostree-1\.so/,
  libcurl: /\/libcurl(-gnutls)?\.so/,
  libc: /\/libc\.so\.6$/,
  libgio: /\/libgio-2\.0\.so/,
  libarchive: /\/libarchive\.so/,
  libz: /\/libz\.so/,
};
const files = new Map<string, Buffer>();
function library(name: MessageSource['in']): Buffer {
  if (name === 'binding') {
    const dir = join(import.meta.dirname, '../../native');
    return Buffer.from(['objects.cc', 'repo.cc'].map((f) => readFileSync(join(dir, f), 'utf8')).join('\n'));
  }
  const path = mapped.find((p) => LIBS[name].test(p));
  if (path === undefined) throw new Error(`${name} is not loaded in this process (looked for ${LIBS[name]})`);
  if (!files.has(path)) files.set(path, readFileSync(path));
  return files.get(path)!;
}

/** The message a format prints with `args` (or `x`) for its directives. */
function fill(s: MessageSource): string {
  let i = 0;
  return s.text.replace(/%%|%[-0-9.]*(?:l{0,2}|z|j)[sdiuxc]/g, (d) => (d === '%%' ? '%' : (s.args?.[i++] ?? 'x')));
}

const rows = FAILED_MESSAGES.flatMap((row, r) => row.from.map((source) => ({ r, row, source })));

test('the table has a source for every row', () => {
  for (const row of FAILED_MESSAGES) expect(row.from.length, String(row.pattern)).toBeGreaterThan(0);
  expect(rows.length).toBeGreaterThanOrEqual(FAILED_MESSAGES.length);
});

test.each(rows.map((x) => [`${x.row.code}: ${x.source.in} "${x.source.text}"`, x] as const))('%s maps to its row', (_, { r, row, source }) => {
  // What libostree hands on (G_IO_ERROR_FAILED, with libostree's usual prefixes) maps to the row's code, by this row.
  const message = fill(source);
  expect(
    FAILED_MESSAGES.findIndex((x) => x.pattern.test(message)),
    message,
  ).toBe(r);
  for (const text of [message, `pull from remote 'origin': ${message}`, `While pulling x: ${message}`]) {
    expect(codeFromGError('g-io-error-quark', 0, text), text).toBe(row.code);
  }
});

// Each library a row names must print at least one of the row's texts for it (as a C string:
// NUL-terminated): a library that rewords all of them leaves the row matching nothing.
const byLibrary = FAILED_MESSAGES.flatMap((row) =>
  [...new Set(row.from.map((f) => f.in))].map((lib) => ({ row, lib, texts: row.from.filter((f) => f.in === lib).map((f) => f.text) })),
);
test.each(byLibrary.map((x) => [`${x.row.code} ${String(x.row.pattern)}: ${x.lib}`, x] as const))('%s prints one of its texts', (_, { lib, texts }) => {
  const bytes = library(lib);
  const found = texts.filter((t) => bytes.includes(Buffer.from(lib === 'binding' ? t : `${t}\0`)));
  expect(found, `none of ${JSON.stringify(texts)} is in the installed ${lib}`).not.toEqual([]);
});

test('a message no row knows stays FAILED', () => {
  expect(codeFromGError('g-io-error-quark', 0, 'something libostree never said')).toBe('FAILED');
});
