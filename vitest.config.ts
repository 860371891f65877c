import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash tests start worker processes; two cores leave no room for more than two files at once.
    maxWorkers: 2,
  },
});
