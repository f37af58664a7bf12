/**
 * `PATCH /v1/functions/{name}` with `{ "limits": { ... } }`: sets a function's
 * own limits (docs/manifests.md). Any caller of the tenant may, as for a
 * deploy; the record is the tenant's own, so another tenant's is not found.
 * `GET /v1/functions/{name}` shows them with the record.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { apiRouter, errorResponses, jsonBody, jsonResponse, pathName } from '../api/api-app.js';
import { FunctionLimits, FunctionRecord } from '../api/records.js';
import type { FunctionRegistry } from '../function-registry.js';

export interface FunctionLimitsRoutesDeps {
  registry: Pick<FunctionRegistry, 'setLimits'>;
  maxBodyBytes: number;
}

export function functionLimitsRoutes(deps: FunctionLimitsRoutesDeps) {
  const router = apiRouter();
  router.openapi(createRoute({
    method: 'patch', path: '/v1/functions/{name}', tags: ['Functions'], summary: 'Set a function\'s limits',
    description: 'Replaces the function\'s limits (`{}`: the fleet\'s defaults again). A limit above the fleet\'s cap is refused 400 naming the cap; '
      + 'a memory limit below what its module declares is refused too. They stay across redeploys.',
    middleware: [jsonBody(deps.maxBodyBytes)] as const,
    request: {
      params: z.strictObject({ name: pathName('The function\'s name') }),
      body: { required: true, content: { 'application/json': { schema: z.strictObject({ limits: FunctionLimits }) } } },
    },
    responses: { 200: jsonResponse(z.strictObject({ function: FunctionRecord }), 'The function with its limits'), ...errorResponses },
  }), async (c) => {
    const { record } = await deps.registry.setLimits(c.get('tenant'), c.req.valid('param').name, c.req.valid('json').limits);
    return c.json({ function: record }, 200);
  });
  return router;
}
