// vitest config of scripts/test-asan.sh: the normal config plus asan-setup.ts.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default mergeConfig(base, defineConfig({ test: { setupFiles: ['test/security/asan-setup.ts'], testTimeout: 180_000, hookTimeout: 300_000 } }));
