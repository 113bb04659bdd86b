// A remote that requires ed25519 signatures (sign-verify, as `ostree remote add --sign-verify`
// or a vendor's config writes it). Debian's libostree (2022.7, 2025.2, 2026.4) is built without
// ed25519: the pull must still be refused, with a typed SIGN_UNSUPPORTED error, and no ref. Where
// libostree has ed25519 (`sign-ed25519` in `ostree --version`), the unsigned commit is refused.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { OstreeError } from '../../lib/binding/errors.js';
import { Repo } from '../../lib/binding/repo.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('sign-ed25519-');
const hasEd25519 = /sign-ed25519/.test(execFileSync('ostree', ['--version'], { encoding: 'utf8' }));
const ostree = (repo: string, ...args: string[]) =>
  execFileSync('ostree', [`--repo=${repo}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

it(`a pull from a remote with sign-verify=ed25519 is refused with no ref (${hasEd25519 ? 'libostree has ed25519' : 'SIGN_UNSUPPORTED: libostree has no ed25519'})`, async () => {
  const src = join(dir, 'src');
  ostree(src, 'init', '--mode=archive');
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  writeFileSync(join(tree, 'f'), 'x\n');
  ostree(src, 'commit', '-b', 'main', `--tree=dir=${tree}`);
  const dst = join(dir, 'dst');
  ostree(dst, 'init', '--mode=bare-user');
  // What `ostree remote add --sign-verify=ed25519=inline:KEY` writes (a libostree without
  // ed25519 refuses to write it, so it is written here as a vendor's config file would be).
  const key = Buffer.alloc(32, 7).toString('base64');
  appendFileSync(join(dst, 'config'), `\n[remote "vendor"]\nurl=file://${src}\ngpg-verify=false\nsign-verify=true\nverification-ed25519-key=${key}\n`);
  const repo = await Repo.open(dst);
  try {
    const err = await repo.pull('vendor', { refs: ['main'] }).then(
      () => new Error('the pull succeeded'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OstreeError);
    if (!hasEd25519) {
      expect(err).toMatchObject({ code: 'SIGN_UNSUPPORTED', domain: 'g-io-error-quark' });
      expect((err as Error).message).toMatch(/vendor/);
    } else {
      expect((err as OstreeError).code).not.toBe('SIGN_UNSUPPORTED');
    }
    expect(await repo.resolve('vendor:main', { allowMissing: true })).toBeNull();
  } finally {
    repo.close();
  }
});
