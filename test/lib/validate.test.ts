import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_RELEASE_BYTES, isExtensionError, type ExtensionError } from '../../lib/extension/errors.js';
import {
  assertValidExtension,
  extensionNameProblem,
  findOsRelease,
  isValidExtensionName,
  validateExtension,
  type ValidationResult,
} from '../../lib/extension/validate.js';
import { directoryReader } from '../../lib/tree/directory.js';
import { type TreeEntry, type TreeReader } from '../../lib/tree/reader.js';
import { tempDir } from '../helpers/tmp.js';

type Spec = Record<string, string | Buffer | { symlink: string } | { dir: true } | { mode: number; content: string }>;

let counter = 0;
/** Builds a real directory tree from a spec: path → content, symlink, empty dir, or file with mode. */
function tree(spec: Spec): string {
  const root = join(tempDir(), `tree-${counter++}`);
  mkdirSync(root, { recursive: true });
  for (const [path, what] of Object.entries(spec)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof what === 'string' || Buffer.isBuffer(what)) writeFileSync(full, what);
    else if ('symlink' in what) symlinkSync(what.symlink, full);
    else if ('dir' in what) mkdirSync(full, { recursive: true });
    else {
      writeFileSync(full, what.content);
      chmodSync(full, what.mode);
    }
  }
  return root;
}

const SYSEXT_RELEASE = 'usr/lib/extension-release.d/extension-release.';
const CONFEXT_RELEASE = 'etc/extension-release.d/extension-release.';

const codes = (r: ValidationResult): string[] => r.problems.map((p) => p.code);
const errors = (r: ValidationResult): string[] => r.problems.filter((p) => p.severity === 'error').map((p) => p.code);
const warnings = (r: ValidationResult): string[] => r.problems.filter((p) => p.severity === 'warning').map((p) => p.code);
const validate = (spec: Spec, opts: Parameters<typeof validateExtension>[1] = {}): Promise<ValidationResult> =>
  validateExtension(directoryReader(tree(spec)), opts);

describe('validateExtension: well-formed extensions', () => {
  it('accepts a sysext, naming it after its release file', async () => {
    const r = await validate({
      [`${SYSEXT_RELEASE}htop`]: 'ID=debian\nVERSION_ID=12\n',
      'usr/bin/htop': '#!/bin/sh\n',
      'opt/htop/README': 'x',
      'usr/share/doc/htop/link': { symlink: '../../../bin/htop' },
      'usr/lib/abs-link': { symlink: '/usr/bin/htop' },
      'opt/link-to-usr': { symlink: '/usr/share' },
    });
    expect(r).toEqual({ kind: 'sysext', name: 'htop', release: { ID: 'debian', VERSION_ID: '12' }, problems: [], ok: true });
  });

  it('accepts a confext with content under etc/', async () => {
    const r = await validate({
      [`${CONFEXT_RELEASE}conf`]: 'ID=_any\n',
      'etc/motd': 'hello\n',
      'etc/alt': { symlink: '/etc/motd' },
    });
    expect(r).toMatchObject({ kind: 'confext', name: 'conf', ok: true, problems: [] });
  });

  it('accepts the given name when the release file matches it', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}foo-1.2`]: 'ID=_any\n' }, { name: 'foo-1.2' });
    expect(r).toMatchObject({ name: 'foo-1.2', ok: true });
  });

  it('warns about content systemd ignores, but stays usable', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\n', 'var/lib/x/state': 's', 'etc/x.conf': 'c', README: 'r' });
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => [p.code, p.severity, p.path])).toEqual([
      ['IGNORED_CONTENT', 'warning', 'README'],
      ['IGNORED_CONTENT', 'warning', 'etc'],
      ['IGNORED_CONTENT', 'warning', 'var'],
    ]);
  });

  it('warns about release-file lines systemd skips', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\nnonsense\n' });
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([{ code: 'RELEASE_SYNTAX', severity: 'warning', path: `${SYSEXT_RELEASE}x`, message: expect.stringContaining('line 2') }]);
  });
});

describe('validateExtension: release files and names', () => {
  it('needs a release file', async () => {
    const r = await validate({ 'usr/bin/x': 'x' }, { name: 'x' });
    expect(errors(r)).toEqual(['RELEASE_MISSING']);
    expect(r.problems[0]?.message).toContain(`${SYSEXT_RELEASE}x`);
    expect(r.ok).toBe(false);
  });

  it('guesses confext for an etc-only tree without release file', async () => {
    const r = await validate({ 'etc/x.conf': 'x' });
    expect(r).toMatchObject({ kind: 'confext', name: '', ok: false });
    expect(errors(r)).toEqual(['RELEASE_MISSING']);
  });

  it('refuses a release file named differently from the image', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}other`]: 'ID=_any\n' }, { name: 'mine' });
    expect(errors(r)).toEqual(['NAME_MISMATCH']);
    expect(r.problems[0]?.message).toMatch(/user\.extension-release\.strict=false/);
    expect(r.name).toBe('mine');
    expect(r.release.ID).toBe('_any');
  });

  it('refuses several release files', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}a`]: 'ID=_any\n', [`${SYSEXT_RELEASE}b`]: 'ID=_any\n' });
    expect(errors(r)).toEqual(['MULTIPLE_RELEASE_FILES', 'MULTIPLE_RELEASE_FILES']);
    expect(r.name).toBe('');
    const named = await validate({ [`${SYSEXT_RELEASE}a`]: 'ID=_any\n', [`${SYSEXT_RELEASE}b`]: 'ID=_any\n' }, { name: 'a' });
    expect(named.problems.map((p) => [p.code, p.path])).toEqual([['MULTIPLE_RELEASE_FILES', `${SYSEXT_RELEASE}b`]]);
  });

  it('refuses a tree that is both a sysext and a confext', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\n', [`${CONFEXT_RELEASE}x`]: 'ID=_any\n' });
    expect(errors(r)).toContain('MIXED_KIND');
  });

  it('refuses a release file that is not a regular file', async () => {
    const r = await validate({ 'usr/lib/real': 'ID=_any\n', [`${SYSEXT_RELEASE}x`]: { symlink: '../real' } });
    expect(errors(r)).toEqual(['RELEASE_NOT_FILE']);
  });

  it('refuses a release directory that is not a directory', async () => {
    const r = await validate({ 'usr/lib/extension-release.d': 'a file' });
    expect(errors(r)).toEqual(['RELEASE_DIR_NOT_DIRECTORY', 'RELEASE_MISSING']);
    // A symlink is chased inside the tree, as systemd does: dangling there means no release file.
    expect(errors(await validate({ 'usr/lib/extension-release.d': { symlink: '/somewhere' } }))).toEqual(['RELEASE_MISSING']);
    const chased = await validate({ usr: { symlink: 'real' }, [`real/lib/extension-release.d/extension-release.x`]: 'ID=_any\n' });
    expect(chased.name).toBe('x');
    expect(errors(chased)).toEqual([]);
  });

  it('refuses release files that are too large, hold NUL, or are not UTF-8', async () => {
    const big = await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\n#' + 'x'.repeat(MAX_RELEASE_BYTES) });
    expect(errors(big)).toEqual(['RELEASE_TOO_LARGE']);
    const nul = await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\0\n' });
    expect(errors(nul)).toEqual(['RELEASE_NUL']);
    const utf8 = await validate({ [`${SYSEXT_RELEASE}x`]: Buffer.from([0x49, 0x44, 0x3d, 0xff, 0x0a]) });
    expect(errors(utf8)).toEqual(['RELEASE_UNLOADABLE']);
  });

  it('refuses a release file without ID, or with an empty scope', async () => {
    expect(errors(await validate({ [`${SYSEXT_RELEASE}x`]: 'VERSION_ID=12\n' }))).toEqual(['RELEASE_ID_MISSING']);
    expect(errors(await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=\n' }))).toEqual(['RELEASE_ID_MISSING']);
    expect(errors(await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\nSYSEXT_SCOPE=" "\n' }))).toEqual(['RELEASE_SCOPE_EMPTY']);
    expect(errors(await validate({ [`${CONFEXT_RELEASE}x`]: 'ID=_any\nCONFEXT_SCOPE=\n' }))).toEqual(['RELEASE_SCOPE_EMPTY']);
  });

  it('reads the release file as the given systemd version would', async () => {
    const spec = { [`${SYSEXT_RELEASE}x`]: '# see \\\nID=_any\n' };
    expect(errors(await validate(spec, { systemdVersion: 252 }))).toEqual(['RELEASE_ID_MISSING']);
    expect(errors(await validate(spec, { systemdVersion: 254 }))).toEqual([]);
  });

  it('refuses invalid names, given or found in the release file name', async () => {
    const r = await validate({ [`${SYSEXT_RELEASE}x`]: 'ID=_any\n' }, { name: '..' });
    expect(codes(r)).toContain('INVALID_NAME');
    const found = await validate({ [`${SYSEXT_RELEASE}.#tmp`]: 'ID=_any\n' });
    expect(errors(found)).toEqual(['INVALID_NAME']);
    expect(found.name).toBe('.#tmp');
  });
});

describe('validateExtension: content', () => {
  const release = { [`${SYSEXT_RELEASE}x`]: 'ID=_any\n' };

  it('refuses usr/lib/os-release', async () => {
    const r = await validate({ ...release, 'usr/lib/os-release': 'ID=debian\n' });
    expect(r.problems.map((p) => [p.code, p.severity, p.path])).toEqual([['OS_RELEASE_PRESENT', 'error', 'usr/lib/os-release']]);
  });

  it('refuses a merged hierarchy that is a file, but follows one that is a symlink (systemd chases it inside the extension)', async () => {
    expect(errors(await validate({ ...release, opt: 'not a dir' }))).toEqual(['HIERARCHY_NOT_DIRECTORY']);
    expect((await validate({ ...release, opt: { symlink: 'usr/opt' }, 'usr/opt/x': 'x' })).problems).toEqual([]);
  });

  it.each([
    ['lands outside the hierarchies', 'usr/bin/a', '../../var/lib/x'],
    ['points at the root', 'usr/a', '..'],
    ['is absolute outside /usr and /opt', 'usr/lib/a.conf', '/etc/a.conf'],
    ['is absolute to /', 'usr/bin/a', '/'],
    ['is absolute but climbs out', 'usr/bin/a', '/usr/../var/x'],
    ['is absolute to a look-alike', 'usr/bin/a', '/usrx/y'],
  ])('accepts a symlink that %s (systemd merges it; it resolves in the merged root)', async (_why, path, target) => {
    const r = await validate({ ...release, [path]: { symlink: target } });
    expect(r.problems).toEqual([]);
  });

  it('warns, only, about a relative symlink that climbs above the root', async () => {
    const r = await validate({ ...release, 'usr/bin/a': { symlink: '../../../etc/passwd' } });
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => [p.code, p.severity, p.path])).toEqual([['SYMLINK_ESCAPES', 'warning', 'usr/bin/a']]);
  });

  it('allows symlinks that stay inside the merged hierarchies', async () => {
    const r = await validate({
      ...release,
      'usr/bin/a': { symlink: 'b' },
      'usr/bin/c': { symlink: './../bin/../lib/x' },
      'usr/d': { symlink: '../opt/y' },
      'opt/e': { symlink: '/opt//y/../z' },
      'usr/f': { symlink: '/usr' },
    });
    expect(r.problems).toEqual([]);
  });

  it('accepts confext symlinks pointing anywhere', async () => {
    const r = await validate({ [`${CONFEXT_RELEASE}c`]: 'ID=_any\n', 'etc/a': { symlink: '/usr/lib/x' }, 'etc/b': { symlink: '../etc/x' } });
    expect(r.problems).toEqual([]);
  });

  it('does not walk content systemd ignores', async () => {
    const r = await validate({ ...release, 'var/escape': { symlink: '/etc/shadow' } });
    expect(codes(r)).toEqual(['IGNORED_CONTENT']);
  });

  it('refuses FIFOs and sockets', async () => {
    const root = tree({ ...release, 'usr/share/keep': 'k' });
    execFileSync('mkfifo', [join(root, 'usr/share/fifo')]);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'usr/sock'), resolve));
    try {
      const r = await validateExtension(directoryReader(root));
      expect(r.problems.map((p) => [p.code, p.severity, p.path])).toEqual([
        ['SPECIAL_FILE', 'error', 'usr/share/fifo'],
        ['SPECIAL_FILE', 'error', 'usr/sock'],
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('warns about setuid and setgid files, and refuses them in strict mode', async () => {
    const spec: Spec = {
      ...release,
      'usr/bin/su': { mode: 0o4755, content: 'x' },
      'usr/bin/wall': { mode: 0o2755, content: 'x' },
      'usr/bin/plain': { mode: 0o755, content: 'x' },
    };
    const r = await validate(spec);
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => [p.code, p.severity, p.path])).toEqual([
      ['SETUID', 'warning', 'usr/bin/su'],
      ['SETUID', 'warning', 'usr/bin/wall'],
    ]);
    expect(r.problems[0]?.message).toContain('setuid');
    expect(r.problems[1]?.message).toContain('setgid');
    const strict = await validate(spec, { strict: true });
    expect(strict.ok).toBe(false);
    expect(errors(strict)).toEqual(['SETUID', 'SETUID']);
  });

  it('stops when its signal is aborted', async () => {
    const controller = new AbortController();
    const reader = directoryReader(tree({ ...release, 'usr/a/b/c': 'x' }));
    const listing: TreeReader = {
      stat: reader.stat,
      readFile: reader.readFile,
      list: async (p) => {
        if (p === 'usr/a') controller.abort(new Error('stop here'));
        return reader.list(p);
      },
    };
    await expect(validateExtension(listing, { signal: controller.signal })).rejects.toThrow('stop here');
    await expect(validateExtension(reader, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses a root that is missing or not a directory', async () => {
    const dir = tempDir();
    expect(errors(await validateExtension(directoryReader(join(dir, 'nope'))))).toEqual(['NOT_A_TREE']);
    writeFileSync(join(dir, 'file'), 'x');
    expect(errors(await validateExtension(directoryReader(join(dir, 'file'))))).toEqual(['NOT_A_TREE']);
  });
});

describe('validateExtension over a non-directory TreeReader', () => {
  /** An in-memory tree, standing in for the OSTree commit reader. */
  function memoryReader(files: Record<string, { type: TreeEntry['type']; content?: string; target?: string; mode?: number }>): TreeReader {
    const entries = new Map<string, TreeEntry & { content?: string }>();
    entries.set('', { name: '', path: '', type: 'dir', mode: 0o755 });
    for (const [path, f] of Object.entries(files)) {
      const parts = path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (!entries.has(dir)) entries.set(dir, { name: parts[i - 1] as string, path: dir, type: 'dir', mode: 0o755 });
      }
      const entry: TreeEntry & { content?: string } = { name: parts.at(-1) as string, path, type: f.type, mode: f.mode ?? 0o644 };
      if (f.content !== undefined) {
        entry.content = f.content;
        entry.size = Buffer.byteLength(f.content);
      }
      if (f.target !== undefined) entry.target = f.target;
      entries.set(path, entry);
    }
    const strip = (e: TreeEntry & { content?: string }): TreeEntry => {
      const { content: _content, ...rest } = e;
      return rest;
    };
    return {
      stat: async (p) => {
        const e = entries.get(p);
        return e ? strip(e) : null;
      },
      list: async (p) =>
        entries.get(p)?.type !== 'dir'
          ? null
          : [...entries.values()]
              .filter((e) => e.path !== '' && e.path.slice(0, e.path.lastIndexOf('/') === -1 ? 0 : e.path.lastIndexOf('/')) === p)
              .sort((a, b) => (a.name < b.name ? -1 : 1))
              .map(strip),
      readFile: async (p, max) => {
        const e = entries.get(p);
        return e?.type === 'file' ? Buffer.from(e.content ?? '').subarray(0, max) : null;
      },
    };
  }

  it('validates without touching the file system', async () => {
    const reader = memoryReader({
      [`${SYSEXT_RELEASE}mem`]: { type: 'file', content: 'ID=fedora\nVERSION_ID=40\n' },
      'usr/bin/tool': { type: 'file', content: 'x', mode: 0o4755 },
      'usr/dev0': { type: 'special' },
      'usr/link': { type: 'symlink', target: '/var/x' },
    });
    const r = await validateExtension(reader);
    expect(r.name).toBe('mem');
    expect(r.release).toEqual({ ID: 'fedora', VERSION_ID: '40' });
    expect(r.problems.map((p) => [p.code, p.severity, p.path])).toEqual([
      ['SETUID', 'warning', 'usr/bin/tool'],
      ['SPECIAL_FILE', 'error', 'usr/dev0'],
    ]);
  });
});

describe('assertValidExtension', () => {
  it('returns the validation of a valid tree', async () => {
    const r = await assertValidExtension(directoryReader(tree({ [`${SYSEXT_RELEASE}ok`]: 'ID=_any\n', var: { dir: true } })));
    expect(r).toMatchObject({ name: 'ok', ok: true });
    expect(warnings(r)).toEqual(['IGNORED_CONTENT']);
  });

  it('throws INVALID_EXTENSION listing only the errors', async () => {
    const reader = directoryReader(tree({ [`${SYSEXT_RELEASE}bad`]: 'VERSION_ID=1\n', 'usr/lib/os-release': 'x', var: { dir: true } }));
    const err = await assertValidExtension(reader).catch((e: unknown) => e);
    expect(isExtensionError(err, 'INVALID_EXTENSION')).toBe(true);
    expect((err as ExtensionError).problems?.map((p) => p.code)).toEqual(['RELEASE_ID_MISSING', 'OS_RELEASE_PRESENT']);
    expect((err as ExtensionError).message).toContain("'bad'");
  });
});

describe('directoryReader', () => {
  const root = tree({
    'a/file': 'hello world',
    'a/link': { symlink: 'file' },
    'a/dirlink': { symlink: '.' },
    'b/x': { mode: 0o4750, content: '' },
    'outside-link': { symlink: '/etc' },
  });
  const reader = directoryReader(root);

  it('reports entries without following symlinks', async () => {
    expect(await reader.stat('a/file')).toEqual({ name: 'file', path: 'a/file', type: 'file', mode: 0o644, size: 11 });
    expect(await reader.stat('a/link')).toEqual({ name: 'link', path: 'a/link', type: 'symlink', mode: 0o777, target: 'file' });
    expect(await reader.stat('')).toMatchObject({ name: '', path: '', type: 'dir' });
    expect(await reader.stat('b/x')).toMatchObject({ mode: 0o4750 });
    expect(await reader.stat('missing')).toBeNull();
  });

  it('normalises paths: leading slash, dots and repeated slashes', async () => {
    expect((await reader.stat('/a//./file'))?.path).toBe('a/file');
  });

  it('never resolves a path through a symlink', async () => {
    expect(await reader.stat('a/dirlink/file')).toBeNull();
    expect(await reader.list('a/dirlink')).toBeNull();
    expect(await reader.list('outside-link')).toBeNull();
    expect(await reader.readFile('a/link')).toBeNull();
    expect(await reader.readFile('outside-link/hostname')).toBeNull();
  });

  it('lists a directory sorted by name', async () => {
    expect((await reader.list('a'))?.map((e) => [e.name, e.path, e.type])).toEqual([
      ['dirlink', 'a/dirlink', 'symlink'],
      ['file', 'a/file', 'file'],
      ['link', 'a/link', 'symlink'],
    ]);
    expect((await reader.list(''))?.map((e) => e.name)).toEqual(['a', 'b', 'outside-link']);
    expect(await reader.list('a/file')).toBeNull();
  });

  it('reads files, up to maxBytes', async () => {
    expect((await reader.readFile('a/file'))?.toString()).toBe('hello world');
    expect((await reader.readFile('a/file', 5))?.toString()).toBe('hello');
    expect((await reader.readFile('b/x'))?.length).toBe(0);
    expect(await reader.readFile('a')).toBeNull();
    expect(await reader.readFile('nope')).toBeNull();
  });

  it('rejects paths that climb out of the tree', async () => {
    await expect(reader.stat('../etc')).rejects.toBeInstanceOf(RangeError);
    await expect(reader.readFile('a/../../x')).rejects.toBeInstanceOf(RangeError);
    await expect(reader.list('a\0')).rejects.toBeInstanceOf(RangeError);
  });
});

describe('extension names', () => {
  it.each([
    ['foo', null],
    ['foo-1.2_x86-64', null],
    ['é😀', null],
    ['.hidden', null],
    ['', 'is empty'],
    ['.', "is '.'"],
    ['..', "is '..'"],
    ['a/b', "contains '/'"],
    ['a\0b', 'contains NUL'],
    ['a\nb', 'contains a control character'],
    ['a\x7fb', 'contains a control character'],
    ['a\ud800', 'is not valid Unicode'],
    ['a\ufffe', 'contains a Unicode non-character'],
    ['.#tmp', "starts with '.#' (reserved for temporary files)"],
    ['x'.repeat(255), null],
    ['x'.repeat(256), 'is longer than 255 bytes'],
    ['é'.repeat(128), 'is longer than 255 bytes'],
  ])('%j: %s', (name, problem) => {
    expect(extensionNameProblem(name)).toBe(problem);
    expect(isValidExtensionName(name)).toBe(problem === null);
  });
});

describe('findOsRelease', () => {
  it('prefers etc/os-release', async () => {
    const r = await findOsRelease(directoryReader(tree({ 'etc/os-release': 'ID=fedora\n', 'usr/lib/os-release': 'ID=debian\n' })));
    expect(r).toMatchObject({ source: 'etc/os-release', path: 'etc/os-release', release: { fields: { ID: 'fedora' } } });
  });

  it('follows symlinks inside the tree, relative or absolute', async () => {
    for (const target of ['../usr/lib/os-release', '/usr/lib/os-release', '/../../usr/lib/os-release']) {
      const r = await findOsRelease(directoryReader(tree({ 'etc/os-release': { symlink: target }, 'usr/lib/os-release': 'ID=debian\n' })));
      expect(r, target).toMatchObject({ source: 'etc/os-release', path: 'usr/lib/os-release', release: { fields: { ID: 'debian' } } });
    }
    const viaDir = await findOsRelease(directoryReader(tree({ etc: { symlink: 'usr/etc' }, 'usr/etc/os-release': 'ID=a\n', 'usr/lib/os-release': 'ID=b\n' })));
    expect(viaDir).toMatchObject({ source: 'etc/os-release', path: 'usr/etc/os-release' });
  });

  it('falls back to usr/lib/os-release when etc/os-release is missing or dangling', async () => {
    const dangling = await findOsRelease(directoryReader(tree({ 'etc/os-release': { symlink: 'nowhere' }, 'usr/lib/os-release': 'ID=debian\n' })));
    expect(dangling).toMatchObject({ source: 'usr/lib/os-release', release: { fields: { ID: 'debian' } } });
    const plain = await findOsRelease(directoryReader(tree({ 'usr/lib/os-release': 'ID=debian\n' })));
    expect(plain?.source).toBe('usr/lib/os-release');
  });

  it('gives null when there is none, or on a symlink loop', async () => {
    expect(await findOsRelease(directoryReader(tree({ 'etc/hostname': 'x' })))).toBeNull();
    expect(await findOsRelease(directoryReader(tree({ 'etc/os-release': { symlink: 'os-release' } })))).toBeNull();
  });

  it('reads as the given systemd version', async () => {
    const reader = directoryReader(tree({ 'usr/lib/os-release': '#\\\nID=debian\n' }));
    expect((await findOsRelease(reader, { systemdVersion: 252 }))?.release.fields.ID).toBeUndefined();
    expect((await findOsRelease(reader, { systemdVersion: 254 }))?.release.fields.ID).toBe('debian');
  });
});

describe('validateExtension on deep trees', () => {
  it('reads a 1,500-level tree in one walk per hierarchy, not one lookup from the root per entry', async () => {
    const root = tree({ [`${SYSEXT_RELEASE}deep`]: 'ID=_any\n' });
    // 1,500 nested directories (deeper than a quadratic walk can afford), one file at the bottom.
    const parts = Array.from({ length: 1500 }, () => 'd');
    let p = join(root, 'usr');
    for (let i = 0; i < parts.length; i += 100) {
      p = join(p, ...parts.slice(i, i + 100));
      mkdirSync(p, { recursive: true });
    }
    writeFileSync(join(p, 'bottom'), 'x');
    const inner = directoryReader(root);
    let lists = 0;
    let walks = 0;
    const counting: TreeReader = {
      stat: inner.stat,
      readFile: inner.readFile,
      list: async (path) => {
        lists++;
        return inner.list(path);
      },
      walk: async (path) => {
        walks++;
        return inner.walk!(path);
      },
    };
    const r = await validateExtension(counting);
    expect(r.ok).toBe(true);
    expect(walks).toBe(1);
    expect(lists).toBeLessThan(5);
    // Names over 255 bytes cannot exist on disk; the same check holds for any reader.
    const mem: TreeReader = {
      stat: async (path) => (path === '' || path === 'usr' ? { name: path, path, type: 'dir', mode: 0o755 } : null),
      list: async (path) => (path === '' ? [{ name: 'usr', path: 'usr', type: 'dir', mode: 0o755 }] : []),
      readFile: async () => null,
      walk: async () => [{ name: 'n'.repeat(256), path: `usr/${'n'.repeat(256)}`, type: 'file', mode: 0o644, size: 0 }],
    };
    expect(codes(await validateExtension(mem, { name: 'm' }))).toContain('NAME_TOO_LONG');
  });
});
