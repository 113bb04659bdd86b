// Hostile tar archives (issue 12): a hard link to `../x` made libostree's libarchive import
// assert and abort the process, through Repo.commit({ archive }) and `ostree-sysext add x.tar`.
// Each attempt runs in a child process: a signal fails the test; the archive must be refused
// with a typed error (INVALID_DATA) and the repository left without the ref.
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { childEnv } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const dist = process.env.OSX_ADV_DIST ?? resolve(import.meta.dirname, '../../dist/lib/index.js');
const BIN = resolve(import.meta.dirname, '../../bin/ostree-sysext.js');
const dir = tempDir('osx-tar-');
const repoPath = join(dir, 'repo');

// [kind, name, linkname]: f file, d dir, h hard link, s symlink
type Member = [string, string, string?];
const RELEASE: Member[] = [
  ['d', 'usr'],
  ['d', 'usr/lib'],
  ['d', 'usr/lib/extension-release.d'],
  ['f', 'usr/lib/extension-release.d/extension-release.evil'],
];
const HOSTILE: Record<string, Member[]> = {
  'link-dotdot': [
    ['f', 'usr/a'],
    ['h', 'usr/b', '../x'],
  ],
  'link-inner-dotdot': [
    ['f', 'usr/a'],
    ['h', 'usr/b', 'usr/../../x'],
  ],
  'link-to-parent': [
    ['f', 'usr/a'],
    ['h', 'usr/b', 'usr/a/..'],
  ],
  'link-dot': [
    ['f', 'usr/a'],
    ['h', 'usr/b', '.'],
  ],
  'link-empty': [
    ['f', 'usr/a'],
    ['h', 'usr/b', ''],
  ],
  'link-absolute': [
    ['f', 'usr/a'],
    ['h', 'usr/b', '/etc/passwd'],
  ],
  'link-missing': [
    ['f', 'usr/a'],
    ['h', 'usr/b', 'usr/nothere'],
  ],
  'link-forward': [
    ['h', 'usr/b', 'usr/a'],
    ['f', 'usr/a'],
  ],
  'link-directory': [
    ['f', 'usr/a'],
    ['h', 'usr/b', 'usr'],
  ],
  'link-self': [['h', 'usr/b', 'usr/b']],
  'link-dotdot-pax': [
    ['f', 'usr/a'],
    ['h', 'usr/' + 'p'.repeat(120), '../' + 'x'.repeat(120)],
  ],
  'name-dotdot': [['f', '../evil']],
};

function makeTar(path: string, members: Member[], opts: { gzip?: boolean; format?: 'gnu' | 'pax' } = {}): void {
  const py = `
import tarfile, io, sys, json
members = json.loads(sys.argv[2])
fmt = tarfile.PAX_FORMAT if sys.argv[4] == 'pax' else tarfile.GNU_FORMAT
with tarfile.open(sys.argv[1], 'w:gz' if sys.argv[3] == '1' else 'w', format=fmt) as t:
    for m in members:
        ti = tarfile.TarInfo(m[1])
        if m[0] == 'f':
            data = b'ID=_any\\n' if 'extension-release' in m[1] else b'x\\n'
            ti.size = len(data); ti.mode = 0o644; t.addfile(ti, io.BytesIO(data))
        elif m[0] == 'd':
            ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
        elif m[0] == 'h':
            ti.type = tarfile.LNKTYPE; ti.linkname = m[2]; t.addfile(ti)
        elif m[0] == 's':
            ti.type = tarfile.SYMTYPE; ti.linkname = m[2]; t.addfile(ti)
`;
  execFileSync('/usr/bin/python3', ['-c', py, path, JSON.stringify(members), opts.gzip ? '1' : '0', opts.format ?? 'gnu']);
}

const CHILD = `
const [dist, repo, archive] = process.argv.slice(1);
const { Repo, OstreeError } = await import(dist);
const r = await Repo.open(repo);
try {
  const c = await r.commit({ archive, ref: 'hostile' });
  console.log(JSON.stringify({ ok: c }));
} catch (e) {
  console.log(JSON.stringify({ typed: e instanceof OstreeError, code: e.code, message: e.message }));
}
r.close();
`;

function libraryAttempt(archive: string): {
  signal: NodeJS.Signals | null;
  status: number | null;
  out: { ok?: string; typed?: boolean; code?: string; message?: string };
} {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, dist, repoPath, archive], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return { signal: r.signal, status: r.status, out: line.startsWith('{') ? JSON.parse(line) : {} };
}

beforeAll(async () => {
  (await Repo.create(repoPath, { mode: 'bare-user-only', disableFsync: true })).close();
});

describe('hostile tar archives are refused with a typed error, the process survives', () => {
  for (const [name, members] of Object.entries(HOSTILE)) {
    for (const variant of ['tar', 'tar.gz', 'pax'] as const) {
      it(`${name} (${variant}) through Repo.commit({ archive })`, async () => {
        const archive = join(dir, `${name}-${variant}.tar${variant === 'tar.gz' ? '.gz' : ''}`);
        makeTar(archive, [...RELEASE, ...members], { gzip: variant === 'tar.gz', format: variant === 'pax' ? 'pax' : 'gnu' });
        const r = libraryAttempt(archive);
        expect(r.signal, 'the child was killed by a signal').toBeNull();
        expect(r.status).toBe(0);
        expect(r.out).toMatchObject({ typed: true, code: 'INVALID_DATA' });
        const repo = await Repo.open(repoPath);
        try {
          expect(await repo.resolve('hostile', { allowMissing: true })).toBeNull();
        } finally {
          repo.close();
        }
      });
    }
  }

  it('ostree-sysext add of a tar with a hard link to ../x exits with an error, not a signal', () => {
    const archive = join(dir, 'cli-dotdot.tar');
    makeTar(archive, [...RELEASE, ['f', 'usr/a'], ['h', 'usr/b', '../x']]);
    const r = spawnSync(process.execPath, [BIN, '--repo', repoPath, 'add', archive], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    expect(r.status).toBeLessThan(64);
    expect(r.stderr).toMatch(/hard link/);
  });

  it('control: a hard link to an earlier file commits, and both names read the same bytes', async () => {
    const archive = join(dir, 'good.tar');
    makeTar(archive, [...RELEASE, ['f', 'usr/a'], ['h', 'usr/b', 'usr/a'], ['h', 'usr/c', './usr/a']]);
    const r = libraryAttempt(archive);
    expect(r.signal).toBeNull();
    expect(r.out.ok).toMatch(/^[0-9a-f]{64}$/);
    const repo = await Repo.open(repoPath);
    try {
      expect(String(await repo.readFile(r.out.ok!, '/usr/b'))).toBe('x\n');
      expect(String(await repo.readFile(r.out.ok!, '/usr/c'))).toBe('x\n');
    } finally {
      repo.close();
    }
  });

  it('a truncated gzip stream, a directory and a missing file are typed errors too', () => {
    const good = join(dir, 'trunc-src.tar.gz');
    makeTar(good, [...RELEASE, ['f', 'usr/a']], { gzip: true });
    const truncated = join(dir, 'trunc.tar.gz');
    execFileSync('sh', ['-c', `head -c 60 ${good} > ${truncated}`]);
    for (const [archive, code] of [
      [truncated, /CORRUPT|INVALID_DATA|FAILED/],
      [dir, /IS_DIRECTORY|FAILED/],
      [join(dir, 'nope.tar'), /NOT_FOUND/],
    ] as const) {
      const r = libraryAttempt(archive);
      expect(r.signal).toBeNull();
      expect(r.out.typed, JSON.stringify(r.out)).toBe(true);
      expect(r.out.code).toMatch(code);
    }
  });

  it('an archive format the scan cannot read is refused (NOT_SUPPORTED), not imported unchecked', () => {
    const archive = join(dir, 'x.tar.xz');
    makeTar(join(dir, 'x.tar'), [...RELEASE, ['f', 'usr/a'], ['h', 'usr/b', '../x']]);
    execFileSync('sh', ['-c', `xz -c ${join(dir, 'x.tar')} > ${archive} || bzip2 -c ${join(dir, 'x.tar')} > ${archive}`]);
    const r = libraryAttempt(archive);
    expect(r.signal).toBeNull();
    expect(r.out).toMatchObject({ typed: true, code: 'NOT_SUPPORTED' });
  });
});
