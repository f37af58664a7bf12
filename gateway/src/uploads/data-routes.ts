/**
 * The job data HTTP API (docs/api.md, "Job data"): upload, list, read the
 * metadata of and delete named data that jobs and services use as their init input.
 * Uploads stream into the object store under their own size limit
 * (FLURRY_MAX_DATA_BYTES), not the request body limit.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { DATA_NAME_PATTERN, FlurryError } from '@flurry/core';
import { apiRouter, errorResponses, jsonResponse } from '../api/api-app.js';
import { DataRecord } from '../api/records.js';
import { streamBody } from '../request-body.js';
import { dataRoom } from '../quotas/data-bytes.js';
import type { UploadedData } from './uploaded-data.js';

export interface DataRoutesDeps {
  data: UploadedData;
  maxDataBytes: number;
}

const tags = ['Data'];
const params = z.strictObject({
  name: z.string().regex(DATA_NAME_PATTERN, { error: 'must be 1-128 letters, digits, dots, dashes and underscores, starting with a letter or digit' })
    .openapi({ description: 'The data\'s name' }),
});

export function dataRoutes(deps: DataRoutesDeps) {
  const app = apiRouter();
  app.openapi(createRoute({
    method: 'put', path: '/v1/data/{name}', tags, summary: 'Upload data (or a new version of it)',
    description: 'Streamed into the fleet\'s object store, up to FLURRY_MAX_DATA_BYTES and the tenant\'s FLURRY_QUOTA_DATA_BYTES.',
    request: {
      params,
      body: { required: true, description: 'The bytes', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
    },
    responses: { 201: jsonResponse(DataRecord, 'Stored'), ...errorResponses },
  }), async (c) => {
    const { name } = c.req.valid('param');
    const tenant = c.get('tenant');
    const room = dataRoom(deps.data.quotaBytes, await deps.data.usedBytes(tenant));
    const overQuota = () => new FlurryError('quota_exceeded', `tenant "${tenant}" may keep ${deps.data.quotaBytes} bytes of data and has room for ${room} more (FLURRY_QUOTA_DATA_BYTES): delete data it no longer needs`);
    const record = await deps.data.put(tenant, name, room < deps.maxDataBytes ? streamBody(c, room, overQuota) : streamBody(c, deps.maxDataBytes));
    return c.json(record, 201);
  });
  app.openapi(createRoute({
    method: 'get', path: '/v1/data', tags, summary: 'The caller\'s data',
    responses: { 200: jsonResponse(z.strictObject({ data: z.array(DataRecord) }), 'The data, by name'), ...errorResponses },
  }), async (c) => c.json({ data: await deps.data.list(c.get('tenant')) }, 200));
  app.openapi(createRoute({
    method: 'get', path: '/v1/data/{name}', tags, summary: 'One upload\'s metadata',
    request: { params },
    responses: { 200: jsonResponse(DataRecord, 'Its metadata'), ...errorResponses },
  }), async (c) => c.json(await deps.data.get(c.get('tenant'), c.req.valid('param').name), 200));
  app.openapi(createRoute({
    method: 'delete', path: '/v1/data/{name}', tags, summary: 'Delete data',
    request: { params },
    responses: { 200: jsonResponse(z.strictObject({ deleted: z.string() }), 'Deleted: its name'), ...errorResponses },
  }), async (c) => {
    const { name } = c.req.valid('param');
    await deps.data.delete(c.get('tenant'), name);
    return c.json({ deleted: name }, 200);
  });
  return app;
}
