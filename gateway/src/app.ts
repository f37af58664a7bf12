/**
 * The gateway's HTTP API. Routes only parse and validate, then call the
 * registry, the invoker or the fleet view; errors become responses in one
 * place (http-errors.ts).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { FlurryError, rejectedMessages, type BrokerLink, type Logger } from '@flurry/core';
import { errorResponse } from './http-errors.js';
import { header } from './request-headers.js';
import { requestIdFrom } from './request-id.js';
import { whileBrokerUp } from './broker-watch.js';
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
import { API_DESCRIPTION_LINK, apiRouter, errorResponses, jsonResponse, type Env } from './api/api-app.js';
import { addApiDocs } from './api/api-docs.js';
import { functionRoutes } from './function-routes.js';
import { traceContext } from './metrics/trace-context.js';
import { limitRequestRate } from './quotas/limit-middleware.js';
import { declareCallRoutes } from './call-route/call-routes.js';
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

/**
 * The HTTP API but the call routes (functions and services), which are served in front of it
 * (call-route/call-handler.ts) and only listed in its document.
 */
export function createApp(deps: AppDeps): OpenAPIHono<Env> {
  const app = apiRouter();
  app.onError(errorResponse);
  app.notFound((c) => errorResponse(new FlurryError('not_found', `no route for ${c.req.method} ${c.req.path}`), c));

  app.use('*', async (c, next) => {
    const requestId = requestIdFrom(header(c, 'x-request-id'));
    c.set('requestId', requestId);
    // The base logger, not a child per request (that costs more than routing): log lines add the requestId field.
    c.set('log', deps.log);
    await next();
    c.res.headers.set('x-flurry-request-id', requestId);
    c.res.headers.set('link', API_DESCRIPTION_LINK);
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
  app.use('*', (_c, next) => whileBrokerUp(deps.link, next));

  app.route('/', functionRoutes({ registry: deps.registry, maxModuleBytes: deps.maxModuleBytes }));
  app.route('/', functionLimitsRoutes({ registry: deps.registry, maxBodyBytes: deps.maxBodyBytes }));
  app.route('/', hostRoutes({ fleet: deps.fleet, control: deps.hostControl }));
  if (deps.data) app.route('/', dataRoutes({ data: deps.data, maxDataBytes: deps.maxDataBytes ?? 1024 ** 3 }));
  if (deps.jobs) app.route('/', jobRoutes({ store: deps.jobs, registry: deps.registry, maxBodyBytes: deps.maxBodyBytes, data: deps.data, callbacks: deps.callbacks, runningJobs: deps.limits?.runningJobs }));
  app.route('/', callbackRoutes(deps.callbacks));
  if (deps.guestLogs) app.route('/', logRoutes({ logs: deps.guestLogs, registry: deps.registry, jobs: deps.jobs, services: deps.services }));
  app.route('/', dashboardRoutes({ fleet: deps.fleet, services: deps.services, control: deps.hostControl }));
  if (deps.services) app.route('/', serviceRoutes({ services: deps.services, maxBodyBytes: deps.maxBodyBytes, data: deps.data }));

  declareCallRoutes(app);
  return app;
}
