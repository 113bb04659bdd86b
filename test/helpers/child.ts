// Shared by tests that run the library in child processes and check repositories afterwards.
import { expect } from 'vitest';
import { Repo } from '../../lib/index.js';

/**
 * Environment for a node child that loads the addon: under scripts/test-asan.sh the child
 * must preload the sanitizer runtime too (the vitest workers have it removed).
 */
export const childEnv: NodeJS.ProcessEnv = process.env.OSX_ASAN_PRELOAD ? { ...process.env, LD_PRELOAD: process.env.OSX_ASAN_PRELOAD } : process.env;

/** Asserts that the repository at `path` passes fsck. */
export async function fsckOk(path: string): Promise<void> {
  const r = await Repo.open(path);
  try {
    const f = await r.fsck();
    expect(f.ok, JSON.stringify(f).slice(0, 500)).toBe(true);
  } finally {
    r.close();
  }
}
