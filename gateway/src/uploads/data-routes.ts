/**
 * The job data HTTP API (docs/api.md, "Job data"): upload, list, read the
 * metadata of and delete named data that jobs and services use as their init input.
 * Uploads stream into the object store under their own size limit
 * (FLURRY_MAX_DATA_BYTES), not the request body limit.
 */
import type { Hono } from 'hono';
import { FlurryError } from '@flurry/core';
import { streamBody } from '../request-body.js';
import { dataRoom } from '../quotas/data-bytes.js';
import { UploadedData } from './uploaded-data.js';

export interface DataRoutesDeps {
  data: UploadedData;
  maxDataBytes: number;
}

type Env = { Variables: { requestId: string; tenant: string } };

export function addDataRoutes<E extends Env>(app: Hono<E>, deps: DataRoutesDeps): void {
  app.put('/v1/data/:name', async (c) => {
    const name = c.req.param('name');
    UploadedData.checkName(name);
    const tenant = c.var.tenant;
    const room = dataRoom(deps.data.quotaBytes, await deps.data.usedBytes(tenant));
    const overQuota = () => new FlurryError('quota_exceeded', `tenant "${tenant}" may keep ${deps.data.quotaBytes} bytes of data and has room for ${room} more (FLURRY_QUOTA_DATA_BYTES): delete data it no longer needs`);
    const record = await deps.data.put(tenant, name, room < deps.maxDataBytes ? streamBody(c, room, overQuota) : streamBody(c, deps.maxDataBytes));
    return c.json(record, 201);
  });
  app.get('/v1/data', async (c) => c.json({ data: await deps.data.list(c.var.tenant) }));
  app.get('/v1/data/:name', async (c) => c.json(await deps.data.get(c.var.tenant, c.req.param('name'))));
  app.delete('/v1/data/:name', async (c) => {
    await deps.data.delete(c.var.tenant, c.req.param('name'));
    return c.json({ deleted: c.req.param('name') });
  });
}
