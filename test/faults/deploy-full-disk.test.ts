// `ostree-sysext deploy` on a sysroot whose file system runs out of inodes or blocks at every
// step of the deploy (set commit, set checkout, staged/ directory, extension checkouts,
// activation links): the CLI must say NO_SPACE (exit 1), never NOT_FOUND (exit 4, which
// Node's recursive mkdir used to cause by reporting ENOSPC as ENOENT), and the same command
// must succeed once space is freed. Runs in a private mount namespace on a small tmpfs.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { makeTestSysroot, makeTree } from '../helpers/fixtures.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInPrivateMountNamespace } from '../helpers/sysext.js';
import { tempDir } from '../helpers/tmp.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'ostree-sysext.js');
const dir = tempDir('deploy-full-');

// $1 node, $2 bin, $3 sysroot template, $4 extension tree, $5 mount point, $6 inode budgets, $7 block budgets (4 KiB).
const SCRIPT = `set -u
mnt="$5"
mount -t tmpfs -o size=8m,nr_inodes=2000 tmpfs "$mnt"
cp -a "$3" "$mnt/s"
S="$mnt/s"
D=$(ls -d "$S"/ostree/deploy/testos/deploy/*.0)
node="$1"; bin="$2"
run() { "$node" "$bin" --sysroot "$S" --root "$D" "$@"; }
run add "$4" --json >/dev/null || { echo "add failed" >&2; exit 1; }
fill_inodes() { i=0; while : 2>/dev/null > "$mnt/fill$i"; do i=$((i+1)); done; ls -d "$mnt"/fill* | head -n "$1" | xargs -r rm -f; }
fill_blocks() { dd if=/dev/zero of="$mnt/fill" bs=4k 2>/dev/null; truncate -s "-$(($1 * 4096))" "$mnt/fill"; }
for kind in inodes blocks; do
  budgets="$6"; [ "$kind" = blocks ] && budgets="$7"
  for k in $budgets; do
    "fill_$kind" "$k"
    out=$(run deploy alpha --json 2>/dev/null); rc=$?
    rm -f "$mnt"/fill*
    code=$(printf '%s' "$out" | grep -o -m1 '"code": "[A-Z_]*"' | cut -d'"' -f4); [ "$rc" = 0 ] && code=OK
    again=0; [ "$rc" = 0 ] || { run deploy alpha --json >/dev/null 2>&1; again=$?; }
    echo "RESULT $kind $k $rc $code $again"
    run undeploy alpha --json >/dev/null 2>&1
  done
done
`;

describeAsRoot('deploy on a full file system', () => {
  const template = join(dir, 'sysroot');
  const extDir = join(dir, 'ext');

  beforeAll(() => {
    makeTestSysroot(template, {
      osname: 'testos',
      deployments: 1,
      tree: { extra: { ostree: { symlink: 'sysroot/ostree' }, sysroot: { dir: true }, run: { dir: true } } },
    });
    const spec: Record<string, string> = { 'usr/lib/extension-release.d/extension-release.alpha': 'ID=testos\nVERSION_ID=1\n' };
    for (let i = 0; i < 40; i++) spec[`usr/share/alpha/f${i}`] = `${i}\n`.repeat(200);
    makeTree(extDir, spec);
  }, 120_000);

  it("makeDirectory reports a full file system as NO_SPACE where Node's promise mkdir -p says ENOENT", async () => {
    const mnt = join(dir, 'mnt-mkdir');
    mkdirSync(mnt);
    const child = `
const { makeDirectory } = await import(process.argv[1]);
const { mkdir, writeFile } = await import('node:fs/promises');
const mnt = process.argv[2];
await mkdir(mnt + '/a');
for (let i = 0; ; i++) { try { await writeFile(mnt + '/fill' + i, ''); } catch { break; } }
const code = (p) => p.then(() => 'ok', (e) => e.code);
console.log(JSON.stringify({ node: await code(mkdir(mnt + '/a/b/c', { recursive: true })), ours: await code(makeDirectory(mnt + '/a/b/c')), oursExisting: await code(makeDirectory(mnt + '/a')) }));`;
    const errorsJs = resolve(import.meta.dirname, '..', '..', 'dist', 'lib', 'binding', 'errors.js');
    const run = await runInPrivateMountNamespace('mount -t tmpfs -o size=1m,nr_inodes=64 tmpfs "$1" && exec "$2" --input-type=module -e "$3" "$4" "$1"', {
      args: [mnt, process.execPath, child, errorsJs],
    });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({ node: 'ENOENT', ours: 'NO_SPACE', oursExisting: 'ok' });
  });

  it('reports NO_SPACE (exit 1) at every point, never NOT_FOUND, and the re-run succeeds', async () => {
    const mnt = join(dir, 'mnt');
    const inodes = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14].join(' ');
    const blocks = [0, 1].join(' ');
    mkdirSync(mnt);
    const run = await runInPrivateMountNamespace(SCRIPT, { args: [process.execPath, BIN, template, extDir, mnt, inodes, blocks], timeoutMs: 400_000 });
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const results = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('RESULT '))
      .map((l) => {
        const [, kind, k, rc, code, again] = l.split(' ');
        return { kind, k: Number(k), rc: Number(rc), code, again: Number(again) };
      });
    process.stdout.write(`deploy-full-disk: ${results.map((r) => `${r.kind[0]}${r.k}:${r.code}`).join(' ')}\n`);
    expect(results).toHaveLength(11 + 2);
    const failed = results.filter((r) => r.code !== 'OK');
    // Enough budgets ran out mid-deploy to be a test (the small ones fail, the large ones pass).
    expect(failed.length).toBeGreaterThanOrEqual(8);
    for (const r of failed) expect(r).toEqual({ ...r, rc: 1, code: 'NO_SPACE' });
    for (const r of results) expect(r.again, `${r.kind} ${r.k}: the same deploy once space is freed`).toBe(0);
  }, 420_000);
});
