// Builds the corruption corpus: a real extension repository per mode (written by the library),
// copied once per damage and damaged by corrupt.py (GVariant-aware, through python3-gi).
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Repo, extensionRef } from '../../lib/index.js';

export const CORRUPT_PY = resolve(import.meta.dirname, 'corrupt.py');
export const PYTHON = '/usr/bin/python3'; // the system one: python3-gi is installed there

/** Every damage corrupt.py knows (see its header for in-place vs. rehashed). */
export const DAMAGES = [
  'none',
  'dirtree-file-csum0-rehashed',
  'dirtree-file-csum31-rehashed',
  'dirtree-dir-csum0-rehashed',
  'dirtree-dir-meta31-rehashed',
  'dirtree-truncate1',
  'dirtree-truncate1-rehashed',
  'dirtree-framing-flip',
  'dirtree-framing-flip-rehashed',
  'dirtree-allzero',
  'dirtree-allzero-rehashed',
  'dirtree-contains-itself',
  'root-contains-itself',
  'dirtree-name-dotdot-rehashed',
  'dirtree-name-slash-rehashed',
  'dirtree-name-long-rehashed',
  'dirtree-unsorted-rehashed',
  'dirtree-duplicate-rehashed',
  'dirtree-file-and-dir-rehashed',
  'dirtree-empty',
  'dirtree-fifo',
  'dirtree-directory',
  'dirtree-missing',
  'content-fifo',
  'content-directory',
  'content-symlink',
  'content-empty',
  'content-truncate1',
  'content-header-flip',
  'commit-own-parent',
  'commit-parent-cycle',
  'commit-parent-csum31-rehashed',
  'commit-root-csum0-rehashed',
  'commit-truncate1',
  'commit-truncate1-rehashed',
  'commit-allzero',
  'commit-fifo',
  'commitmeta-fifo',
  'commitmeta-garbage',
  'dirmeta-truncate1',
  'dirmeta-regular-mode-rehashed',
  'dirmeta-allzero-rehashed',
  'dirmeta-fifo',
  'deep-tree-rehashed',
] as const;
export type Damage = (typeof DAMAGES)[number];

export const MODES = ['bare', 'archive', 'bare-user'] as const;
export type Mode = (typeof MODES)[number];

/** The extension every pristine repository holds, under extensionRef('ext'). */
export function writeExtensionTree(dir: string): void {
  const put = (p: string, s: string) => {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), s);
  };
  put('usr/lib/extension-release.d/extension-release.ext', 'ID=_any\n');
  put('usr/share/ext/a.txt', 'alpha\n');
  put('usr/share/ext/b.txt', 'beta\n');
  put('usr/bin/tool', '#!/bin/sh\necho tool\n');
  symlinkSync('a.txt', join(dir, 'usr/share/ext/link'));
}

/** Creates a pristine repository of `mode` at `path` (two commits, so history has a parent). */
export async function buildPristine(path: string, mode: Mode, tree: string): Promise<void> {
  const repo = await Repo.create(path, { mode, disableFsync: true });
  try {
    await repo.commit({ tree, ref: extensionRef('ext'), subject: 'first' });
    await repo.commit({ tree, ref: extensionRef('ext'), subject: 'second' });
  } finally {
    repo.close();
  }
}

/** A copy of `pristine` at `dest` with `damage` applied. */
export function damagedCopy(pristine: string, dest: string, damage: Damage): void {
  execFileSync('cp', ['-a', pristine, dest]); // keeps xattrs (bare-user) and owners
  execFileSync(PYTHON, [CORRUPT_PY, dest, extensionRef('ext'), damage], { stdio: ['ignore', 'ignore', 'pipe'] });
}
