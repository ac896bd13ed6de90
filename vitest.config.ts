import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // isolated-vm and classic-level are native addons: one forked process per file is the safe pool.
    pool: 'forks',
    // The host's V8 flags (src/host-flags.ts): the platforms the tests open run as the host does.
    execArgv: ['--single-threaded-gc'],
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
