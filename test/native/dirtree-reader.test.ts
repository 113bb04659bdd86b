// The addon reads dirtrees straight from their bytes (native/objects.cc ReadDirtree) instead of
// through a GVariant per child. Differential test against GLib on the same bytes: every real
// dirtree (offsets of 1, 2 and 4 bytes) reads the same both ways, and of thousands of damaged
// variants, none that GLib calls not normal is accepted, and every one accepted reads as GLib
// reads it. Run in a child process, so a crash in either reader fails the test.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../lib/index.js';
import { makeTree, type TreeSpec } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { spawnSync } from 'node:child_process';
import { childEnv } from '../helpers/child.js';

const base = tempDir('ostree-sysext-dirtree-');

function dirtrees(repo: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(repo, 'objects'))) {
    for (const f of readdirSync(join(repo, 'objects', d))) if (f.endsWith('.dirtree')) out.push(join(repo, 'objects', d, f));
  }
  return out;
}

describe('the addon reads dirtrees as GLib does', () => {
  let files: string[] = [];
  beforeAll(async () => {
    const spec: TreeSpec = {
      'usr/lib/os-release': 'ID=t\n',
      'usr/share/empty': { dir: true },
      'usr/share/ünï/файл.txt': 'x\n',
      'usr/bin/tool': { symlink: 'x' },
    };
    // 3 entries (1-byte offsets), 40 (2-byte), 900 with long names (over 64 KiB: 4-byte).
    for (let i = 0; i < 3; i++) spec[`usr/small/f${i}`] = `${i}\n`;
    for (let i = 0; i < 40; i++) spec[`usr/mid/f${i}`] = `m${i}\n`;
    for (let i = 0; i < 900; i++) spec[`usr/big/${'n'.repeat(60)}${String(i).padStart(4, '0')}`] = `b${i}\n`;
    for (let i = 0; i < 30; i++) spec[`usr/dirs/d${i}/x`] = `${i}\n`;
    const tree = join(base, 'tree');
    makeTree(tree, spec);
    const repo = await Repo.create(join(base, 'repo'), { mode: 'bare-user-only', disableFsync: true });
    await repo.commit({ tree, ref: 'main' });
    repo.close();
    files = dirtrees(join(base, 'repo'));
    const sizes = files.map((f) => readFileSync(f).length);
    expect(Math.max(...sizes)).toBeGreaterThan(65535);
    expect(sizes.some((n) => n > 255 && n <= 65535)).toBe(true);
    expect(sizes.some((n) => n <= 255)).toBe(true);
  });

  it('every real dirtree, and thousands of damaged ones', () => {
    const script = `
      import { readFileSync } from 'node:fs';
      import { native } from '${new URL('../../dist/lib/binding/native.js', import.meta.url).pathname}';
      const files = ${JSON.stringify(files)};
      let seed = 12345;
      const rnd = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
      const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
      let real = 0, mutated = 0, accepted = 0, normal = 0, bad = [];
      for (const f of files) {
        const b = readFileSync(f);
        const { glib, ours } = native().dirtreeParse(b);
        if (!glib || !ours || !same(glib, ours)) bad.push('real ' + f);
        real++;
        for (let k = 0; k < 300; k++) {
          const m = Buffer.from(b);
          // A flipped bit, a zeroed or random byte anywhere, a changed framing offset (the
          // tail), a truncation, an extra byte.
          const kind = rnd(6);
          let x = m;
          if (kind === 0) m[rnd(m.length)] ^= 1 << rnd(8);
          else if (kind === 1) m[rnd(m.length)] = 0;
          else if (kind === 2) m[rnd(m.length)] = rnd(256);
          else if (kind === 3) m[m.length - 1 - rnd(Math.min(8, m.length))] = rnd(256);
          else if (kind === 4) x = m.subarray(0, rnd(m.length));
          else x = Buffer.concat([m, Buffer.from([rnd(256)])]);
          const p = native().dirtreeParse(x);
          mutated++;
          if (p.glib) normal++;
          if (p.ours) {
            accepted++;
            if (!p.glib) bad.push('accepted a non-normal variant of ' + f + ': ' + x.toString('hex').slice(0, 80));
            else if (!same(p.glib, p.ours)) bad.push('read differently: ' + f);
          }
        }
      }
      console.log(JSON.stringify({ real, mutated, accepted, normal, bad: bad.slice(0, 5) }));
      `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: childEnv, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { real: number; mutated: number; accepted: number; normal: number; bad: string[] };
    expect(out.bad).toEqual([]);
    expect(out.real).toBe(files.length);
    expect(out.mutated).toBe(files.length * 300);
    // The mutations reach both sides of the line: some stay readable, most do not.
    expect(out.accepted).toBeGreaterThan(0);
    expect(out.accepted).toBeLessThan(out.mutated);
  });
});
