/**
 * Real fixtures for the tests: directory trees described as data, byte-for-byte snapshots of
 * trees, extended attributes (through python3's os.*xattr, no extra package), big trees, and
 * OSTree sysroots with deployments built by the real `ostree admin` CLI.
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ostreeOk, run } from './ostree-cli.js';

/** One entry of a {@link TreeSpec}. A string or Buffer is a regular file with mode 0644. */
export type TreeEntry =
  | string
  | Buffer
  | { file: string | Buffer; mode?: number; xattrs?: Record<string, string | Buffer> }
  | { symlink: string }
  | { dir: true; mode?: number; xattrs?: Record<string, string | Buffer> };

/** A tree as data: relative path → entry. Missing parent directories are created (0755). */
export type TreeSpec = Record<string, TreeEntry>;

/**
 * Creates the entries of `spec` under `dir` (created if needed). Modes are set exactly
 * (chmod, so the umask does not interfere); xattrs are set last, in one python3 call.
 * @example makeTree(dir, { 'usr/bin/tool': { file: '#!/bin/sh\n', mode: 0o755 }, 'usr/lib/link': { symlink: '../bin/tool' } })
 */
export function makeTree(dir: string, spec: TreeSpec): void {
  mkdirSync(dir, { recursive: true });
  const xattrs: Array<[string, string, string]> = [];
  const dirModes: Array<[string, number]> = [];
  for (const [rel, entry] of Object.entries(spec)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof entry === 'string' || Buffer.isBuffer(entry)) {
      writeFileSync(p, entry);
      chmodSync(p, 0o644);
    } else if ('symlink' in entry) {
      symlinkSync(entry.symlink, p);
    } else if ('dir' in entry) {
      mkdirSync(p, { recursive: true });
      dirModes.push([p, entry.mode ?? 0o755]);
      for (const [k, v] of Object.entries(entry.xattrs ?? {})) xattrs.push([p, k, Buffer.from(v).toString('base64')]);
    } else {
      writeFileSync(p, entry.file);
      chmodSync(p, entry.mode ?? 0o644);
      for (const [k, v] of Object.entries(entry.xattrs ?? {})) xattrs.push([p, k, Buffer.from(v).toString('base64')]);
    }
  }
  // Directory modes last: a 0555 directory set early would refuse its own children.
  for (const [p, m] of dirModes.reverse()) chmodSync(p, m);
  if (xattrs.length > 0) setXattrs(xattrs);
}

const PY_SET = `
import base64, json, os, sys
for p, k, v in json.load(sys.stdin):
    os.setxattr(p, k, base64.b64decode(v), follow_symlinks=False)
`;

const PY_GET = `
import base64, json, os, sys
out = {}
for p in json.load(sys.stdin):
    out[p] = {k: base64.b64encode(os.getxattr(p, k, follow_symlinks=False)).decode() for k in os.listxattr(p, follow_symlinks=False)}
print(json.dumps(out))
`;

/** Sets extended attributes: `[path, name, base64 value]` triples. */
export function setXattrs(triples: Array<[string, string, string]>): void {
  run('python3', ['-c', PY_SET], { input: JSON.stringify(triples) });
}

/** Reads every extended attribute of each path (symlinks not followed): path → name → value. */
export function readXattrs(paths: string[]): Record<string, Record<string, Buffer>> {
  const raw = JSON.parse(run('python3', ['-c', PY_GET], { input: JSON.stringify(paths) })) as Record<string, Record<string, string>>;
  const out: Record<string, Record<string, Buffer>> = {};
  for (const [p, attrs] of Object.entries(raw)) {
    out[p] = {};
    for (const [k, v] of Object.entries(attrs)) out[p][k] = Buffer.from(v, 'base64');
  }
  return out;
}

/** What {@link snapshotTree} records for one path. */
export interface SnapshotEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission bits (st_mode & 07777); omitted for symlinks, whose mode is meaningless. */
  mode?: number;
  size?: number;
  /** sha256 of a regular file's bytes. */
  sha256?: string;
  target?: string;
  uid?: number;
  gid?: number;
}

/**
 * A byte-for-byte description of the tree under `dir`: relative path → type, permission
 * bits, size, sha256, symlink target (and uid/gid with `owners`). Compare two with toEqual.
 */
export function snapshotTree(dir: string, opts: { owners?: boolean } = {}): Record<string, SnapshotEntry> {
  const out: Record<string, SnapshotEntry> = {};
  const walk = (rel: string): void => {
    const p = rel === '' ? dir : join(dir, rel);
    const st = lstatSync(p);
    const e: SnapshotEntry = { type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other' };
    if (e.type !== 'symlink') e.mode = st.mode & 0o7777;
    if (opts.owners) {
      e.uid = st.uid;
      e.gid = st.gid;
    }
    if (e.type === 'file') {
      e.size = st.size;
      e.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
    } else if (e.type === 'symlink') {
      e.target = readlinkSync(p);
    }
    out[rel === '' ? '.' : rel] = e;
    if (e.type === 'dir') for (const name of readdirSync(p).sort()) walk(rel === '' ? name : join(rel, name));
  };
  walk('');
  return out;
}

/**
 * Writes `count` small distinct files under `dir`, 100 per subdirectory (`d000/f00000`…), so
 * every file is its own object. Returns `dir`.
 */
export function makeManyFiles(dir: string, count: number): string {
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${String(i).padStart(5, '0')}`), `file ${i}\n`);
  }
  return dir;
}

/** Options of {@link osTreeSpec}. */
export interface OsTreeOptions {
  /** os-release ID. Default `testos`. */
  id?: string;
  /** os-release VERSION_ID. Default `1`. */
  versionId?: string;
  /** Kernel version for usr/lib/modules/<kver>/{vmlinuz,initramfs.img}. Default `6.1.0-test`. */
  kver?: string;
  /** More entries (extension-release files, binaries, …). */
  extra?: TreeSpec;
}

/** The smallest tree `ostree admin deploy` accepts: a fake kernel and initramfs, usr/etc, os-release. */
export function osTreeSpec(opts: OsTreeOptions = {}): TreeSpec {
  const id = opts.id ?? 'testos';
  const versionId = opts.versionId ?? '1';
  const kver = opts.kver ?? '6.1.0-test';
  return {
    [`usr/lib/modules/${kver}/vmlinuz`]: `fake kernel ${kver}\n`,
    [`usr/lib/modules/${kver}/initramfs.img`]: `fake initramfs ${kver}\n`,
    'usr/lib/os-release': `ID=${id}\nNAME="Test OS"\nVERSION_ID=${versionId}\n`,
    'usr/etc/hostname': 'testhost\n',
    'usr/bin/true': { file: '#!/bin/sh\nexit 0\n', mode: 0o755 },
    'usr/etc/os-release': { symlink: '../lib/os-release' },
    ...opts.extra,
  };
}

/** Options of {@link makeTestSysroot}. */
export interface TestSysrootOptions {
  /** OS name (`ostree admin os-init`). Default `testos`. */
  osname?: string;
  /** Ref the OS commits go to. Default `<osname>/stable`. */
  ref?: string;
  /** Deployments to make at once (each of a new commit, version 1, 2, …). Default 2. */
  deployments?: number;
  /** `ostree admin init-fs --modern`. Default true. */
  modern?: boolean;
  /** Passed to {@link osTreeSpec} for every commit (id defaults to osname). */
  tree?: OsTreeOptions;
}

/** A sysroot built by {@link makeTestSysroot}. */
export interface TestSysroot {
  /** The sysroot directory. */
  path: string;
  osname: string;
  ref: string;
  /** `<path>/ostree/repo`. */
  repoPath: string;
  /** Checksums of the OS commits made so far, oldest first. */
  commits: string[];
  /** Commits a new OS version to `ref` with the CLI (metadata `version`); returns its checksum. */
  commitOs(versionId: string, tree?: OsTreeOptions): string;
  /** `ostree admin deploy` of `rev` (default `ref`); `retain` keeps every older deployment. */
  deploy(rev?: string, opts?: { retain?: boolean }): void;
}

/**
 * Builds an OSTree sysroot in `dir` with the real CLI: `admin init-fs`, `admin os-init`, OS
 * commits into `dir/ostree/repo` and `admin deploy` (no bootloader needed: libostree writes
 * plain BLS entries under `dir/boot`). Needs root. Nothing is booted.
 * @example
 * ```ts
 * const s = makeTestSysroot(tempDir(), { osname: 'testos' }); // two deployments, newest first
 * s.commitOs('3'); s.deploy(undefined, { retain: true });   // a third
 * ```
 */
export function makeTestSysroot(dir: string, opts: TestSysrootOptions = {}): TestSysroot {
  const osname = opts.osname ?? 'testos';
  const ref = opts.ref ?? `${osname}/stable`;
  mkdirSync(dir, { recursive: true });
  ostreeOk(['admin', 'init-fs', ...(opts.modern === false ? [] : ['--modern']), dir]);
  ostreeOk(['admin', 'os-init', `--sysroot=${dir}`, osname]);
  const repoPath = join(dir, 'ostree', 'repo');
  const s: TestSysroot = {
    path: dir,
    osname,
    ref,
    repoPath,
    commits: [],
    commitOs(versionId, tree = opts.tree) {
      const work = mkdtempSync(join(tmpdir(), 'ostree-sysext-ostree-'));
      try {
        makeTree(work, osTreeSpec({ id: osname, ...tree, versionId }));
        const out = ostreeOk([
          `--repo=${repoPath}`,
          'commit',
          `--branch=${ref}`,
          `--tree=dir=${work}`,
          `--subject=${osname} ${versionId}`,
          `--add-metadata-string=version=${versionId}`,
        ]);
        const checksum = out.trim();
        s.commits.push(checksum);
        return checksum;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    deploy(rev = ref, o = {}) {
      ostreeOk(['admin', 'deploy', `--sysroot=${dir}`, `--os=${osname}`, '--karg-none', ...(o.retain ? ['--retain'] : []), rev]);
    },
  };
  for (let i = 1; i <= (opts.deployments ?? 2); i++) {
    s.commitOs(String(i));
    s.deploy(ref, { retain: true });
  }
  return s;
}
