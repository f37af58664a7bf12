/**
 * The services HTTP API (docs/services.md): /v1/services to manage them.
 * `ANY /svc/:name/*`, which calls them, is served in front of the app with the
 * function call routes (call-route/) and only listed in its document here.
 * Errors go through the app's one mapping.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { FlurryError, NAME_PATTERN } from '@flurry/core';
import { apiRouter, declarePassthrough, errorResponses, jsonBody, jsonResponse, pathName, type Env } from '../api/api-app.js';
import { MigrationReport, ServiceRecord } from '../api/records.js';
import { base64Bytes, base64String } from '../base64-field.js';
import { DataName, intFrom } from '../jobs/job-body.js';
import { MAX_INSTANCES } from './service-records.js';
import type { Services } from './services.js';
import type { UploadedData } from '../uploads/uploaded-data.js';

export interface ServiceRoutesDeps {
  services: Pick<Services, 'records' | 'migrations'>;
  maxBodyBytes: number;
  /** Uploaded data that `initData` names; without it `initData` is refused. */
  data?: UploadedData;
}

const tags = ['Services'];
const serviceParams = z.strictObject({ name: pathName('The service\'s name') });
const OneService = z.strictObject({ service: ServiceRecord });

/** How many instances, and how busy each: the fields a service may change. */
const scale = {
  min: intFrom(0, MAX_INSTANCES).optional().openapi({ description: 'Instances kept however idle (default 1)' }),
  max: intFrom(1, MAX_INSTANCES).optional().openapi({ description: 'Instances at most (default min); at least min' }),
  targetConcurrency: intFrom(1, MAX_INSTANCES * 64).optional().openapi({ description: 'Requests in flight per instance the autoscaler aims at (default 8)' }),
};

export const CreateServiceBody = z.strictObject({
  name: z.string({ error: 'must be a name' })
    .regex(NAME_PATTERN, { error: 'must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit' }),
  function: z.string({ error: 'must be a function name' }).min(1, { error: 'must be a function name' })
    .openapi({ description: 'The function the instances run: it exports handle()' }),
  ...scale,
  init: base64String('The init input of the instances\' parent').optional(),
  initData: DataName.optional().openapi({ description: 'Or the name of uploaded data as the init input' }),
}).superRefine((b, ctx) => {
  if (b.init !== undefined && b.initData !== undefined) ctx.addIssue({ code: 'custom', message: 'send "init" or "initData", not both' });
}).openapi('CreateServiceBody', { description: 'A service to create' });

/** What a refused field of a change is: a service's function and init cannot change, and nothing but its scale can. */
function changeRefusal(keys: string[]): string {
  const fixed = keys.find((k) => k === 'init' || k === 'initData' || k === 'function');
  if (fixed) return `cannot change "${fixed}" of a service: its instances are clones of one parent (create a new service instead)`;
  return `cannot change "${keys[0]}" (only min, max and targetConcurrency)`;
}

export const ServiceChange = z.strictObject(scale, {
  error: (issue) => (issue.code === 'unrecognized_keys' ? changeRefusal(issue.keys) : undefined),
}).openapi('ServiceChange', {
  description: 'What may change of a service; its function and init may not (its instances are clones of one parent: create a new service instead)',
});

export const MigrateBody = z.strictObject({
  target: z.string({ error: 'must be a host id' }).min(1, { error: 'must be a host id' }).optional()
    .openapi({ description: 'The host to move to (default: the placement\'s choice)' }),
  downtimeBudgetMs: z.number({ error: 'must be a number of milliseconds above 0 and at most 60000' })
    .gt(0, { error: 'must be a number of milliseconds above 0 and at most 60000' }).max(60_000, { error: 'must be a number of milliseconds above 0 and at most 60000' })
    .optional().openapi({ description: 'The pause pre-copy aims to stay within' }),
  maxRounds: intFrom(0, 100).optional().openapi({ description: 'Pre-copy rounds at most (0: stop-and-copy only)' }),
  verify: z.boolean({ error: 'must be true or false' }).optional().openapi({ description: 'Compare the memory\'s hash on the source and the target' }),
}).openapi('MigrateBody', { description: 'How to migrate an instance; every field optional, the body too' });

export function serviceRoutes(deps: ServiceRoutesDeps) {
  const { records, migrations } = deps.services;
  const app = apiRouter();

  app.openapi(createRoute({
    method: 'post', path: '/v1/services', tags, summary: 'Create a service',
    middleware: [jsonBody(deps.maxBodyBytes)] as const,
    request: { body: { required: true, content: { 'application/json': { schema: CreateServiceBody } } } },
    responses: { 201: jsonResponse(OneService, 'Created; its instances start'), ...errorResponses },
  }), async (c) => {
    const { init, initData, ...rest } = c.req.valid('json');
    const spec = { ...rest, ...(init !== undefined ? { init: base64Bytes(init) } : {}) };
    if (initData !== undefined) {
      if (!deps.data) throw new FlurryError('bad_request', 'this gateway keeps no uploaded data: "initData" is not available');
      return c.json({ service: await records.create(c.get('tenant'), { ...spec, initData: await deps.data.ref(c.get('tenant'), initData) }) }, 201);
    }
    return c.json({ service: await records.create(c.get('tenant'), spec) }, 201);
  });
  app.openapi(createRoute({
    method: 'get', path: '/v1/services', tags, summary: 'The caller\'s services',
    responses: { 200: jsonResponse(z.strictObject({ services: z.array(ServiceRecord) }), 'The services'), ...errorResponses },
  }), async (c) => c.json({ services: await records.list(c.get('tenant')) }, 200));
  app.openapi(createRoute({
    method: 'get', path: '/v1/services/{name}', tags, summary: 'One service',
    request: { params: serviceParams },
    responses: { 200: jsonResponse(OneService, 'The service'), ...errorResponses },
  }), async (c) => c.json({ service: await records.get(c.get('tenant'), c.req.valid('param').name) }, 200));
  app.openapi(createRoute({
    method: 'patch', path: '/v1/services/{name}', tags, summary: 'Change how many instances a service has',
    middleware: [jsonBody(deps.maxBodyBytes)] as const,
    request: { params: serviceParams, body: { required: true, content: { 'application/json': { schema: ServiceChange } } } },
    responses: { 200: jsonResponse(OneService, 'The service as changed'), ...errorResponses },
  }), async (c) => c.json({ service: await records.update(c.get('tenant'), c.req.valid('param').name, c.req.valid('json')) }, 200));
  app.openapi(createRoute({
    method: 'delete', path: '/v1/services/{name}', tags, summary: 'Delete a service and its instances',
    request: { params: serviceParams },
    responses: { 200: jsonResponse(z.strictObject({ deleted: z.string() }), 'Deleted: its name'), ...errorResponses },
  }), async (c) => {
    const { name } = c.req.valid('param');
    await records.delete(c.get('tenant'), name);
    return c.json({ deleted: name }, 200);
  });

  app.openapi(createRoute({
    method: 'post', path: '/v1/instances/{id}/migrate', tags, summary: 'Live-migrate a service instance to another host',
    description: 'A user key moves its own tenant\'s instances; an admin key any tenant\'s (docs/services.md, "Migration").',
    middleware: [jsonBody(deps.maxBodyBytes, { optional: true })] as const,
    request: {
      params: z.strictObject({ id: pathName('The instance\'s id') }),
      body: { content: { 'application/json': { schema: MigrateBody } } },
    },
    responses: { 200: jsonResponse(z.strictObject({ migration: MigrationReport }), 'Moved'), ...errorResponses },
  }), async (c) => {
    const { target, ...tuning } = c.req.valid('json');
    // A user moves its own instances; an admin any tenant's (another tenant's instance is not found for a user).
    const scope = c.get('role') === 'admin' ? undefined : c.get('tenant');
    return c.json({ migration: await migrations.migrate(scope, c.req.valid('param').id, target, tuning) }, 200);
  });

  // Served in front of the app (call-route/call-handler.ts, services/service-call.ts): only listed in its document here.
  declarePassthrough(app, '/svc', 'Services', 'service');
  return app;
}
