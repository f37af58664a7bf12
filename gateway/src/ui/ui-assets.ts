/**
 * The dashboard's page at `/ui` (docs/dashboard.md): hand-written ES modules
 * and CSS from `assets/`, and uPlot (the migration chart) from its npm
 * package, read once at start and served from memory. Served without an API
 * key: the page holds no data; it asks for a key and sends it with every
 * request of its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env, Hono } from 'hono';

/** The page's own files, beside this module's source (also when run from dist/). */
const ASSETS_DIR = fileURLToPath(new URL('../../src/ui/assets/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Scripts and styles from this origin only; the page talks to this gateway only. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset {
  body: Uint8Array;
  type: string;
}

/** Every file the page may load, by its name under /ui/. */
function loadAssets(): Map<string, Asset> {
  const files = new Map<string, Asset>();
  for (const name of readdirSync(ASSETS_DIR)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: readFileSync(join(ASSETS_DIR, name)), type });
  }
  const require = createRequire(import.meta.url);
  for (const [name, file] of [['uPlot.esm.js', 'uplot/dist/uPlot.esm.js'], ['uPlot.min.css', 'uplot/dist/uPlot.min.css']] as const) {
    files.set(name, { body: readFileSync(require.resolve(file)), type: TYPES[extname(name)]! });
  }
  return files;
}

/** Adds `GET /ui` and `GET /ui/:file`; add it before the API key check. */
export function addUiAssets<E extends Env>(app: Hono<E>): void {
  const files = loadAssets();
  const serve = (name: string) => {
    const asset = files.get(name);
    if (!asset) return undefined;
    return new Response(asset.body as Uint8Array<ArrayBuffer>, {
      headers: { 'content-type': asset.type, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' },
    });
  };
  app.get('/ui', (c) => serve('index.html') ?? c.notFound());
  app.get('/ui/', (c) => serve('index.html') ?? c.notFound());
  app.get('/ui/:file', (c) => serve(c.req.param('file')) ?? c.notFound());
}
