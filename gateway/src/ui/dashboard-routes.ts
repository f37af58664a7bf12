/**
 * The dashboard's data (docs/dashboard.md): `GET /v1/dashboard` answers the
 * fleet as the caller may see it (dashboard-view.ts) and
 * `GET /v1/dashboard/events` streams it (Server-Sent Events, an event
 * `dashboard` whenever it changed, checked every second). Jobs are not in
 * it: the page reads the jobs API and each running job's own event stream.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { apiRouter, errorResponses, jsonResponse } from '../api/api-app.js';
import type { FleetView } from '../fleet-view.js';
import type { HostControl } from '../hosts/host-control.js';
import type { Services } from '../services/services.js';
import { Dashboard } from './dashboard-schema.js';
import { dashboardFor, type Caller } from './dashboard-view.js';
import { RequestRates } from './request-rates.js';

/** How often a stream looks for changes. */
const TICK_MS = 1000;
/** A stream that sent nothing for this long sends a keep-alive comment (proxies close silent connections). */
const KEEP_ALIVE_MS = 15_000;

export interface DashboardRoutesDeps {
  fleet: Pick<FleetView, 'live'>;
  /** This gateway's services; without them the dashboard has no services or migrations. */
  services?: Pick<Services, 'records' | 'migrationHistory'>;
  /** Where the controller's consolidation and drain moves are read; without it the dashboard has none. */
  control?: Pick<HostControl, 'moves'>;
}

const tags = ['Dashboard'];

export function dashboardRoutes(deps: DashboardRoutesDeps) {
  const router = apiRouter();
  const rates = new RequestRates();
  const build = async (caller: Caller): Promise<Dashboard> => {
    const hosts = deps.fleet.live();
    rates.observe(hosts);
    const scope = caller.role === 'admin' ? undefined : caller.tenant;
    return dashboardFor(caller, {
      hosts,
      services: deps.services ? await deps.services.records.list(caller.tenant) : undefined,
      migrations: deps.services?.migrationHistory.list(scope),
      moves: caller.role === 'admin' && deps.control ? await deps.control.moves() : undefined,
      perSecond: (host, instance) => rates.perSecond(host, instance),
      now: Date.now(),
    });
  };

  router.openapi(createRoute({
    method: 'get', path: '/v1/dashboard', tags, summary: 'The fleet as the caller may see it',
    responses: { 200: jsonResponse(Dashboard, 'Hosts, services, migrations and (for an admin) moves'), ...errorResponses },
  }), async (c) => c.json(await build({ tenant: c.get('tenant'), role: c.get('role') }), 200));

  router.openapi(createRoute({
    method: 'get', path: '/v1/dashboard/events', tags, summary: 'The dashboard view, streamed whenever it changes',
    responses: {
      200: {
        description: 'Server-Sent Events: `event: dashboard` with the view (the Dashboard schema) as its data, at once and on every change; a `: keep-alive` comment after 15 s without one',
        content: { 'text/event-stream': { schema: z.string() } },
      },
      ...errorResponses,
    },
  }), (c) => {
    const caller: Caller = { tenant: c.get('tenant'), role: c.get('role') };
    return streamSSE(c, async (stream) => {
      let closed = false;
      let wake: (() => void) | undefined;
      stream.onAbort(() => {
        closed = true;
        wake?.();
      });
      let sent = '';
      let sentAt = 0;
      let failing = false;
      while (!closed) {
        try {
          const view = await build(caller);
          const { at: _at, ...content } = view;
          const now = JSON.stringify(content);
          if (now !== sent) {
            await stream.writeSSE({ event: 'dashboard', data: JSON.stringify(view) });
            sent = now;
            sentAt = Date.now();
          } else if (Date.now() - sentAt >= KEEP_ALIVE_MS) {
            await stream.write(': keep-alive\n\n');
            sentAt = Date.now();
          }
          failing = false;
        } catch (err) {
          // A store read failed (the broker is away): the reader keeps the last view; the next tick tries again.
          if (!failing) c.get('log').warn({ requestId: c.get('requestId'), err: (err as Error).message }, 'dashboard view not read; trying every second');
          failing = true;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, TICK_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    });
  });
  return router;
}
