/**
 * The functions API: deploy (`PUT /v1/functions/:name` with the module's
 * bytes), list, read and delete. The registry checks the name and the module.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { apiRouter, errorResponses, jsonResponse, pathName } from './api/api-app.js';
import { FunctionRecord } from './api/records.js';
import { readBody } from './request-body.js';
import type { FunctionRegistry } from './function-registry.js';

const tags = ['Functions'];
const params = z.strictObject({ name: pathName('The function\'s name') });
const OneFunction = z.strictObject({ function: FunctionRecord });

export function functionRoutes(deps: { registry: FunctionRegistry; maxModuleBytes: number }) {
  const router = apiRouter();
  router.openapi(createRoute({
    method: 'put', path: '/v1/functions/{name}', tags, summary: 'Deploy a function (or a new version of it)',
    request: {
      params,
      body: { required: true, description: 'The WebAssembly module (up to FLURRY_MAX_MODULE_BYTES)', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
    },
    responses: { 200: jsonResponse(OneFunction, 'Deployed over an earlier version'), 201: jsonResponse(OneFunction, 'Deployed, new'), ...errorResponses },
  }), async (c) => {
    const bytes = await readBody(c, deps.maxModuleBytes);
    const { record, created } = await deps.registry.deploy(c.get('tenant'), c.req.valid('param').name, bytes);
    return created ? c.json({ function: record }, 201) : c.json({ function: record }, 200);
  });
  router.openapi(createRoute({
    method: 'get', path: '/v1/functions', tags, summary: 'The caller\'s functions',
    responses: { 200: jsonResponse(z.strictObject({ functions: z.array(FunctionRecord) }), 'The functions'), ...errorResponses },
  }), async (c) => c.json({ functions: await deps.registry.list(c.get('tenant')) }, 200));
  router.openapi(createRoute({
    method: 'get', path: '/v1/functions/{name}', tags, summary: 'One function',
    request: { params },
    responses: { 200: jsonResponse(OneFunction, 'The function'), ...errorResponses },
  }), async (c) => c.json({ function: await deps.registry.get(c.get('tenant'), c.req.valid('param').name) }, 200));
  router.openapi(createRoute({
    method: 'delete', path: '/v1/functions/{name}', tags, summary: 'Delete a function',
    request: { params },
    responses: { 200: jsonResponse(z.strictObject({ deleted: z.string() }), 'Deleted: its name'), ...errorResponses },
  }), async (c) => {
    const { name } = c.req.valid('param');
    await deps.registry.delete(c.get('tenant'), name);
    return c.json({ deleted: name }, 200);
  });
  return router;
}
