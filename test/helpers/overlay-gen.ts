// Scenarios for the overlay differential test: a base OS tree and 1–4 extension trees, seeded
// (same seed, same trees) or hand-written, one per overlay rule of issue 11; and writing them
// to disk (owners, modes, user/trusted xattrs, whiteouts, opaque directories).
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Owner, mode and xattrs of a node (defaults: 0:0, 0644 files / 0755 dirs, none). */
interface Meta {
  mode?: number;
  uid?: number;
  gid?: number;
  /** name → value (utf8). */
  xattrs?: Record<string, string>;
}

export interface FileNode extends Meta {
  type: 'file';
  content: string;
}
export interface DirNode extends Meta {
  type: 'dir';
  /** `trusted.overlay.opaque=y`. */
  opaque?: boolean;
  children: Record<string, Node>;
}
export interface SymlinkNode {
  type: 'symlink';
  target: string;
  uid?: number;
  gid?: number;
}
/** An overlayfs whiteout: a character device 0:0. */
export interface WhiteoutNode {
  type: 'whiteout';
}
export type Node = FileNode | DirNode | SymlinkNode | WhiteoutNode;

/** One extension: its name (directory name under var/lib/extensions) and tree. */
export interface ExtensionSpec {
  name: string;
  tree: DirNode;
}

export interface Scenario {
  id: string;
  /** The seed for generated scenarios. */
  seed?: number;
  /** What it tests, for failure messages. */
  description: string;
  base: DirNode;
  extensions: ExtensionSpec[];
  /** `chattr +i` on the root directory (as an OSTree deployment root is). */
  immutableRoot?: boolean;
  /** Names systemd is expected to ignore (checked against the live run: a scenario sanity check). */
  expectSkipped?: string[];
  /** Groups of names systemd's version compare finds equal (their order is undefined). */
  expectAmbiguous?: string[][];
}

// ---- builders ----

export const file = (content: string, meta: Meta = {}): FileNode => ({ type: 'file', content, ...meta });
export const dir = (children: Record<string, Node> = {}, meta: Meta & { opaque?: boolean } = {}): DirNode => ({ type: 'dir', children, ...meta });
export const link = (target: string): SymlinkNode => ({ type: 'symlink', target });
export const whiteout = (): WhiteoutNode => ({ type: 'whiteout' });

export const OS_RELEASE = 'ID=debian\nVERSION_ID=12\n';

/** A base: `usr/lib/os-release` (Debian 12) merged with `usr` children and other top-level entries. */
export function baseTree(usr: Record<string, Node> = {}, top: Record<string, Node> = {}, usrMeta: Meta = {}): DirNode {
  const lib = usr.lib?.type === 'dir' ? usr.lib : dir();
  lib.children['os-release'] = file(OS_RELEASE);
  return dir({ etc: dir(), var: dir({ lib: dir() }), ...top, usr: dir({ ...usr, lib }, usrMeta) });
}

/** An extension with a valid `usr/lib/extension-release.d/extension-release.NAME`, unless `release` says otherwise. */
export function extTree(
  name: string,
  usr: Record<string, Node> = {},
  top: Record<string, Node> = {},
  opts: { release?: string | null; usrMeta?: Meta & { opaque?: boolean } } = {},
): ExtensionSpec {
  const lib = usr.lib?.type === 'dir' ? usr.lib : dir();
  if (opts.release !== null) {
    const rd = lib.children['extension-release.d']?.type === 'dir' ? (lib.children['extension-release.d'] as DirNode) : dir();
    rd.children[`extension-release.${name}`] = file(opts.release ?? OS_RELEASE);
    lib.children['extension-release.d'] = rd;
  }
  return { name, tree: dir({ ...top, usr: dir({ ...usr, lib }, opts.usrMeta ?? {}) }) };
}

// ---- writing to disk ----

/** Collects what node's fs cannot do (mknod, xattrs) so that a whole batch needs one shell. */
export class TreeWriter {
  readonly #whiteouts: string[] = [];
  readonly #xattrDump: string[] = [];
  readonly #immutable: string[] = [];

  /** Writes `node` at `path` (which must not exist). */
  write(path: string, node: Node): void {
    switch (node.type) {
      case 'file':
        writeFileSync(path, node.content);
        lchownSync(path, node.uid ?? 0, node.gid ?? 0);
        chmodSync(path, node.mode ?? 0o644);
        this.#xattrs(path, node.xattrs, false);
        break;
      case 'dir':
        mkdirSync(path);
        for (const [name, child] of Object.entries(node.children)) this.write(join(path, name), child);
        lchownSync(path, node.uid ?? 0, node.gid ?? 0);
        chmodSync(path, node.mode ?? 0o755);
        this.#xattrs(path, node.xattrs, node.opaque === true);
        break;
      case 'symlink':
        symlinkSync(node.target, path);
        lchownSync(path, node.uid ?? 0, node.gid ?? 0);
        break;
      case 'whiteout':
        this.#whiteouts.push(path);
        break;
    }
  }

  /** Marks a directory to get `chattr +i` at {@link TreeWriter.finish}. */
  immutable(path: string): void {
    this.#immutable.push(path);
  }

  #xattrs(path: string, xattrs: Record<string, string> | undefined, opaque: boolean): void {
    const pairs = Object.entries(xattrs ?? {});
    if (opaque) pairs.push(['trusted.overlay.opaque', 'y']);
    if (pairs.length === 0) return;
    if (/[\n\\]/.test(path)) throw new Error(`unsupported path for setfattr --restore: ${path}`);
    this.#xattrDump.push(`# file: ${path}`, ...pairs.map(([k, v]) => `${k}=0x${Buffer.from(v, 'utf8').toString('hex')}`), '');
  }

  /** Creates the whiteouts, sets the xattrs and the immutable bits, in one shell. */
  finish(scratch: string): void {
    const dump = join(scratch, `xattrs-${process.pid}-${Date.now()}.dump`);
    const list = join(scratch, `whiteouts-${process.pid}-${Date.now()}.list`);
    writeFileSync(dump, this.#xattrDump.join('\n') + '\n');
    writeFileSync(list, this.#whiteouts.map((p) => `${p}\0`).join(''));
    const script = [
      'set -e',
      'while IFS= read -r -d "" p; do mknod -- "$p" c 0 0; done < "$2"',
      '[ ! -s "$1" ] || setfattr --restore="$1"',
      'shift 2',
      'for d; do chattr +i -- "$d"; done',
    ].join('\n');
    const r = spawnSync('bash', ['-c', script, 'tree-writer', dump, list, ...this.#immutable], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`writing trees failed: ${r.stderr}`);
    this.#whiteouts.length = 0;
    this.#xattrDump.length = 0;
    this.#immutable.length = 0;
  }
}

// ---- seeded generation ----

/** Deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Names that systemd's strverscmp_improved orders strictly (no two compare equal).
const EXT_NAMES = ['alpha', 'beta', 'delta', 'gamma', 'tool-1.2', 'tool-1.10', 'z9', 'z10', '50-extra'];
const NAMES = ['a', 'b', 'c', 'd', 'conf.d', 'x'];
const DIR_MODES = [0o755, 0o755, 0o750, 0o700, 0o775, 0o1777, 0o2755, 0o555];
const FILE_MODES = [0o644, 0o644, 0o600, 0o755, 0o4755, 0o444, 0o640, 0o2711];
const OWNERS: [number, number][] = [
  [0, 0],
  [0, 0],
  [1000, 1000],
  [1000, 0],
  [0, 1001],
  [65534, 65534],
];

class Gen {
  readonly rand: () => number;
  constructor(seed: number) {
    this.rand = mulberry32(seed);
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)] as T;
  }
  meta(kind: 'dir' | 'file', weird: number): Meta {
    const m: Meta = {};
    if (this.chance(weird)) m.mode = this.pick(kind === 'dir' ? DIR_MODES : FILE_MODES);
    if (this.chance(weird)) [m.uid, m.gid] = this.pick(OWNERS);
    if (this.chance(weird)) m.xattrs = { [`user.${this.pick(['k', 'tag', 'origin'])}`]: this.pick(['1', 'blue', `v${this.int(0, 99)}`]) };
    return m;
  }
  content(label: string): string {
    return `${label} ${this.int(0, 3)}\n`;
  }
  symlinkTarget(): string {
    return this.pick(['a', '../a', '../../lib/a', '/etc/abs', '/usr/share/a', 'nowhere/x', '../..', '.']);
  }
  subtree(depth: number, label: string): Record<string, Node> {
    const children: Record<string, Node> = {};
    const n = this.int(1, depth === 0 ? 4 : 3);
    for (let i = 0; i < n; i++) {
      const name = this.pick(NAMES);
      if (name in children) continue;
      const r = this.rand();
      if (r < 0.35 && depth < 3) children[name] = dir(this.subtree(depth + 1, label), this.meta('dir', 0.2));
      else if (r < 0.88) children[name] = file(this.content(`${label}:${name}`), this.meta('file', 0.2));
      else children[name] = link(this.symlinkTarget());
    }
    return children;
  }
}

/** Every path under `node` (relative, `/`-joined), with its node. */
function paths(node: DirNode, prefix: string, out: Map<string, Node>): Map<string, Node> {
  for (const [name, child] of Object.entries(node.children)) {
    const p = prefix === '' ? name : `${prefix}/${name}`;
    out.set(p, child);
    if (child.type === 'dir') paths(child, p, out);
  }
  return out;
}

const PROTECTED = /^(usr|opt|usr\/lib|usr\/lib\/os-release|usr\/lib\/extension-release\.d(\/.*)?|usr\/share\/opt-stuff)$/;

/** Puts `node` at `path` in `tree`, creating plain parent dirs; false when a parent is not a directory here. */
function put(tree: DirNode, path: string, node: Node): boolean {
  const parts = path.split('/');
  let cur = tree;
  for (const part of parts.slice(0, -1)) {
    const next = cur.children[part];
    if (next === undefined) cur = cur.children[part] = dir();
    else if (next.type === 'dir') cur = next;
    else return false;
  }
  cur.children[parts.at(-1)!] = node;
  return true;
}

/**
 * A seeded scenario: a Debian-12 base with random /usr subtrees, symlinked directories
 * (relative and absolute), /opt present, missing, or a symlink to var/opt; and 1–4 extensions
 * that put files, directories (odd modes, owners, user.* xattrs), symlinks, whiteouts and
 * opaque directories over paths of the base and of the other extensions, at every depth.
 */
export function generateScenario(seed: number): Scenario {
  const g = new Gen(seed);
  const usr: Record<string, Node> = {
    lib: dir(g.subtree(1, 'base-lib')),
    share: dir(g.subtree(1, 'base-share')),
    bin: dir(g.subtree(2, 'base-bin')),
  };
  if (g.chance(0.5)) usr.libexec = dir(g.subtree(1, 'base-libexec'), g.meta('dir', 0.3));
  const share = usr.share as DirNode;
  // Symlinked directories in the base, relative and absolute, that extensions ship as dirs.
  const top: Record<string, Node> = {};
  if (g.chance(0.6)) {
    share.children.realdir = dir({ inreal: file('base realdir\n') });
    share.children.lnkrel = link(g.pick(['realdir', '../share/realdir', './realdir']));
  }
  if (g.chance(0.6)) {
    share.children.lnkabs = link(g.pick(['/etc/abs', '/usr/share/realdir', '/nonexistent/dir']));
    top.etc = dir({ abs: dir({ hostfile: file('in /etc/abs\n') }) });
  }
  const optKind = g.pick(['dir', 'dir', 'absent', 'absent', 'symlink', 'symlink-missing', 'symlink-abs', 'empty'] as const);
  const optContent = (): DirNode => dir({ app: dir({ f: file(g.content('base-opt')) }), [g.pick(NAMES)]: file(g.content('base-opt2')) }, g.meta('dir', 0.3));
  if (optKind === 'dir') top.opt = optContent();
  else if (optKind === 'empty') top.opt = dir();
  else if (optKind !== 'absent') {
    top.opt = link(optKind === 'symlink-abs' ? '/var/opt' : 'var/opt');
    top.var = dir({ lib: dir(), ...(optKind === 'symlink-missing' ? {} : { opt: optContent() }) });
  }
  const base = baseTree(usr, top, g.meta('dir', 0.3));

  // Paths extensions aim at: the base's (opt content under var/opt seen as opt/...), then theirs.
  const known = new Set<string>();
  for (const [p] of paths(base, '', new Map())) {
    const q = p.startsWith('var/opt/') ? p.slice(4) : p;
    if ((q.startsWith('usr/') || q.startsWith('opt/')) && !PROTECTED.test(q)) known.add(q);
  }
  const dirsKnown = (): string[] => ['usr/share', 'usr/bin', 'usr/lib', ...[...known].filter((p) => !p.includes('.'))];

  const count = g.int(1, 4);
  const names = [...EXT_NAMES].sort(() => g.rand() - 0.5).slice(0, count);
  const extensions: ExtensionSpec[] = [];
  const expectSkipped: string[] = [];
  for (const name of names) {
    let release: string | undefined;
    if (extensions.length > 0 && g.chance(0.1)) {
      release = g.pick(['ID=fedora\nVERSION_ID=12\n', 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=portable\n']);
      expectSkipped.push(name);
    }
    const ext = extTree(name, {}, {}, { ...(release === undefined ? {} : { release }), usrMeta: g.meta('dir', 0.2) });
    const tree = ext.tree;
    // /opt: content (shared names so extensions collide), or a symlink into the extension's usr.
    let optIsDir = false;
    const or = g.rand();
    if (or < 0.4) {
      tree.children.opt = dir({ app: dir({ f: file(g.content(`${name}-opt`)), [name]: file('own\n') }, g.meta('dir', 0.3)) }, g.meta('dir', 0.3));
      optIsDir = true;
    } else if (or < 0.55) {
      put(tree, 'usr/share/opt-stuff/app/f', file(g.content(`${name}-optlink`)));
      tree.children.opt = link(g.pick(['usr/share/opt-stuff', '/usr/share/opt-stuff']));
    }
    const ops = g.int(3, 10);
    for (let i = 0; i < ops; i++) {
      const fresh = known.size === 0 || g.chance(0.35);
      let path = fresh ? `${g.pick(dirsKnown())}/${g.pick([...NAMES, name])}` : g.pick([...known]);
      if (path.startsWith('opt/') && !optIsDir) path = `usr/share/${path.slice(4)}`;
      if (PROTECTED.test(path)) continue;
      const r = g.rand();
      let node: Node;
      if (r < 0.3) node = file(g.content(`${name}:${path}`), g.meta('file', 0.25));
      else if (r < 0.55) node = dir(g.subtree(Math.min(3, path.split('/').length - 1), name), g.meta('dir', 0.3));
      else if (r < 0.68) node = link(g.symlinkTarget());
      else if (r < 0.8) node = whiteout();
      else if (r < 0.9) node = dir(g.subtree(2, `${name}-opaque`), { ...g.meta('dir', 0.3), opaque: true });
      else node = dir({ [name]: file('meta\n') }, g.meta('dir', 1));
      if (!put(tree, path, node)) continue;
      for (const [p] of paths(tree, '', new Map())) if ((p.startsWith('usr/') || p.startsWith('opt/')) && !PROTECTED.test(p)) known.add(p);
      known.add(path);
    }
    extensions.push(ext);
  }
  return {
    id: `seed-${seed}`,
    seed,
    description: `generated: ${count} extension(s) ${names.join(', ')}; base /opt ${optKind}`,
    base,
    extensions,
    expectSkipped,
  };
}

// ---- hand-written scenarios, one per rule of issue 11 ----

export function handWrittenScenarios(): Scenario[] {
  const s: Scenario[] = [];
  const add = (id: string, description: string, sc: Omit<Scenario, 'id' | 'description'>) => s.push({ id, description, ...sc });

  add('type-replacements', 'file over dir, dir over file, symlink over dir, dir over symlink, at depths 1–4, against the base and lower extensions', {
    base: baseTree({
      games: dir({ g: file('base games\n') }), // depth 1: replaced by a file
      share: dir({
        x1: dir({ deep: dir({ deeper: dir({ f: file('b\n') }), g: file('b\n') }) }),
        x2: dir({ f: file('base x2\n') }),
        x3: file('base file x3\n'),
        x4: dir({ basefile: file('b\n') }),
        x5: dir({ sub: dir({ base: file('b\n') }) }),
        target: dir({ t: file('t\n') }),
        d4: dir({ a: dir({ b: dir({ c: file('base depth4\n'), keep: file('k\n') }) }) }),
      }),
      sbin: file('base sbin file\n'), // depth 1: replaced by a dir
    }),
    extensions: [
      extTree('aa', {
        games: file('aa games file\n'),
        sbin: dir({ tool: file('aa tool\n') }),
        share: dir({
          x1: dir({ deep: dir({ deeper: file('aa file over dir\n') }) }),
          x2: link('../share/target'),
          x3: dir({ a: file('aa\n') }),
          x5: dir({ sub: link('/nonexistent') }),
          d4: dir({ a: dir({ b: dir({ c: dir({ now: file('aa dir over file at depth 4\n') }) }) }) }),
        }),
      }),
      extTree('mm', { share: dir({ x4: file('mm file over base dir\n'), x5: dir({ sub: dir({ mid: file('m\n') }) }) }) }),
      extTree('zz', {
        share: dir({ x4: dir({ z: file('zz dir over mm file\n') }), x2: dir({ z: file('zz dir over aa symlink\n') }), d4: dir({ a: link('../x3') }) }),
      }),
    ],
  });

  add('symlinked-dirs-in-base', 'base symlinks to directories (absolute, relative, with ..) with extension directories of the same name', {
    base: baseTree(
      {
        share: dir({
          x: link('/etc/groff'),
          y: link('realdir'),
          z: link('../lib/zz'),
          realdir: dir({ base: file('rd\n') }),
          dangling: link('/does/not/exist'),
        }),
        lib: dir({ zz: dir({ basezz: file('zz\n') }) }),
      },
      { etc: dir({ groff: dir({ hf: file('host etc\n') }) }) },
    ),
    extensions: [
      extTree('ext', { share: dir({ x: dir({ f: file('f\n') }), y: dir({ g: file('g\n') }), z: dir({ h: file('h\n') }), dangling: dir({ d: file('d\n') }) }) }),
    ],
  });

  add('symlinks-in-extensions', 'an extension opt symlinked into its usr, absolute, relative, .. and dangling links', {
    base: baseTree({ share: dir({ 'opt-stuff': dir({ HOSTONLY: file('host\n') }) }) }, { opt: dir({ basefile: file('b\n') }) }),
    extensions: [
      extTree(
        'ext',
        {
          share: dir({ 'opt-stuff': dir({ app: dir({ f: file('hi\n') }) }) }),
          lib: dir({ 'a.conf': link('/etc/a.conf'), up: link('../../..'), rel: link('../share/opt-stuff'), gone: link('missing/file') }),
        },
        { opt: link('usr/share/opt-stuff') },
      ),
      extTree('ext2', { share: dir({ more: file('m\n') }) }, { opt: link('/usr/share/opt-stuff') }),
    ],
  });

  add('directory-metadata', "mode, owner and xattrs of merged dirs: topmost layer; the hierarchy roots are systemd's own 0755 root:root", {
    base: baseTree(
      {
        share: dir({
          d: dir({ b: file('b\n') }, { xattrs: { 'user.base': '1' } }),
          baseonly: dir({ x: file('x\n') }, { mode: 0o711, uid: 5, gid: 5, xattrs: { 'user.bo': '1' } }),
        }),
      },
      { opt: dir({ x: file('x\n') }, { mode: 0o711, uid: 7, gid: 7 }) },
      { mode: 0o700, xattrs: { 'user.base': 'b' } },
    ),
    extensions: [
      extTree(
        'ext',
        { share: dir({ d: dir({ e: file('e\n') }, { mode: 0o2750, uid: 1000, gid: 1001, xattrs: { 'user.ext': '2' } }) }, { mode: 0o1777 }) },
        { opt: dir({ y: file('y\n') }, { mode: 0o700, uid: 1000, gid: 1000, xattrs: { 'user.optroot': '1' } }) },
        { usrMeta: { mode: 0o750, uid: 1000, gid: 1000, xattrs: { 'user.ext': 'e' } } },
      ),
      extTree('a-lower', { share: dir({ d: dir({ lower: file('l\n') }, { mode: 0o700, uid: 3, gid: 3, xattrs: { 'user.lower': '1' } }) }) }),
    ],
  });

  add('whiteouts', 'char 0:0 whiteouts over a file, a dir and nothing; a higher extension re-adds a whited-out path', {
    base: baseTree({
      share: dir({ dir1: dir({ a: file('x\n') }), gone: file('q\n'), gone2: file('q2\n'), keep: file('k\n'), opq: dir({ keep: file('k\n') }) }),
    }),
    extensions: [
      extTree('ext', {
        share: dir({
          gone: whiteout(),
          dir1: whiteout(),
          nothingbelow: whiteout(),
          gone2: whiteout(),
          // Whiteouts in directories the overlay does not merge: readdir still lists them live.
          newdir: dir({ w: whiteout(), k: file('k\n') }),
          opq: dir({ keep: whiteout(), mine: file('m\n') }, { opaque: true }),
        }),
      }),
      extTree('zzz', { share: dir({ gone: file('back\n') }) }),
    ],
  });

  add('opaque-dirs', 'trusted.overlay.opaque=y hides the layers below; ignored on an extension hierarchy root; an opaque dir over a file', {
    base: baseTree({
      share: dir({ dir2: dir({ b: file('y\n'), c: file('z\n') }), wasfile: file('file\n'), dir3: dir({ k: file('keep\n') }) }),
      bin: dir({ basefile: file('b\n') }),
    }),
    extensions: [
      extTree('low', { share: dir({ dir2: dir({ low: file('low\n') }) }) }),
      extTree(
        'mid',
        {
          share: dir({
            dir2: dir({ new: file('new\n') }, { opaque: true }),
            wasfile: dir({ in: file('in\n') }, { opaque: true }),
            dir3: dir({ n: file('n\n') }, { xattrs: { 'user.overlay.opaque': 'y' } }),
          }),
        },
        {},
        { usrMeta: { opaque: true } },
      ),
      extTree('top', { share: dir({ dir2: dir({ top: file('top\n') }) }) }),
    ],
  });

  add('merge-stops-at-lower-whiteout-or-opaque', 'a dir over a lower whiteout or a lower opaque dir merges down to that layer only', {
    base: baseTree({ share: dir({ w: dir({ basefile: file('b\n') }), o: dir({ basefile: file('b\n') }) }) }),
    extensions: [
      extTree('aa', { share: dir({ w: whiteout(), o: dir({ aafile: file('a\n') }, { opaque: true }) }) }),
      extTree('zz', { share: dir({ w: dir({ new: file('z\n') }), o: dir({ zzfile: file('z\n') }) }) }),
    ],
  });

  add('extension-usr-symlink', 'an extension whose usr is a symlink (usr -> real) is chased inside the extension and merges', {
    base: baseTree({ share: dir({ basefile: file('b\n') }) }),
    extensions: [
      {
        name: 'uu',
        tree: dir({
          real: dir({ lib: dir({ 'extension-release.d': dir({ 'extension-release.uu': file(OS_RELEASE) }) }), share: dir({ uufile: file('u\n') }) }),
          usr: link('real'),
        }),
      },
    ],
  });

  const optExt = (name = 'ext') => extTree(name, { share: dir({ s: file(`${name}\n`) }) }, { opt: dir({ app: dir({ f: file('hi\n') }) }) });
  add('opt-missing-writable-root', "base without /opt: systemd creates the mount point and shows the extension's /opt", {
    base: baseTree(),
    extensions: [optExt()],
  });
  add('opt-missing-immutable-root', 'base without /opt, root immutable: systemd cannot create /opt, /usr still merges', {
    base: baseTree(),
    extensions: [optExt()],
    immutableRoot: true,
  });
  add('opt-symlink-target-missing', 'opt -> var/opt without var/opt: systemd mounts on var/opt (created)', {
    base: baseTree({}, { opt: link('var/opt'), var: dir({ lib: dir() }) }),
    extensions: [optExt()],
  });
  add('opt-symlink-target-present', 'opt -> var/opt with base content there', {
    base: baseTree({}, { opt: link('var/opt'), var: dir({ lib: dir(), opt: dir({ baseapp: dir({ g: file('b\n') }) }) }) }),
    extensions: [optExt()],
  });
  add('opt-symlink-absolute', 'opt -> /var/opt, chased inside the root', {
    base: baseTree({}, { opt: link('/var/opt'), var: dir({ lib: dir(), opt: dir({ baseapp: dir({ g: file('b\n') }) }) }) }),
    extensions: [optExt()],
  });
  add('opt-empty-or-dangling-in-extension', 'an extension whose opt is empty or a dangling symlink contributes no /opt', {
    base: baseTree(),
    extensions: [
      extTree('empty', { share: dir({ e: file('e\n') }) }, { opt: dir() }),
      extTree('dangling', { share: dir({ d: file('d\n') }) }, { opt: link('usr/nonexistent') }),
    ],
  });

  add('ignored-extensions', 'other ID, SYSEXT_SCOPE=portable, no release file, release file of another name: skipped, the rest merges', {
    base: baseTree(),
    extensions: [
      extTree('good', { share: dir({ good: file('g\n') }) }),
      extTree('otherid', { share: dir({ otherid: file('o\n'), good: file('overridden?\n') }) }, {}, { release: 'ID=fedora\nVERSION_ID=12\n' }),
      extTree('portable', { share: dir({ portable: file('p\n') }) }, {}, { release: 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=portable\n' }),
      extTree('norelease', { share: dir({ norelease: file('n\n') }) }, {}, { release: null }),
      (() => {
        const e = extTree('wrongname', { share: dir({ wrongname: file('w\n') }) }, {}, { release: null });
        put(e.tree, 'usr/lib/extension-release.d/extension-release.other', file(OS_RELEASE));
        return e;
      })(),
    ],
    expectSkipped: ['otherid', 'portable', 'norelease', 'wrongname'],
  });

  add('equal-comparing-names', 'a1/a_1 and foo-01/foo-1 compare equal in strverscmp_improved: order undefined, must be reported', {
    base: baseTree(),
    extensions: ['a1', 'a_1', 'foo-01', 'foo-1'].map((n) => extTree(n, { share: dir({ [`only-${n}`]: file(`${n}\n`) }) })),
    expectAmbiguous: [
      ['a1', 'a_1'],
      ['foo-01', 'foo-1'],
    ],
  });

  add('version-order', 'tool-1.2 < tool-1.10 < tool-2 and 9-x < 10-x: the later one wins a shared file', {
    base: baseTree({ share: dir({ who: file('base\n') }) }),
    extensions: ['tool-1.10', 'tool-2', 'tool-1.2', '10-x', '9-x'].map((n) =>
      extTree(n, { share: dir({ who: file(`${n}\n`), [`who-${n[0]}`]: file(`${n}\n`) }) }),
    ),
  });

  add('file-xattrs', 'user.*, trusted.* and user.overlay.* xattrs on files and symlink-free dirs pass through; trusted.overlay.* is hidden', {
    base: baseTree({ share: dir({ bf: file('b\n', { xattrs: { 'user.base': '1' } }) }) }),
    extensions: [
      extTree('ext', {
        share: dir({
          f: file('x\n', { xattrs: { 'user.a': '1', 'trusted.t': '2', 'trusted.overlay.foo': '3', 'user.overlay.x': '4' } }),
          bf: file('ext\n', { xattrs: { 'user.ext': '1' } }),
        }),
      }),
    ],
  });

  add('base-symlink-absolute-with-extension-dir', 'issue 11 first finding: base usr/share/x -> /some/absolute/dir and an extension shipping usr/share/x/f', {
    base: baseTree(
      { share: dir({ x: link('/some/absolute/dir'), groff: dir({ 'site-tmac': link('/etc/groff') }) }) },
      { etc: dir({ groff: dir({ keep: file('k\n') }) }) },
    ),
    extensions: [extTree('ext', { share: dir({ x: dir({ f: file('f\n') }), groff: dir({ 'site-tmac': dir({ m: file('m\n') }) }) }) })],
  });

  return s;
}
