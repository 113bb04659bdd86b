// Damaged content objects in a source large enough that the addon checks its content objects
// by listing each objects/XX directory (native/objects.cc CheckContentObjects, from 256 objects
// on) instead of one fstatat each. Written as the attack: one object of 400 is replaced by a
// FIFO (libostree's open() would block on it forever), a directory or a socket; each attempt
// runs in a child process with a deadline, so a hang or crash fails the test. A local pull
// and a copying checkout must refuse with CORRUPT, write no ref and leave no checkout.
import { mkdirSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { makeTree, type TreeSpec } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { attack, REPORT } from './attack.js';

const dir = tempDir('osx-many-objects-');
const MODES = ['bare-user-only', 'archive'] as const;
const DAMAGES = ['fifo', 'directory', 'socket'] as const;
const pristine: Record<string, { path: string; objects: string[] }> = {};

beforeAll(async () => {
  const spec: TreeSpec = {};
  for (let i = 0; i < 400; i++) spec[`usr/share/many/d${i % 9}/f${i}`] = `file ${i}\n`;
  const tree = join(dir, 'tree');
  makeTree(tree, spec);
  for (const mode of MODES) {
    const path = join(dir, `pristine-${mode}`);
    const repo = await Repo.create(path, { mode, disableFsync: true });
    await repo.commit({ tree, ref: 'main' });
    repo.close();
    const suffix = mode === 'archive' ? '.filez' : '.file';
    const objects = readdirSync(join(path, 'objects')).flatMap((d) =>
      readdirSync(join(path, 'objects', d))
        .filter((f) => f.endsWith(suffix))
        .map((f) => join('objects', d, f)),
    );
    expect(objects.length).toBeGreaterThanOrEqual(256);
    pristine[mode] = { path, objects };
  }
});

/** A copy of the pristine repository with one content object (the 200th) replaced. */
function damaged(mode: (typeof MODES)[number], damage: (typeof DAMAGES)[number]): { path: string; object: string } {
  const path = join(dir, `${mode}-${damage}`);
  rmSync(path, { recursive: true, force: true });
  execFileSync('cp', ['-a', pristine[mode]!.path, path]);
  const object = pristine[mode]!.objects[200]!;
  const target = join(path, object);
  rmSync(target);
  if (damage === 'fifo') execFileSync('mkfifo', [target]);
  else if (damage === 'directory') mkdirSync(target);
  // Bound from inside its directory: the full path is longer than a socket address allows.
  else
    execFileSync('python3', [
      '-c',
      'import os,socket,sys; os.chdir(os.path.dirname(sys.argv[1])); socket.socket(socket.AF_UNIX).bind(os.path.basename(sys.argv[1]))',
      target,
    ]);
  return { path, object };
}

describe('damaged content objects among many', () => {
  for (const mode of MODES) {
    for (const damage of DAMAGES) {
      it(`${mode}, one object a ${damage}: pull-local and a copying checkout refuse with CORRUPT`, async () => {
        const src = damaged(mode, damage);
        const dest = join(dir, `dest-${mode}-${damage}`);
        const co = join(dir, `co-${mode}-${damage}`);
        rmSync(dest, { recursive: true, force: true });
        const out = await attack(
          `${REPORT}
          const dest = await lib.Repo.create(args[1], { mode: 'bare-user-only', disableFsync: true });
          await report(dest.pullLocal(args[0], { refs: ['main'] }));
          const src = await lib.Repo.open(args[0]);
          await report(src.checkout('main', args[2], { mode: 'user', hardlinks: 'never' }));
          const refs = await dest.listRefs();
          console.log(JSON.stringify({ refs }));`,
          [src.path, dest, co],
          { timeoutMs: 60_000 },
        );
        expect(out.signal, out.stderr).toBeNull();
        expect(out.code, out.stderr).toBe(0);
        const lines = out.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(lines[0]).toMatchObject({ ok: false, code: 'CORRUPT' });
        expect(String(lines[0]!.message)).toContain(
          src.object
            .split('/')
            .slice(1)
            .join('')
            .replace(/\.filez?$/, ''),
        );
        expect(lines[1]).toMatchObject({ ok: false, code: 'CORRUPT' });
        expect(lines[2]).toEqual({ refs: {} });
        expect(existsSync(co)).toBe(false);
      });
    }
  }
});
