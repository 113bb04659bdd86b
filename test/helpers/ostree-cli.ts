/**
 * Runs the real `ostree` CLI (argument arrays, never a shell) so tests can check the binding
 * against the reference implementation in both directions.
 */
import { spawnSync } from 'node:child_process';

/** What a finished `ostree` run printed and returned. */
export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ostree ARGS…` and returns its exit status and output, whatever they are. */
export function ostree(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliResult {
  const r = spawnSync('ostree', args, {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `ostree ARGS…` and returns stdout; throws with stderr when it exits non-zero. */
export function ostreeOk(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = ostree(args, opts);
  if (r.status !== 0) throw new Error(`ostree ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** `ostree --repo=REPO ARGS…`, checked. */
export function ostreeRepo(repo: string, args: string[]): string {
  return ostreeOk([`--repo=${repo}`, ...args]);
}

/** Runs any other command (tar, python3, …) with an argument array; throws on failure. */
export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, input: opts.input, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}
