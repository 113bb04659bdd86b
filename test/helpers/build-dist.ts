// Global setup: builds dist/ so tests can run the library in child processes (mount
// namespaces, SIGKILL crash tests, --expose-gc) exactly as users import it. Type errors do
// not stop it (tsc still emits); `npm test` type-checks separately before vitest runs.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): void {
  const root = join(import.meta.dirname, '..', '..');
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) process.stderr.write(`build-dist: tsc reported errors (dist/ emitted anyway):\n${r.stdout.slice(0, 2000)}\n`);
}
