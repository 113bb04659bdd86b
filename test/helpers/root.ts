import { describe, it } from 'vitest';

/** True when the tests run as root (mounts, systemd-sysext, nginx on a port). */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * `describe` for tests that need root. Without root they skip with a clear message, unless
 * `OSTREE_SYSEXT_REQUIRE_ROOT_TESTS=1` (set by .ci/run), where a skip would hide untested work:
 * then they fail.
 */
export function describeAsRoot(name: string, fn: () => void): void {
  if (isRoot) {
    describe(name, fn);
    return;
  }
  const why = `"${name}" needs root (mount namespaces, systemd-sysext, or a server port)`;
  if (process.env.OSTREE_SYSEXT_REQUIRE_ROOT_TESTS === '1') {
    describe(name, () => {
      it('runs as root', () => {
        throw new Error(`${why}, and OSTREE_SYSEXT_REQUIRE_ROOT_TESTS=1 forbids skipping it`);
      });
    });
    return;
  }
  process.stderr.write(`skipping: ${why}; run the tests as root to include them\n`);
  describe.skip(name, fn);
}
