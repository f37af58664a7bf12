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
import { createRoute, z } from '@hono/zod-openapi';
import { FlurryError } from '@flurry/core';
import { apiRouter, pathName } from '../api/api-app.js';

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

const tags = ['Dashboard'];
const page = { description: 'The page, its modules and styles', content: { 'text/html': { schema: z.string() }, 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() } } };

/**
 * `GET /ui` (the page), `GET /ui/{file}` (its files) and `GET /ui/` (sent to
 * /ui: the page's links are relative, so that it works behind a proxy that
 * mounts the gateway under a prefix). Mount it before the API key check.
 */
export function uiAssets() {
  const files = loadAssets();
  const serve = (name: string) => {
    const asset = files.get(name);
    if (!asset) throw new FlurryError('not_found', `no file ${name} in the dashboard`);
    return new Response(asset.body as Uint8Array<ArrayBuffer>, {
      headers: { 'content-type': asset.type, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' },
    });
  };
  const router = apiRouter();
  router.openapi(createRoute({
    method: 'get', path: '/ui', tags, security: [], summary: 'The dashboard (docs/dashboard.md); it asks for an API key',
    responses: { 200: page },
  }), () => serve('index.html'));
  router.openapi(createRoute({
    method: 'get', path: '/ui/', tags, security: [], summary: 'Sent to /ui',
    responses: { 301: { description: 'To /ui' } },
  }), (c) => c.redirect('../ui', 301));
  router.openapi(createRoute({
    method: 'get', path: '/ui/{file}', tags, security: [], summary: 'A file of the dashboard page',
    request: { params: z.strictObject({ file: pathName('app.js, style.css, uPlot.esm.js, ...') }) },
    responses: { 200: page, 404: { description: 'No such file' } },
  }), (c) => serve(c.req.valid('param').file));
  return router;
}
