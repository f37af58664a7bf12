/**
 * The gateway's HTTP API. Routes only parse and validate, then call the
 * registry, the invoker or the fleet view; errors become responses in one
 * place (http-errors.ts).
 */
import type { Context } from 'hono';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { FlurryError, newId, rejectedMessages, type BrokerLink, type InvokeRequest, type Logger } from '@flurry/core';
import { errorResponse } from './http-errors.js';
import { readBody } from './request-body.js';
import { header, headerList } from './request-headers.js';
import type { FunctionRegistry } from './function-registry.js';
import type { Invoker } from './invoker.js';
import type { FleetView } from './fleet-view.js';
import { jobRoutes } from './jobs/routes.js';
import type { JobStore } from './jobs/job-store.js';
import { dataRoutes } from './uploads/data-routes.js';
import type { UploadedData } from './uploads/uploaded-data.js';
import { serviceRoutes } from './services/routes.js';
import type { Services } from './services/services.js';
import { hostRoutes } from './hosts/host-routes.js';
import type { HostControl } from './hosts/host-control.js';
import { callbackRoutes } from './callbacks/callback-routes.js';
import { logRoutes } from './logs/log-routes.js';
import type { GuestLogStore } from './logs/guest-log-store.js';
import { functionLimitsRoutes } from './functions/function-limits-routes.js';
import type { CallbackConfig } from './callbacks/callback-config.js';
import type { KeyRing } from './auth/key-ring.js';
import { authenticate } from './auth/roles.js';
import { apiRouter, declarePassthrough, errorResponses, jsonResponse, pathName, type Env } from './api/api-app.js';
import { addApiDocs } from './api/api-docs.js';
import { functionRoutes } from './function-routes.js';
import { traceContext } from './metrics/trace-context.js';
import { CALL_ROUTES, limitConcurrentCalls, limitRequestRate } from './quotas/limit-middleware.js';
import type { ConcurrentCalls } from './quotas/concurrent-calls.js';
import type { RequestRate } from './quotas/request-rate.js';
import type { RunningJobs } from './quotas/running-jobs.js';
import { uiAssets } from './ui/ui-assets.js';
import { dashboardRoutes } from './ui/dashboard-routes.js';

export interface AppDeps {
  /** The broker connection: requests get 503 while it is away (docs/reliability.md). */
  link: BrokerLink;
  registry: FunctionRegistry;
  invoker: Invoker;
  fleet: FleetView;
  log: Logger;
  maxBodyBytes: number;
  maxModuleBytes: number;
  /** Who may call (auth/key-ring.ts); every route but the health checks needs a key unless it runs without. */
  auth: KeyRing;
  /** Fork-join jobs (docs/jobs.md); without it the /v1/jobs routes are absent. */
  jobs?: JobStore;
  /** Uploaded job data (docs/api.md); without it the /v1/data routes are absent and jobs take no initData. */
  data?: UploadedData;
  /** Largest data upload (FLURRY_MAX_DATA_BYTES). */
  maxDataBytes?: number;
  /** Services (docs/services.md); without it the /v1/services and /svc routes are absent. */
  services?: Services;
  /** Host drains and the consolidation journal (docs/autoscaling.md); without it those routes are absent. */
  hostControl?: HostControl;
  /** Job callbacks: the submit check and each tenant's signing secret (docs/jobs.md, "Callbacks"). */
  callbacks: CallbackConfig;
  /** What guests logged (docs/api.md, "Guest logs"); without it the log routes are absent. */
  guestLogs?: GuestLogStore;
  /** Per-tenant quotas (quotas/tenant-quotas.ts); without it none are enforced. */
  limits?: { rate: RequestRate; calls: ConcurrentCalls; runningJobs?: RunningJobs };
}

const API_DESCRIPTION_LINK = '</openapi.json>; rel="service-desc"';
/** The routes whose answers are a guest's. */
const GUEST_ANSWERS = /^\/(fn|svc)\/|^\/v1\/functions\/[^/]+\/invoke$/;

/** Headers a guest may not set: the gateway owns framing. */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade']);

export function createApp(deps: AppDeps): OpenAPIHono<Env> {
  const app = apiRouter();
  app.onError(errorResponse);
  app.notFound((c) => errorResponse(new FlurryError('not_found', `no route for ${c.req.method} ${c.req.path}`), c));

  app.use('*', async (c, next) => {
    const given = header(c, 'x-request-id');
    const requestId = given && /^[\w.-]{1,64}$/.test(given) ? given : newId('req');
    c.set('requestId', requestId);
    // The base logger, not a child per request (that costs more than routing): log lines add the requestId field.
    c.set('log', deps.log);
    await next();
    // Not on a guest's answer: its headers are the guest's (the call routes set the request id themselves).
    if (!GUEST_ANSWERS.test(c.req.path) || c.res.headers.has('x-flurry-error')) {
      c.res.headers.set('x-flurry-request-id', requestId);
      // RFC 8631: where the description of this API is (clients, and the test suites' response check, find it so).
      c.res.headers.set('link', API_DESCRIPTION_LINK);
    }
  });
  app.use('*', traceContext(deps.log));

  // Liveness: the process answers. Readiness: it can do work (the broker is reachable).
  // rejectedMessages: NATS messages this gateway dropped as malformed, by kind (core/src/checked-decode.ts).
  app.openapi(createRoute({
    method: 'get', path: '/healthz', tags: ['Health'], security: [], summary: 'Liveness: the process answers',
    responses: {
      200: jsonResponse(z.strictObject({
        ok: z.literal(true),
        broker: z.enum(['connected', 'reconnecting']),
        rejectedMessages: z.record(z.string(), z.number().int()).openapi({ description: 'NATS messages this gateway dropped as malformed, by kind' }),
      }), 'Alive'),
      ...errorResponses,
    },
  }), (c) => c.json({ ok: true as const, broker: deps.link.connected ? 'connected' as const : 'reconnecting' as const, rejectedMessages: rejectedMessages() }, 200));
  app.openapi(createRoute({
    method: 'get', path: '/readyz', tags: ['Health'], security: [], summary: 'Readiness: the broker is reachable (else 503)',
    responses: { 200: jsonResponse(z.strictObject({ ok: z.literal(true) }), 'Ready'), ...errorResponses },
  }), (c) => {
    deps.link.assertUp();
    return c.json({ ok: true as const }, 200);
  });

  addApiDocs(app);
  app.route('/', uiAssets());

  // Before the broker check: a caller without a valid key learns nothing, not even that the broker is away.
  app.use('*', authenticate(deps.auth));
  if (deps.limits) app.use('*', limitRequestRate(deps.limits.rate));

  // Every other route needs the broker: refused at once while it is away, and a request in flight
  // when it goes away ends then (its outcome unknown), instead of waiting for a timeout.
  // Service calls ride an outage out themselves: held until the broker is back, sent again when it made their
  // outcome unknown (services/service-router.ts).
  app.use('*', async (c, next) => {
    if (c.req.path.startsWith('/svc/')) return next();
    deps.link.assertUp();
    const watch = deps.link.nextOutage();
    try {
      await Promise.race([next(), watch.outage]);
    } finally {
      watch.cancel();
    }
  });

  if (deps.limits) for (const path of CALL_ROUTES) app.use(path, limitConcurrentCalls(deps.limits.calls));

  app.route('/', functionRoutes({ registry: deps.registry, maxModuleBytes: deps.maxModuleBytes }));
  app.route('/', functionLimitsRoutes({ registry: deps.registry, maxBodyBytes: deps.maxBodyBytes }));
  app.route('/', hostRoutes({ fleet: deps.fleet, control: deps.hostControl }));
  if (deps.data) app.route('/', dataRoutes({ data: deps.data, maxDataBytes: deps.maxDataBytes ?? 1024 ** 3 }));
  if (deps.jobs) app.route('/', jobRoutes({ store: deps.jobs, registry: deps.registry, maxBodyBytes: deps.maxBodyBytes, data: deps.data, callbacks: deps.callbacks, runningJobs: deps.limits?.runningJobs }));
  app.route('/', callbackRoutes(deps.callbacks));
  if (deps.guestLogs) app.route('/', logRoutes({ logs: deps.guestLogs, registry: deps.registry, jobs: deps.jobs, services: deps.services }));
  app.route('/', dashboardRoutes({ fleet: deps.fleet, services: deps.services, control: deps.hostControl }));
  if (deps.services) app.route('/', serviceRoutes({ services: deps.services, maxBodyBytes: deps.maxBodyBytes, hideAuthorization: deps.auth.required, data: deps.data }));

  const invoke = async (c: Context<Env>, name: string, path: string) => {
    const fn = await deps.registry.get(c.get('tenant'), name);
    const rawUrl = c.req.url;
    const q = rawUrl.indexOf('?');
    const req: InvokeRequest = {
      requestId: c.get('requestId'),
      tenant: fn.tenant,
      name: fn.name,
      digest: fn.digest,
      method: c.req.method,
      path: path || '/',
      query: q < 0 ? '' : rawUrl.slice(q + 1),
      headers: headerList(c, deps.auth.required),
      body: await readBody(c, deps.maxBodyBytes),
    };
    const reply = await deps.invoker.invoke(fn, req, c.get('trace'));
    const headers = new Headers();
    for (const [k, v] of reply.headers) {
      const lower = k.toLowerCase();
      // x-flurry-* headers are the platform's: a guest must not be able to forge an error marker.
      if (!HOP_HEADERS.has(lower) && !lower.startsWith('x-flurry-')) headers.append(k, v);
    }
    headers.set('x-flurry-request-id', req.requestId);
    headers.set('x-flurry-host', reply.hostId);
    headers.set('x-flurry-duration-ms', reply.durationMs.toFixed(3));
    const nullBody = reply.status === 204 || reply.status === 304 || c.req.method === 'HEAD';
    return new Response(nullBody ? null : (reply.body as Uint8Array<ArrayBuffer>), { status: reply.status, headers });
  };

  app.openapi(createRoute({
    method: 'post', path: '/v1/functions/{name}/invoke', tags: ['Calls'], summary: 'Call a function with a POST of raw bytes',
    description: 'The body is passed to the function\'s handle() as a POST to `path`; the answer is the guest\'s, any status and content '
      + '(a refusal or failure of the platform has the error shape and x-flurry-error). /fn/{name} passes any method and path.',
    request: {
      params: z.strictObject({ name: pathName('The function\'s name') }),
      // Not strict: the rest of the query is the guest's.
      query: z.object({ path: z.string().optional().openapi({ description: 'The request path the guest sees (default /); the whole query string is passed on too' }) }),
      body: { description: 'The request body (up to FLURRY_MAX_BODY_BYTES)', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
    },
    responses: {
      default: { description: 'The guest\'s answer, any status and content', content: { '*/*': { schema: z.string().openapi({ format: 'binary' }) } } },
    },
  }), (c) => invoke(c, c.req.valid('param').name, c.req.valid('query').path ?? '/'));
  declarePassthrough(app, '/fn', 'Calls', 'function');
  app.all('/fn/:name', (c) => invoke(c, c.req.param('name'), '/'));
  app.all('/fn/:name/*', (c) => {
    const prefix = `/fn/${c.req.param('name')}`;
    return invoke(c, c.req.param('name'), c.req.path.slice(prefix.length));
  });

  return app;
}
