import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** Removes a tree, clearing the immutable bit `ostree admin deploy` puts on deployment roots. */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    spawnSync('chattr', ['-R', '-f', '-i', dir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A temporary directory removed when the test file's tests are done. */
export function tempDir(prefix = 'ostree-sysext-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => removeTree(dir));
  return dir;
}
