import { defineConfig } from 'vitest/config';

// Unit, property and protocol suites: no system packages, no root, no guests.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
