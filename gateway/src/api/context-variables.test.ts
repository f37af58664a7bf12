/**
 * Request variables are read with `c.get()`: Hono's `c.var` copies every
 * variable into a new object on each read, several times a call (api-app.ts, Env).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const gatewaySrc = join(dirname(fileURLToPath(import.meta.url)), '..');

it('context variables - no gateway source reads c.var', () => {
  const sources = (readdirSync(gatewaySrc, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  // A check that read nothing would pass: the routes that read the caller's tenant are among the files read.
  expect(sources).toContain(join('jobs', 'routes.ts'));
  const readers = sources.filter((f) => /\bc\.var\b/.test(readFileSync(join(gatewaySrc, f), 'utf8')));
  expect(readers).toEqual([]);
});
