/**
 * The API's own description: `GET /openapi.json` (OpenAPI 3.1, written from
 * the routes' schemas) and `GET /docs`, a reference page rendered in the
 * browser by Swagger UI from the `swagger-ui-dist` package, served from
 * node_modules (nothing is fetched from the network, at run time or by the
 * page). Neither needs an API key: they describe the API and reveal no data.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { FlurryError } from '@flurry/core';
import { API_KEY, pathName, type Env } from './api-app.js';

/** The document's title block and the tags the routes use, each with what it covers. */
const INFO = {
  openapi: '3.1.0',
  info: {
    title: 'Flurry',
    version: '1',
    description: 'Burst compute: deploy WebAssembly functions, call them, fork warm parents into fork-join jobs, run services. '
      + 'Every refusal has the body `{ "error": { "code", "message" } }` and the header `x-flurry-error`. See docs/api.md.',
  },
  tags: [
    { name: 'Functions', description: 'Deploy, list and delete WebAssembly functions' },
    { name: 'Calls', description: 'Call a function: the request is passed to its handle() and its answer back' },
    { name: 'Jobs', description: 'Fork-join jobs: one warm parent forked into many clones (docs/jobs.md)' },
    { name: 'Data', description: 'Named data that jobs and services take as their init input' },
    { name: 'Services', description: 'Long-lived services of persistent instances (docs/services.md)' },
    { name: 'Hosts', description: 'The worker hosts, their drains and consolidation (docs/autoscaling.md)' },
    { name: 'Callbacks', description: 'The signing secret of job callbacks (docs/jobs.md, "Callbacks")' },
    { name: 'Dashboard', description: 'The dashboard page at /ui (without an API key) and the fleet view it shows (docs/dashboard.md)' },
    { name: 'Health', description: 'Liveness and readiness, without an API key' },
    { name: 'Reference', description: 'This document and its rendered page, without an API key' },
  ],
  security: [{ [API_KEY]: [] }],
};

/** The Swagger UI files the page loads, by the name it loads them under, with their content type. */
const ASSETS = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
]);

/** Relative links, so the page works behind a proxy that mounts the gateway under a prefix. */
const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Flurry API</title><link rel="stylesheet" href="docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div><script src="docs/swagger-ui-bundle.js"></script><script src="docs/start.js"></script></body>
</html>
`;
/** validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io. */
const START = `SwaggerUIBundle({ url: 'openapi.json', dom_id: '#swagger-ui', validatorUrl: null, deepLinking: true });\n`;

const swaggerUiDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/**
 * Adds `/openapi.json` and `/docs` to `app` (the whole API: the document is
 * written on the first request, once every route is declared). Add them
 * before the authentication middleware: they need no key.
 */
export function addApiDocs(app: OpenAPIHono<Env>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', API_KEY, {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key (`Authorization: Bearer <key>`): a user key acts on its tenant\'s objects, an admin key on the fleet too',
  });
  let document: object | undefined;
  app.openapi(createRoute({
    method: 'get', path: '/openapi.json', tags: ['Reference'], security: [], summary: 'This API as an OpenAPI 3.1 document',
    responses: { 200: { description: 'The document', content: { 'application/json': { schema: z.looseObject({ openapi: z.string() }) } } } },
  }), (c) => {
    document ??= app.getOpenAPI31Document(INFO);
    return c.json(document as { openapi: string }, 200);
  });
  app.openapi(createRoute({
    method: 'get', path: '/docs', tags: ['Reference'], security: [], summary: 'The API reference, rendered (Swagger UI)',
    responses: { 200: { description: 'An HTML page that renders /openapi.json', content: { 'text/html': { schema: z.string() } } } },
  }), (c) => c.html(PAGE, 200));
  const assets = new Map<string, Promise<Buffer>>();
  app.openapi(createRoute({
    method: 'get', path: '/docs/{asset}', tags: ['Reference'], security: [], summary: 'A file of the rendered reference page',
    request: { params: z.object({ asset: pathName('swagger-ui.css, swagger-ui-bundle.js or start.js') }) },
    responses: {
      200: { description: 'The file', content: { 'text/css': { schema: z.string() }, 'text/javascript': { schema: z.string() } } },
      404: { description: 'No such file' },
    },
  }), async (c) => {
    const { asset } = c.req.valid('param');
    if (asset === 'start.js') return c.body(START, 200, { 'content-type': 'text/javascript; charset=utf-8' });
    const type = ASSETS.get(asset);
    if (!type) throw new FlurryError('not_found', `no file ${asset} in the reference page`);
    let bytes = assets.get(asset);
    if (!bytes) assets.set(asset, (bytes = readFile(join(swaggerUiDir, asset))));
    return c.body(new Uint8Array(await bytes), 200, { 'content-type': type, 'cache-control': 'public, max-age=3600' });
  });
}
