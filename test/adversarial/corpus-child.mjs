// One child of the corruption corpus (test/adversarial/corruption.test.ts): runs every entry
// point from index START over one damaged repository, against dist/ as users run the library.
// Prints one JSON line before ({start}) and after ({end, outcome, code}) each attempt, so the
// parent can attribute a crash (a signal) or a hang to the attempt that was running.
//   node corpus-child.mjs DIST REPO WORK START HANG_MS
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dist, repoPath, work, startArg, hangArg] = process.argv.slice(2);
const lib = await import(dist);
const {
  Repo,
  ExtensionStore,
  validateExtension,
  commitReader,
  fileConflictPlugin,
  mergeOffline,
  baseFromDirectory,
  extensionRef,
  OstreeError,
  ExtensionError,
  ArgumentError,
} = lib;
const REF = extensionRef('ext');
const FILE = '/usr/share/ext/a.txt';
const start = Number(startArg);
const hangMs = Number(hangArg);

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let repo;
const open = async () => (repo ??= await Repo.open(repoPath));
const rev = async () => {
  const r = await open();
  return (await r.resolve(REF, { allowMissing: true })) ?? REF;
};
const base = async () => {
  const dir = join(work, 'os');
  mkdirSync(join(dir, 'usr/lib'), { recursive: true });
  mkdirSync(join(dir, 'opt'), { recursive: true });
  writeFileSync(join(dir, 'usr/lib/os-release'), 'ID=testos\nVERSION_ID=1\n');
  return baseFromDirectory(dir);
};

// The entry points, in an order where the destructive ones (merge writes a commit, prune
// deletes) come last. Exported names only: what a caller of the package can reach.
const ENTRY_POINTS = [
  ['loadCommit', async () => (await open()).loadCommit(REF)],
  ['log', async () => (await open()).log(REF)],
  ['stat', async () => (await open()).stat(REF, FILE)],
  ['readFile', async () => (await open()).readFile(REF, FILE)],
  ['listDir', async () => (await open()).listDir(REF, '/usr/share/ext')],
  ['listDirRoot', async () => (await open()).listDir(REF, '/')],
  ['readLink', async () => (await open()).readLink(REF, '/usr/share/ext/link')],
  [
    'query',
    async () =>
      (await open()).query(REF, [
        { op: 'commit' },
        { op: 'stat', path: '/usr/share/ext', optional: true },
        { op: 'list', path: '/usr/share/ext', optional: true },
        { op: 'read', path: FILE, optional: true },
        { op: 'readlink', path: '/usr/share/ext/link', optional: true },
      ]),
  ],
  [
    'queryMany',
    async () =>
      (await open()).queryMany([
        {
          rev: REF,
          ops: [
            { op: 'list', path: '/usr/share/ext/deep', optional: true },
            { op: 'stat', path: FILE },
          ],
        },
        { rev: await rev(), ops: [{ op: 'read', path: FILE }] },
      ]),
  ],
  ['validateExtension', async () => validateExtension(commitReader(await open(), await rev()), { name: 'ext' })],
  [
    'fileConflictPlugin',
    async () => {
      const r = await open();
      const c = await rev();
      return fileConflictPlugin.checkCompatible({
        osname: 'testos',
        systemdVersion: 252,
        repo: r,
        base: await base(),
        extensions: [
          { name: 'ext', commit: c, kind: 'sysext', release: { ID: '_any' }, reader: commitReader(r, c) },
          { name: 'ext2', commit: c, kind: 'sysext', release: { ID: '_any' }, reader: commitReader(r, c) },
        ],
      });
    },
  ],
  ['store.list', async () => new ExtensionStore(await open()).list()],
  ['store.get', async () => new ExtensionStore(await open()).get('ext')],
  ['store.history', async () => new ExtensionStore(await open()).history('ext')],
  ['checkout', async () => (await open()).checkout(REF, join(work, 'co'))],
  ['checkoutSubpath', async () => (await open()).checkout(REF, join(work, 'co-sub'), { subpath: '/usr/share' })],
  [
    'fsck',
    async () => {
      const f = await (await open()).fsck();
      return { ok: f.ok, corrupt: f.corrupt.length, missing: f.missing.length };
    },
  ],
  [
    'pullLocal',
    async () => {
      const dst = await Repo.create(join(work, 'pulled'), { mode: 'archive', disableFsync: true });
      try {
        return await dst.pullLocal(repoPath, { refs: [REF] });
      } finally {
        dst.close();
      }
    },
  ],
  [
    'mergeOffline',
    async () =>
      mergeOffline({
        repo: await open(),
        base: await base(),
        extensions: [{ name: 'ext', commit: await rev(), kind: 'sysext' }],
        commit: { ref: 'merged/main', subject: 'merged' },
      }),
  ],
  ['prune', async () => (await open()).prune({ depth: -1 })],
];

if (startArg === 'names') {
  out(ENTRY_POINTS.map(([n]) => n));
  process.exit(0);
}
{
  for (let i = start; i < ENTRY_POINTS.length; i++) {
    const [name, fn] = ENTRY_POINTS[i];
    out({ start: i, name });
    const timer = setTimeout(() => {
      out({ hang: i, name });
      // Not process.exit(): its cleanup waits for the hung native worker forever.
      process.kill(process.pid, 'SIGKILL');
    }, hangMs);
    let rec;
    try {
      const v = await fn();
      rec = { end: i, name, outcome: 'ok', detail: name === 'fsck' ? v : undefined };
    } catch (e) {
      const typed = e instanceof OstreeError || e instanceof ExtensionError || e instanceof ArgumentError;
      rec = { end: i, name, outcome: typed ? 'typed' : 'untyped', code: e?.code ?? e?.name, message: String(e?.message ?? e).slice(0, 300) };
    }
    clearTimeout(timer);
    out(rec);
  }
  repo?.close();
  process.exit(0);
}
