// Captures the visible /usr and /opt of a tree as a sorted manifest, and diffs two manifests.
//
// The same capture code runs on a live overlay (a node process started inside the private
// mount namespace, see MANIFEST_SCRIPT) and on a directory outside it; a TreeReader (the
// library's merged view) is captured by manifestFromReader with the same rules.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TreeEntry, TreeReader } from '../../lib/tree/reader.js';

/** One visible entry. */
export interface ManifestEntry {
  /** Relative to the tree root, `/`-separated (`usr/share/x`). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** `st_mode & 0o7777` (setuid, setgid and sticky included). */
  mode: number;
  /** `null` when the source cannot tell (a reader that does not report owners). */
  uid: number | null;
  gid: number | null;
  /** Extended attributes, name → hex value, without `trusted.overlay.*` and `security.*`; `null` when unknown. */
  xattrs: Record<string, string> | null;
  /** Symlink target as stored. */
  target?: string;
  /** sha256 of a regular file's content. */
  sha256?: string;
  /** For `other`: `char MAJ:MIN`, `block MAJ:MIN`, `fifo` or `socket`. */
  special?: string;
}

/** A captured tree. */
export interface Manifest {
  entries: ManifestEntry[];
  /**
   * The top paths captured and, for a top that is a symlink, where it resolved inside the
   * root (`opt` → `var/opt`); `null` for a missing top or one that does not resolve to a directory.
   */
  tops: Record<string, string | null>;
  /**
   * systemd's own marker, recorded but left out of `entries`: the lines of
   * `<hierarchy>/.systemd-sysext/extensions` for each hierarchy path that has one.
   */
  systemd: Record<string, string[]>;
  /**
   * Names readdir listed but lstat did not find (ENOENT): on a live overlay, whiteouts inside a
   * directory the overlay does not merge with a lower layer. Left out of `entries`.
   */
  ghosts?: string[];
}

/** Paths whose entries are recorded in `Manifest.systemd`, not compared. */
export const SYSTEMD_MARKER = '.systemd-sysext';

/** xattrs left out of manifests: overlayfs' own (hidden by the overlay) and security.* (labels). */
export function isComparedXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('security.');
}

/**
 * A standalone ES module, run as `node SCRIPT JOBS_JSON`: JOBS_JSON is a file holding
 * `[{ root, tops, out }]`; for each job it writes the manifest JSON of `tops` under `root`
 * to `out`. Uses getfattr (one call per top) for xattrs. Symlinks are never followed except
 * a top that is a symlink, which is chased inside `root` the way systemd-sysext chases its
 * hierarchies (CHASE_PREFIX_ROOT), and the resolved directory is captured under its real path.
 */
export const MANIFEST_SCRIPT = String.raw`
import { lstatSync, readdirSync, readlinkSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const MARKER = '.systemd-sysext';
const compared = (n) => !n.startsWith('trusted.overlay.') && !n.startsWith('security.');

function unescapeGetfattr(s) {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

function xattrsOf(abs) {
  // path -> { name: hex }
  const out = new Map();
  let text = '';
  try {
    text = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', abs], {
      encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20,
    });
  } catch (e) {
    text = e.stdout ?? '';
  }
  let cur = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) { cur = unescapeGetfattr(line.slice(8)); out.set(cur, {}); continue; }
    const eq = line.indexOf('=');
    if (cur === null || line === '' || line.startsWith('#')) continue;
    const name = eq > 0 ? line.slice(0, eq) : line;
    let value = eq > 0 ? line.slice(eq + 1) : '';
    if (value.startsWith('0x')) value = value.slice(2);
    else if (value.startsWith('"')) value = Buffer.from(JSON.parse(value), 'latin1').toString('hex');
    else if (value.startsWith('0s')) value = Buffer.from(value.slice(2), 'base64').toString('hex');
    if (compared(name)) out.get(cur)[name] = value;
  }
  return out;
}

function chase(root, rel) {
  const todo = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done = [];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift();
    if (part === '..') { done.pop(); continue; }
    let st;
    try { st = lstatSync(join(root, ...done, part)); } catch { return null; }
    if (st.isSymbolicLink()) {
      if (++hops > 32) return null;
      const t = readlinkSync(join(root, ...done, part));
      if (t.startsWith('/')) done.length = 0;
      todo.unshift(...t.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    if (!st.isDirectory()) return null;
    done.push(part);
  }
  return done.join('/');
}

function entry(root, rel, xa) {
  const abs = join(root, rel);
  const st = lstatSync(abs);
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  const e = { path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs: xa.get(abs) ?? {} };
  if (type === 'symlink') e.target = readlinkSync(abs);
  if (type === 'file') e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
  if (type === 'other') {
    const maj = Number((BigInt(st.rdev) >> 8n) & 0xfffn), min = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
    e.special = st.isCharacterDevice() ? 'char ' + maj + ':' + min : st.isBlockDevice() ? 'block ' + maj + ':' + min : st.isFIFO() ? 'fifo' : 'socket';
  }
  return e;
}

function capture(root, tops) {
  const entries = new Map();
  const systemd = {};
  const resolved = {};
  const ghosts = [];
  const walk = (rel, xa) => {
    const e = entry(root, rel, xa);
    entries.set(rel, e);
    if (e.type !== 'dir') return;
    for (const name of readdirSync(join(root, rel)).sort()) {
      const child = rel + '/' + name;
      if (name === MARKER && !rel.includes('/') || name === MARKER && Object.values(resolved).includes(rel)) {
        try { systemd[rel] = readFileSync(join(root, child, 'extensions'), 'utf8').split('\n').filter((l) => l !== ''); }
        catch { systemd[rel] = []; }
        continue;
      }
      try { lstatSync(join(root, child)); } catch (e) {
        // Listed but not there: a whiteout in a directory the overlay does not merge.
        if (e.code === 'ENOENT') { ghosts.push(child); continue; }
        throw e;
      }
      walk(child, xa);
    }
  };
  for (const top of tops) {
    let st = null;
    try { st = lstatSync(join(root, top)); } catch {}
    if (st === null) { resolved[top] = null; continue; }
    const real = st.isSymbolicLink() ? chase(root, top) : st.isDirectory() ? top : null;
    resolved[top] = real;
    if (real !== null && real !== top) {
      // the link itself is an entry of the tree
      entries.set(top, entry(root, top, new Map()));
    }
    const start = real ?? top;
    walk(start, xattrsOf(join(root, start)));
  }
  return { entries: [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), tops: resolved, systemd, ghosts };
}

export { capture };

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const jobs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  for (const j of jobs) {
    let result;
    try { result = capture(j.root, j.tops); } catch (e) { result = { error: String(e && e.stack || e) }; }
    writeFileSync(j.out, JSON.stringify(result));
  }
}
`;

/** Writes {@link MANIFEST_SCRIPT} into `dir` and returns its path. */
export function writeManifestScript(dir: string): string {
  const path = join(dir, 'capture-manifest.mjs');
  if (!written.has(path)) {
    writeFileSync(path, MANIFEST_SCRIPT);
    written.add(path);
  }
  return path;
}
const written = new Set<string>();

/**
 * Captures `tops` (default `usr`, `opt`) of a directory on disk with the same code the live
 * runs use (the script, imported in this process).
 */
export async function manifestFromDirectory(scriptDir: string, root: string, tops: readonly string[] = ['usr', 'opt']): Promise<Manifest> {
  const script = writeManifestScript(scriptDir);
  const mod = (await import(/* @vite-ignore */ pathToFileURL(script).href)) as { capture: (root: string, tops: readonly string[]) => Manifest };
  return mod.capture(root, tops);
}

/** Extra per-entry fields a reader may report beyond {@link TreeEntry} (owner, xattrs). */
interface RichEntry extends TreeEntry {
  uid?: number;
  gid?: number;
  xattrs?: Record<string, Buffer | Uint8Array | string> | Map<string, Buffer | Uint8Array | string>;
  rdev?: number;
  special?: string;
}

function hexOf(v: Buffer | Uint8Array | string): string {
  return typeof v === 'string' ? Buffer.from(v, 'utf8').toString('hex') : Buffer.from(v).toString('hex');
}

async function chaseReader(reader: TreeReader, rel: string): Promise<string | null> {
  const todo = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  for (let hops = 0; todo.length > 0;) {
    const part = todo.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const e = await reader.stat([...done, part].join('/'));
    if (e === null) return null;
    if (e.type === 'symlink') {
      if (++hops > 32 || e.target === undefined) return null;
      if (e.target.startsWith('/')) done.length = 0;
      todo.unshift(...e.target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    if (e.type !== 'dir') return null;
    done.push(part);
  }
  return done.join('/');
}

/**
 * Captures `tops` of a {@link TreeReader} with the rules of {@link MANIFEST_SCRIPT}. Owners and
 * xattrs come from the entries' `uid`/`gid`/`xattrs` fields when the reader reports them, else
 * they are recorded as `null` (and differ from any real value).
 */
export async function manifestFromReader(reader: TreeReader, tops: readonly string[] = ['usr', 'opt']): Promise<Manifest> {
  const entries = new Map<string, ManifestEntry>();
  const systemd: Record<string, string[]> = {};
  const resolved: Record<string, string | null> = {};
  const toEntry = async (e: RichEntry, path: string): Promise<ManifestEntry> => {
    const type = e.type === 'special' ? 'other' : e.type;
    let xattrs: Record<string, string> | null = null;
    const readXattrs = (reader as { xattrs?: (p: string) => Promise<Record<string, Buffer> | null> }).xattrs;
    if (e.xattrs === undefined && typeof readXattrs === 'function') e = { ...e, xattrs: (await readXattrs.call(reader, path)) ?? {} };
    if (e.xattrs !== undefined) {
      xattrs = {};
      const pairs = e.xattrs instanceof Map ? [...e.xattrs.entries()] : Object.entries(e.xattrs);
      for (const [k, v] of pairs) if (isComparedXattr(k)) xattrs[k] = hexOf(v);
    }
    const m: ManifestEntry = { path, type, mode: e.mode & 0o7777, uid: e.uid ?? null, gid: e.gid ?? null, xattrs };
    if (type === 'symlink') m.target = e.target ?? '';
    if (type === 'file') {
      const data = await reader.readFile(path);
      m.sha256 = data === null ? '(unreadable)' : createHash('sha256').update(data).digest('hex');
    }
    if (type === 'other') m.special = e.special ?? 'unknown';
    return m;
  };
  const walkDir = async (path: string, top: boolean): Promise<void> => {
    const list = await reader.list(path);
    for (const child of list ?? []) {
      const cpath = `${path}/${child.name}`;
      if (child.name === SYSTEMD_MARKER && top) {
        const data = await reader.readFile(`${cpath}/extensions`);
        systemd[path] =
          data === null
            ? []
            : data
                .toString('utf8')
                .split('\n')
                .filter((l) => l !== '');
        continue;
      }
      entries.set(cpath, await toEntry(child as RichEntry, cpath));
      if (child.type === 'dir') await walkDir(cpath, false);
    }
  };
  for (const top of tops) {
    const st = (await reader.stat(top)) as RichEntry | null;
    if (st === null) {
      resolved[top] = null;
      continue;
    }
    const real = st.type === 'symlink' ? await chaseReader(reader, top) : st.type === 'dir' ? top : null;
    resolved[top] = real;
    entries.set(top, await toEntry(st, top));
    if (real === null) continue;
    if (real !== top) {
      const rst = (await reader.stat(real)) as RichEntry;
      entries.set(real, await toEntry(rst, real));
    }
    await walkDir(real, true);
  }
  return { entries: [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), tops: resolved, systemd };
}

/** What to leave out of a comparison. */
export interface DiffOptions {
  /** Ignore uid/gid (a bare-user-only repository cannot store them). */
  ignoreOwners?: boolean;
  /** Ignore xattrs (a bare-user-only repository cannot store them). */
  ignoreXattrs?: boolean;
  /** Paths whose mode may differ (reported by the library as not representable). */
  modeMayDiffer?: ReadonlySet<string>;
  /** Names for the two sides in messages. Default `expected`, `actual`. */
  names?: [string, string];
}

function fmtMode(m: number): string {
  return `0${m.toString(8).padStart(4, '0')}`;
}

function describeEntry(e: ManifestEntry): string {
  const parts = [e.type, fmtMode(e.mode), `${e.uid ?? '?'}:${e.gid ?? '?'}`];
  if (e.target !== undefined) parts.push(`-> ${e.target}`);
  if (e.sha256 !== undefined) parts.push(`sha256 ${e.sha256.slice(0, 12)}`);
  if (e.special !== undefined) parts.push(e.special);
  if (e.xattrs !== null && Object.keys(e.xattrs).length > 0) parts.push(`xattrs ${Object.keys(e.xattrs).sort().join(',')}`);
  return parts.join(' ');
}

function xattrText(x: Record<string, string> | null): string {
  if (x === null) return '(not reported)';
  const keys = Object.keys(x).sort();
  return keys.length === 0 ? '{}' : `{${keys.map((k) => `${k}=${Buffer.from(x[k]!, 'hex').toString('latin1')}`).join(', ')}}`;
}

/** Human-readable differences between two manifests (empty when they agree), sorted by path. */
export function diffManifests(expected: Manifest, actual: Manifest, opts: DiffOptions = {}): string[] {
  const [en, an] = opts.names ?? ['expected', 'actual'];
  const out: string[] = [];
  for (const top of new Set([...Object.keys(expected.tops), ...Object.keys(actual.tops)])) {
    if (expected.tops[top] !== actual.tops[top]) {
      out.push(`${top}: resolves to ${JSON.stringify(expected.tops[top] ?? null)} (${en}) vs ${JSON.stringify(actual.tops[top] ?? null)} (${an})`);
    }
  }
  const a = new Map(actual.entries.map((e) => [e.path, e]));
  const e = new Map(expected.entries.map((x) => [x.path, x]));
  const paths = [...new Set([...a.keys(), ...e.keys()])].sort();
  for (const p of paths) {
    const x = e.get(p);
    const y = a.get(p);
    if (x === undefined) {
      out.push(`${p}: only in ${an} (${describeEntry(y!)})`);
      continue;
    }
    if (y === undefined) {
      out.push(`${p}: only in ${en} (${describeEntry(x)})`);
      continue;
    }
    if (x.type !== y.type) {
      out.push(`${p}: type ${x.type} (${en}) vs ${y.type} (${an})`);
      continue;
    }
    const d: string[] = [];
    if (x.mode !== y.mode && !opts.modeMayDiffer?.has(p)) d.push(`mode ${fmtMode(x.mode)} vs ${fmtMode(y.mode)}`);
    if (!opts.ignoreOwners && (x.uid !== y.uid || x.gid !== y.gid)) d.push(`owner ${x.uid ?? '?'}:${x.gid ?? '?'} vs ${y.uid ?? '?'}:${y.gid ?? '?'}`);
    if (!opts.ignoreXattrs && xattrText(x.xattrs) !== xattrText(y.xattrs)) d.push(`xattrs ${xattrText(x.xattrs)} vs ${xattrText(y.xattrs)}`);
    if (x.target !== y.target) d.push(`target ${JSON.stringify(x.target)} vs ${JSON.stringify(y.target)}`);
    if (x.sha256 !== y.sha256) d.push(`content sha256 ${x.sha256?.slice(0, 12)} vs ${y.sha256?.slice(0, 12)}`);
    if (x.special !== y.special) d.push(`device ${x.special} vs ${y.special}`);
    if (d.length > 0) out.push(`${p}: ${d.join('; ')} (${en} vs ${an})`);
  }
  return out;
}
