import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * Unit tests of these packages share their worker's module cache (isolate
 * false): importing the sources again for each file cost about as much as
 * running the tests. A file that replaces a module (vi.mock, vi.doMock) needs
 * a module graph of its own, so it stays isolated, as do the worker host's
 * tests (threads, the native pager, nats-servers) and every suite under test/.
 */
const SHARED_ROOTS = ['core/src', 'gateway/src', 'sdk/src', 'infra/src', 'bench/src'];
const REPLACES_MODULES = /\bvi\.(do)?[mM]ock\(/;

function testFiles(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.test.ts') && !f.split('/').includes('node_modules') && !f.split('/').includes('dist'))
    .map((f) => join(root, f));
}

const sharedFiles = SHARED_ROOTS.flatMap(testFiles).filter((f) => !REPLACES_MODULES.test(readFileSync(f, 'utf8')));

export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Every gateway response a suite gets through fetch is checked against the gateway's /openapi.json.
    setupFiles: ['test/helpers/openapi-responses.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start whole fleets; on two cores running many at once only makes them slower.
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'shared', include: sharedFiles, isolate: false } },
      {
        extends: true,
        test: {
          name: 'isolated',
          include: ['core/src/**/*.test.ts', 'worker-host/src/**/*.test.ts', 'gateway/src/**/*.test.ts', 'sdk/src/**/*.test.ts', 'infra/src/**/*.test.ts', 'bench/src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', ...sharedFiles],
        },
      },
    ],
  },
});
