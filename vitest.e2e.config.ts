import { defineConfig } from 'vitest/config';

// End-to-end suites: real Linux client under QEMU, libnfs, nfs-common, tshark, Chromium.
// They share the machine's one guest and port 111, so files run one at a time.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
