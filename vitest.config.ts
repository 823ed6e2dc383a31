import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One Temporal dev server, database, Redis prefix and slapd for the whole run.
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // Worker start-up bundles workflow code, which is slow on a busy 2-core machine.
    hookTimeout: 120_000,
    // Forks, not threads: each file gets its own process for the Temporal native runtime,
    // and a crash or leaked handle affects only that file.
    pool: 'forks',
    maxWorkers: 2,
  },
});
