// Runs one attack in a child process (node against dist/, as users import the library), so a
// crash or a hang is a failed attempt rather than a lost test run.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { childEnv } from '../helpers/child.js';

/** dist/ entry point the children import. */
export const dist = resolve(import.meta.dirname, '../../dist/lib/index.js');

/** What one child attempt ended with. */
export interface AttackOutcome {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The last line of stdout parsed as JSON (what the child reports), or null. */
  report: unknown;
  /** Wall time in milliseconds. */
  ms: number;
}

/**
 * Runs `body` (an ES module body; `lib` is the imported dist/ module, `args` the extra
 * arguments) in a fresh node process. The child should print one JSON line with its result.
 * A child that fails to import dist/ (rebuilt concurrently by another test run) is retried.
 */
export function attack(
  body: string,
  args: string[] = [],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {},
  attempt = 0,
): Promise<AttackOutcome> {
  const script = `const lib = await import(process.argv[1]); const args = process.argv.slice(2);\n${body}\n`;
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--input-type=module', '-e', script, dist, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...childEnv, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && attempt < 2 && /SyntaxError|ERR_MODULE_NOT_FOUND|does not provide an export/.test(stderr) && !stdout) {
        setTimeout(() => void attack(body, args, opts, attempt + 1).then(resolvePromise, reject), 1000);
        return;
      }
      const last = stdout.trim().split('\n').pop() ?? '';
      let report: unknown;
      try {
        report = JSON.parse(last);
      } catch {
        report = null;
      }
      resolvePromise({ code, signal, stdout, stderr, report, ms: performance.now() - t0 });
    });
  });
}

/** Child-side snippet: prints `{ ok, code, name, message }` for a promise's outcome. */
export const REPORT = `
async function report(p) {
  try { const value = await p; console.log(JSON.stringify({ ok: true, value: value ?? null })); }
  catch (e) { console.log(JSON.stringify({ ok: false, name: e?.name, code: e?.code ?? null, message: String(e?.message ?? e) })); }
}
`;
