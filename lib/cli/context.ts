/**
 * The command's view of a host: the sysroot, its repository, the extension store and the OS
 * name, opened lazily from the global options.
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { baseFromCommit, baseFromDeployment, baseFromDirectory, type Base } from '../extension/base.js';
import { DEFAULT_SYSTEMD_VERSION, systemdRules, type SystemdInfo } from '../extension/compat.js';
import { detectSystemd } from '../extension/systemd-detect.js';
import { isOstreeError } from '../binding/errors.js';
import { Host } from '../host/host.js';
import { Repo } from '../binding/repo.js';
import { ExtensionStore } from '../extension/store.js';
import type { Deployment } from '../binding/sysroot.js';
import { pickDeployment } from '../sets/activate.js';
import { Sysroot } from '../binding/sysroot.js';
import { CliError, EXIT, usage, type Output } from './output.js';

/** Options every command accepts. */
export interface GlobalOptions {
  sysroot: string;
  repo: string | undefined;
  os: string | undefined;
  root: string | undefined;
  force: boolean;
  json: boolean;
  quiet: boolean;
  wait: boolean;
  /** `--systemd-version`: the systemd whose rules apply; default the installed one's. */
  systemdVersion?: number | undefined;
}

/** Lazily opened sysroot, repository and store for one command run. */
export class Context {
  /** The global options. */
  readonly opts: GlobalOptions;
  /** Where output goes. */
  readonly out: Output;
  /** Cancelled on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** The exit code when the command finishes without throwing (set by commands that report a refusal). */
  exitCode = 0;
  #sysroot: Sysroot | null | undefined;
  #repo: Repo | undefined;
  #store: ExtensionStore | undefined;
  #systemd: Promise<SystemdInfo> | undefined;

  /** A context over the options; nothing is opened yet. */
  constructor(opts: GlobalOptions, out: Output, signal: AbortSignal) {
    this.opts = opts;
    this.out = out;
    this.signal = signal;
  }

  /** The repository path: `--repo`, else `<sysroot>/ostree/repo`. */
  get repoPath(): string {
    return resolve(this.opts.repo ?? join(this.opts.sysroot, 'ostree', 'repo'));
  }

  /** Where `run/` lives: `--root`, else the sysroot. */
  get root(): string {
    return resolve(this.opts.root ?? this.opts.sysroot);
  }

  /** The sysroot, or null when `--sysroot` holds no OSTree sysroot. */
  async maybeSysroot(): Promise<Sysroot | null> {
    if (this.#sysroot !== undefined) return this.#sysroot;
    if (!existsSync(join(this.opts.sysroot, 'ostree', 'deploy'))) {
      this.#sysroot = null;
      return null;
    }
    try {
      this.#sysroot = await Sysroot.load(resolve(this.opts.sysroot));
    } catch (e) {
      if (!isOstreeError(e)) throw e;
      this.#sysroot = null;
    }
    return this.#sysroot;
  }

  /** The sysroot; fails with NOT_FOUND when there is none. */
  async sysroot(): Promise<Sysroot> {
    const s = await this.maybeSysroot();
    if (!s) {
      throw new CliError(
        `${resolve(this.opts.sysroot)} is not an OSTree sysroot (no ostree/deploy)`,
        EXIT.NOT_FOUND,
        'NOT_FOUND',
        'pass --sysroot DIR of an OSTree system',
      );
    }
    return s;
  }

  /** The repository. */
  async repo(): Promise<Repo> {
    if (!this.#repo) {
      if (!existsSync(join(this.repoPath, 'config'))) {
        throw new CliError(`${this.repoPath} is not an OSTree repository`, EXIT.NOT_FOUND, 'NOT_FOUND', 'pass --repo DIR or --sysroot DIR');
      }
      this.#repo = await Repo.open(this.repoPath);
    }
    return this.#repo;
  }

  /** The extension store over the repository. */
  async store(): Promise<ExtensionStore> {
    if (!this.#store) this.#store = new ExtensionStore(await this.repo());
    return this.#store;
  }

  /** `--os`, else the booted deployment's OS name, else the only OS name of the sysroot. */
  async osname(): Promise<string> {
    if (this.opts.os) return this.opts.os;
    const s = await this.sysroot();
    const booted = s.bootedDeployment();
    if (booted) return booted.osname;
    const names = [...new Set(s.deployments().map((d) => d.osname))];
    if (names.length === 1) return names[0]!;
    if (names.length === 0)
      throw new CliError(`the sysroot ${s.path} has no deployment`, EXIT.NOT_FOUND, 'NOT_FOUND', 'deploy an OS first (`ostree admin deploy`)');
    throw usage(`the sysroot has several OS names (${names.join(', ')}) and none is booted`, 'pass --os NAME');
  }

  /** The deployment sets apply to: the booted one of the OS, else its first (default) one ({@link pickDeployment}). */
  async deployment(): Promise<Deployment> {
    const s = await this.sysroot();
    const osname = await this.osname();
    if (!s.deployments().some((x) => x.osname === osname)) {
      throw new CliError(`the sysroot ${s.path} has no deployment of ${osname}`, EXIT.NOT_FOUND, 'NOT_FOUND', 'check --os');
    }
    return pickDeployment(s, osname);
  }

  /**
   * A base: `spec` as a directory (when it is one) or a commit/ref of the repository; without
   * `spec`, the OS deployment. `null` when no spec was given and there is no sysroot.
   */
  async base(spec: string | undefined, opts: { required?: boolean; commitForDeployment?: boolean } = {}): Promise<Base | null> {
    if (spec !== undefined) {
      if (existsSync(spec) && statSync(spec).isDirectory()) return baseFromDirectory(spec);
      const repo = await this.repo();
      const commit = await repo.resolve(spec, { allowMissing: true });
      if (commit === null)
        throw new CliError(
          `the base ${spec} is neither a directory nor a ref or commit of ${this.repoPath}`,
          EXIT.NOT_FOUND,
          'NOT_FOUND',
          'pass --base DIR or --base REF',
        );
      return baseFromCommit(repo, commit);
    }
    const s = await this.maybeSysroot();
    if (!s || s.deployments().length === 0) {
      if (opts.required) throw usage('no base: there is no OSTree deployment here', 'pass --base DIR|REV, or --sysroot DIR');
      return null;
    }
    const d = await this.deployment();
    return opts.commitForDeployment ? baseFromCommit(await this.repo(), d.checksum) : baseFromDeployment(s, d);
  }

  /**
   * The systemd whose rules decide: `--systemd-version`'s (upstream rules), else the installed
   * systemd as detected (backports included), else systemd 252's.
   */
  systemd(): Promise<SystemdInfo> {
    this.#systemd ??=
      this.opts.systemdVersion !== undefined
        ? Promise.resolve(systemdRules(this.opts.systemdVersion))
        : detectSystemd({ signal: this.signal }).then((found) => found ?? systemdRules(DEFAULT_SYSTEMD_VERSION));
    return this.#systemd;
  }

  /** The host commands on the sysroot, for the OS name and deployment the options select. */
  async host(): Promise<Host> {
    return new Host({
      systemd: await this.systemd(),
      sysroot: await this.sysroot(),
      store: await this.store(),
      osname: await this.osname(),
      deployment: await this.deployment(),
      root: this.root,
    });
  }

  /** Releases what was opened. */
  close(): void {
    this.#repo?.close();
    this.#sysroot?.close();
  }
}
