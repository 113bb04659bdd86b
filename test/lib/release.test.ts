import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExtensionError, MAX_RELEASE_BYTES, isExtensionError } from '../../lib/extension/errors.js';
import { formatRelease, isValidFieldName, parseRelease } from '../../lib/extension/release.js';
import { tempDir } from '../helpers/tmp.js';

const fieldsOf = (text: string | Uint8Array, version?: number): Record<string, string> => ({
  ...parseRelease(text, version === undefined ? {} : { systemdVersion: version }).fields,
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('parseRelease: lines and comments', () => {
  it('reads KEY=VALUE lines and skips comments and blank lines', () => {
    const { fields, problems } = parseRelease('# os-release\n\nID=fedora\n; old style\nVERSION_ID=40\n   \n');
    expect({ ...fields }).toEqual({ ID: 'fedora', VERSION_ID: '40' });
    expect(problems).toEqual([]);
  });

  it('treats # or ; only at the start of a line as a comment', () => {
    expect(fieldsOf('ID=debian # the OS\nNAME=a;b\n')).toEqual({ ID: 'debian # the OS', NAME: 'a;b' });
    expect(fieldsOf('   # indented comment\nID=x\n')).toEqual({ ID: 'x' });
  });

  it('lets a later assignment win and reports the duplicate with its line', () => {
    const { fields, problems } = parseRelease('ID=fedora\nNAME=x\nID=debian\n');
    expect(fields.ID).toBe('debian');
    expect(problems).toEqual([{ line: 3, code: 'DUPLICATE_KEY', message: expect.stringContaining('ID') }]);
  });

  it('reports lines without = and invalid keys with line numbers, and ignores them', () => {
    const { fields, problems } = parseRelease('ID=debian\njust text\nexport VERSION_ID=12\n1X=2\n=value\nGOOD=yes');
    expect({ ...fields }).toEqual({ ID: 'debian', GOOD: 'yes' });
    expect(problems.map((p) => [p.line, p.code])).toEqual([
      [2, 'NO_EQUALS'],
      [3, 'INVALID_KEY'],
      [4, 'INVALID_KEY'],
      [5, 'NO_EQUALS'],
    ]);
    expect(problems[3]?.message).toContain('no key');
  });

  it('reports a key without = at the end of the file', () => {
    expect(parseRelease('ID=a\nDANGLING').problems).toEqual([{ line: 2, code: 'NO_EQUALS', message: expect.stringContaining('DANGLING') }]);
  });

  it('strips whitespace around the key and before the value', () => {
    expect(fieldsOf('  ID \t=\t  debian\n')).toEqual({ ID: 'debian' });
  });

  it('keeps an empty value as the empty string', () => {
    expect(fieldsOf('A=\nB=""\nC=\'\'\nD=   \n')).toEqual({ A: '', B: '', C: '', D: '' });
  });

  it('accepts lower-case and underscore field names', () => {
    expect(fieldsOf('_x=1\nfoo_Bar9=2\n')).toEqual({ _x: '1', foo_Bar9: '2' });
  });

  it('treats CR and CRLF as line ends', () => {
    expect(fieldsOf('A=1\r\nB=2\r\n')).toEqual({ A: '1', B: '2' });
    expect(fieldsOf('A=1\rB=2\r')).toEqual({ A: '1', B: '2' });
    expect(parseRelease('A=1\r\nbad\r\n').problems[0]?.line).toBe(2);
  });

  it('keeps a UTF-8 byte-order mark as part of the first key, as systemd does', () => {
    const { fields, problems } = parseRelease('\ufeffID=debian\nVERSION_ID=12\n');
    expect({ ...fields }).toEqual({ VERSION_ID: '12' });
    expect(problems[0]?.code).toBe('INVALID_KEY');
  });

  it('returns a null-prototype object, so any valid name is a plain field', () => {
    const { fields } = parseRelease('__proto__=x\nconstructor=y\n');
    expect(Object.getPrototypeOf(fields)).toBeNull();
    expect(fields.__proto__).toBe('x');
    expect(fields.constructor).toBe('y');
    expect(Object.keys(fields)).toEqual(['__proto__', 'constructor']);
  });
});

describe('parseRelease: quoting and escapes', () => {
  it('takes single-quoted text literally, across lines', () => {
    expect(fieldsOf("A='a \\\" $b'\nB='x\ny'\n")).toEqual({ A: 'a \\" $b', B: 'x\ny' });
  });

  it('unescapes only " \\ ` $ inside double quotes and keeps other backslashes', () => {
    expect(fieldsOf('A="q\\" b\\\\ t\\` d\\$ n\\n x\\a"\n')).toEqual({ A: 'q" b\\ t` d$ n\\n x\\a' });
  });

  it('joins lines on backslash-newline inside double quotes', () => {
    expect(fieldsOf('A="one \\\ntwo"\n')).toEqual({ A: 'one two' });
  });

  it('keeps raw newlines inside double quotes', () => {
    expect(fieldsOf('A="one\ntwo"\nB=3\n')).toEqual({ A: 'one\ntwo', B: '3' });
  });

  it('unescapes any character outside quotes and joins continuation lines', () => {
    expect(fieldsOf('A=a\\ b\\"c\\\\d\nB=one\\\ntwo\n')).toEqual({ A: 'a b"c\\d', B: 'onetwo' });
  });

  it('drops trailing whitespace of unquoted values unless escaped', () => {
    expect(fieldsOf('A=x  \nB=x \\  \nC="x  "\n')).toEqual({ A: 'x', B: 'x  ', C: 'x  ' });
  });

  it('concatenates quoted and unquoted pieces, dropping whitespace between quoted ones', () => {
    expect(fieldsOf('A="de"bian\nB="de" \'bi\' "an"\nC=de "bian"\n')).toEqual({
      A: 'debian',
      B: 'debian',
      C: 'de "bian"',
    });
  });

  it('reports a quote left open at the end of the file and keeps what was read', () => {
    const { fields, problems } = parseRelease('A=1\nB="unfinished\nC=2');
    expect({ ...fields }).toEqual({ A: '1', B: 'unfinished\nC=2' });
    expect(problems).toEqual([{ line: 2, code: 'UNTERMINATED_QUOTE', message: expect.stringContaining('double') }]);
    expect(parseRelease("X='open").problems[0]?.message).toContain('single');
  });

  it('drops a lone backslash at the end of the file', () => {
    expect(fieldsOf('A=abc\\')).toEqual({ A: 'abc' });
  });

  it('counts lines of multi-line values when reporting later problems', () => {
    const { problems } = parseRelease('A="1\n2\n3"\nB=\\\nx\nbroken\n');
    expect(problems).toEqual([{ line: 6, code: 'NO_EQUALS', message: expect.any(String) }]);
  });
});

describe('parseRelease: comment continuation differs by systemd version', () => {
  const text = '# note \\\nID=debian\nVERSION_ID=12\n';

  it('before 254 a comment ending in a backslash swallows the next line', () => {
    const { fields, problems } = parseRelease(text, { systemdVersion: 252 });
    expect({ ...fields }).toEqual({ VERSION_ID: '12' });
    expect(problems).toEqual([{ line: 1, code: 'COMMENT_CONTINUATION', message: expect.stringContaining('254') }]);
  });

  it('from 254 the next line is read normally, and the ambiguity is still reported', () => {
    const { fields, problems } = parseRelease(text, { systemdVersion: 254 });
    expect({ ...fields }).toEqual({ ID: 'debian', VERSION_ID: '12' });
    expect(problems.map((p) => p.code)).toEqual(['COMMENT_CONTINUATION']);
  });

  it('defaults to the 252 reading', () => {
    expect(fieldsOf(text)).toEqual({ VERSION_ID: '12' });
  });

  it('does not swallow after a backslash followed by CRLF: the CR is eaten, the LF ends the comment', () => {
    expect(fieldsOf('# note \\\r\nID=debian\r\n', 252)).toEqual({ ID: 'debian' });
  });
});

describe('parseRelease: encoding and limits', () => {
  it('marks the file unloadable when a value is not UTF-8, as systemd refuses it', () => {
    const bytes = Buffer.concat([Buffer.from('ID=debian\nNAME='), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    const parsed = parseRelease(bytes);
    expect(parsed.loadable).toBe(false);
    expect(parsed.problems).toEqual([{ line: 2, code: 'INVALID_UTF8', message: expect.stringContaining('NAME') }]);
    expect(parsed.fields.ID).toBe('debian');
  });

  it('treats Unicode non-characters as invalid, like systemd', () => {
    expect(parseRelease('A=\ufffe\n').loadable).toBe(false);
    expect(parseRelease('A=\ufdd0\n').loadable).toBe(false);
    expect(parseRelease('A=\u{1fffe}\n').loadable).toBe(false);
    expect(parseRelease('A=\ufffd é € 😀\n').loadable).toBe(true);
  });

  it('ignores invalid UTF-8 inside comments', () => {
    const parsed = parseRelease(Buffer.concat([Buffer.from('# '), Buffer.from([0xff]), Buffer.from('\nID=x\n')]));
    expect(parsed.loadable).toBe(true);
    expect(parsed.problems).toEqual([]);
  });

  it('accepts Uint8Array input and decodes UTF-8', () => {
    expect(fieldsOf(new TextEncoder().encode('NAME="Débian 😀"\n'))).toEqual({ NAME: 'Débian 😀' });
  });

  it(`accepts exactly ${MAX_RELEASE_BYTES} bytes and refuses one more`, () => {
    const line = 'A=' + 'x'.repeat(MAX_RELEASE_BYTES - 3) + '\n';
    expect(Buffer.byteLength(line)).toBe(MAX_RELEASE_BYTES);
    expect(parseRelease(line).fields.A?.length).toBe(MAX_RELEASE_BYTES - 3);
    const err = thrown(() => parseRelease(line + 'B', { path: '/x/os-release' }));
    expect(isExtensionError(err, 'RELEASE_TOO_LARGE')).toBe(true);
    expect((err as ExtensionError).path).toBe('/x/os-release');
  });

  it('measures strings in UTF-8 bytes', () => {
    const text = 'A=' + '€'.repeat(22_000); // 66 002 bytes, 22 002 UTF-16 units
    expect(
      isExtensionError(
        thrown(() => parseRelease(text)),
        'RELEASE_TOO_LARGE',
      ),
    ).toBe(true);
  });

  it('refuses NUL bytes with a typed error', () => {
    const err = thrown(() => parseRelease('ID=a\0b\n'));
    expect(err).toBeInstanceOf(ExtensionError);
    expect((err as ExtensionError).code).toBe('RELEASE_NUL');
    expect(
      isExtensionError(
        thrown(() => parseRelease(Uint8Array.from([0x41, 0x3d, 0x00]))),
        'RELEASE_NUL',
      ),
    ).toBe(true);
  });

  it('throws RELEASE_INVALID with every problem in strict mode', () => {
    const err = thrown(() => parseRelease('ID=a\nbad\n1=2\n', { strict: true, path: 'ext.release' }));
    expect(isExtensionError(err, 'RELEASE_INVALID')).toBe(true);
    const e = err as ExtensionError;
    expect(e.problems?.map((p) => [p.line, p.code])).toEqual([
      [2, 'NO_EQUALS'],
      [3, 'INVALID_KEY'],
    ]);
    expect(e.message).toContain('ext.release');
    expect(parseRelease('ID=a\n', { strict: true }).fields.ID).toBe('a');
  });
});

describe('formatRelease', () => {
  it('writes plain values bare and quotes the rest', () => {
    expect(formatRelease({ ID: 'fedora', VERSION_ID: '40', NAME: 'Fedora Linux', EMPTY: '' })).toBe(
      'ID=fedora\nVERSION_ID=40\nNAME="Fedora Linux"\nEMPTY=""\n',
    );
  });

  it('escapes exactly the characters double quotes need', () => {
    expect(formatRelease({ A: 'say "hi" \\ `x` $HOME' })).toBe('A="say \\"hi\\" \\\\ \\`x\\` \\$HOME"\n');
  });

  it('round-trips awkward values', () => {
    const fields = {
      NL: 'line1\nline2\n',
      CR: 'a\rb',
      TRAIL: 'x  ',
      LEAD: '  x',
      HASH: '#not a comment',
      SEMI: ';',
      QUOTES: `'"'`,
      BACKSLASH_NL: 'a\\\nb',
      UNI: 'Débian 😀',
      EQ: 'a=b',
    };
    const parsed = parseRelease(formatRelease(fields));
    expect({ ...parsed.fields }).toEqual(fields);
    expect(parsed.problems).toEqual([]);
  });

  it('writes a file that /bin/sh sources to the same values', () => {
    const dir = tempDir();
    const fields = { A: 'plain', B: 'two words', C: 'q"uote\\ `b` $x', D: "it's", E: 'multi\nline', F: '' };
    const file = join(dir, 'os-release');
    writeFileSync(file, formatRelease(fields));
    for (const [key, value] of Object.entries(fields)) {
      const out = execFileSync('sh', ['-c', `. "$1"; eval "printf %s \\"\\$$2\\""`, 'sh', file, key], { encoding: 'utf8' });
      expect(out, key).toBe(value);
    }
  });

  it('refuses names and values that cannot round-trip', () => {
    for (const bad of [{ '1A': 'x' }, { 'A B': 'x' }, { '': 'x' }, { 'A-B': 'x' }] as Record<string, string>[]) {
      expect(
        isExtensionError(
          thrown(() => formatRelease(bad)),
          'INVALID_FIELD',
        ),
      ).toBe(true);
    }
    for (const value of ['a\0b', 'lone \ud800 surrogate', 'x\udc00', 'non\ufffecharacter']) {
      expect(
        isExtensionError(
          thrown(() => formatRelease({ A: value })),
          'INVALID_FIELD',
        ),
        value,
      ).toBe(true);
    }
    expect(
      isExtensionError(
        thrown(() => formatRelease({ A: 42 as unknown as string })),
        'INVALID_FIELD',
      ),
    ).toBe(true);
  });

  it('refuses to write more than the parser accepts', () => {
    expect(
      isExtensionError(
        thrown(() => formatRelease({ A: 'x'.repeat(MAX_RELEASE_BYTES) })),
        'RELEASE_TOO_LARGE',
      ),
    ).toBe(true);
  });

  it('keeps the key order of the input', () => {
    expect(formatRelease({ Z: '1', A: '2' })).toBe('Z=1\nA=2\n');
  });
});

describe('isValidFieldName', () => {
  it('accepts shell variable names only', () => {
    expect(['ID', 'SYSEXT_LEVEL', '_', 'a1'].every(isValidFieldName)).toBe(true);
    expect(['', '1A', 'A-B', 'A B', 'É', 'A='].some(isValidFieldName)).toBe(false);
  });
});
