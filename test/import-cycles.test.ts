// No import circles in any package's sources. Type-only imports count: a circle of types is still one to read
// around. Each package is read on its own (imports of another package are left out); tsc's project references
// already refuse a circle between packages.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import madge from 'madge';
import { expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['core/src', 'gateway/src', 'worker-host/src', 'sdk/src', 'infra/src', 'bench/src'];

it('import cycles - none in core, gateway, worker-host, sdk, infra or bench', async () => {
  const graph = await madge(SOURCES.map((dir) => join(root, dir)), { baseDir: root, fileExtensions: ['ts'] });
  // A check that read nothing would pass: make sure the imports between files were followed, every one of them
  // (only other packages' names are left unresolved).
  expect(graph.obj()['gateway/src/app.ts']?.length).toBeGreaterThan(3);
  expect(graph.warnings().skipped.filter((name) => !name.startsWith('@flurry/'))).toEqual([]);
  expect(graph.circular().map((circle) => circle.join(' > '))).toEqual([]);
}, 60_000);
