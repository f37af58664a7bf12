import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['core/src/**/*.test.ts', 'worker-host/src/**/*.test.ts', 'gateway/src/**/*.test.ts', 'sdk/src/**/*.test.ts', 'infra/src/**/*.test.ts', 'bench/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Every gateway response a suite gets through fetch is checked against the gateway's /openapi.json.
    setupFiles: ['test/helpers/openapi-responses.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start whole fleets; on two cores running many at once only makes them slower.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
