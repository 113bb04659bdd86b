/**
 * The OS a set of extensions goes on: a directory, a commit, or a sysroot deployment. It
 * supplies the os-release that compatibility is judged against, and a reader for plugins.
 * @module
 */
import { resolve } from 'node:path';
import * as is from '../binding/args.js';
import { commitReader } from '../tree/commit.js';
import { ExtensionError } from './errors.js';
import type { Repo } from '../binding/repo.js';
import type { Deployment, Sysroot } from '../binding/sysroot.js';
import { findOsRelease } from './validate.js';
import { directoryReader } from '../tree/directory.js';
import { type TreeReader } from '../tree/reader.js';

/** Where a {@link Base} comes from. */
export type BaseSource =
  { type: 'directory'; path: string } | { type: 'commit'; repo: Repo; commit: string } | { type: 'deployment'; sysroot: Sysroot; deployment: Deployment };

/** An OS tree extensions are checked against and merged onto. */
export interface Base {
  /** What the base is. */
  readonly source: BaseSource;
  /** A stable identity: the commit checksum, or the directory's absolute path. */
  readonly id: string;
  /** The os-release fields (`etc/os-release`, falling back to `usr/lib/os-release`). */
  readonly osRelease: Record<string, string>;
  /** Reads the base's tree. */
  readonly reader: TreeReader;
}

async function make(source: BaseSource, id: string, reader: TreeReader): Promise<Base> {
  const file = await findOsRelease(reader);
  if (file === null || !file.release.loadable) {
    throw new ExtensionError('BASE_NO_OS_RELEASE', `the base ${id} has no readable os-release (etc/os-release or usr/lib/os-release)`, { path: id });
  }
  return Object.freeze({ source, id, osRelease: file.release.fields, reader });
}

/**
 * A base from an OS tree in a directory (an image build's rootfs, a deployment checkout).
 * @example
 * ```ts
 * const base = await baseFromDirectory('/srv/image/rootfs');
 * base.osRelease.ID; // e.g. 'fedora'
 * ```
 */
export async function baseFromDirectory(path: string): Promise<Base> {
  const abs = resolve(is.nonEmpty('path', path));
  return make({ type: 'directory', path: abs }, abs, directoryReader(abs));
}

/**
 * A base from a commit (ref or checksum) in a repository, read without a checkout.
 * @example
 * ```ts
 * const repo = await Repo.open('/srv/repo');
 * const base = await baseFromCommit(repo, 'os/x86_64/stable');
 * checkCompatibility(release, base.osRelease).compatible;
 * ```
 */
export async function baseFromCommit(repo: Repo, rev: string): Promise<Base> {
  const commit = await repo.resolve(rev);
  return make({ type: 'commit', repo, commit }, commit, commitReader(repo, commit));
}

/**
 * A base from a sysroot deployment. Its os-release comes from the deployment's checkout
 * (its `/etc` may differ from the commit's `usr/etc`).
 * @example
 * ```ts
 * const sysroot = await Sysroot.load('/');
 * const base = await baseFromDeployment(sysroot, sysroot.deployments()[0]!);
 * ```
 */
export async function baseFromDeployment(sysroot: Sysroot, deployment: Deployment): Promise<Base> {
  const dir = sysroot.deploymentPath(deployment);
  return make({ type: 'deployment', sysroot, deployment }, deployment.checksum, directoryReader(dir));
}
