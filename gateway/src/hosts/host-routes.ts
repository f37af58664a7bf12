/**
 * The hosts routes: `GET /v1/hosts` (each host as the caller's role may see
 * it: auth/host-view.ts), and, when the gateway has host control
 * (docs/autoscaling.md), `POST /v1/hosts/:id/drain`,
 * `POST /v1/hosts/:id/activate` and `GET /v1/consolidation`. Those three act
 * on the whole fleet and every tenant's instances: admin keys only.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { apiRouter, errorResponses, jsonResponse, pathName } from '../api/api-app.js';
import { HostCapacity, HostMove, HostRecord } from '../api/records.js';
import { hostViewFor } from '../auth/host-view.js';
import { requireAdmin } from '../auth/roles.js';
import type { FleetView } from '../fleet-view.js';
import { hostState } from '../planning/host-states.js';
import type { HostControl } from './host-control.js';

const tags = ['Hosts'];
const hostParams = z.strictObject({ id: pathName('The host\'s id') });

export function hostRoutes(deps: { fleet: FleetView; control?: HostControl }) {
  const app = apiRouter();
  app.openapi(createRoute({
    method: 'get', path: '/v1/hosts', tags, summary: 'The worker hosts',
    description: 'An admin key sees each host\'s whole record; a user key its capacity only.',
    responses: { 200: jsonResponse(z.strictObject({ hosts: z.array(z.union([HostRecord, HostCapacity])) }), 'The live hosts'), ...errorResponses },
  }), async (c) => c.json({ hosts: (await deps.fleet.list()).map((h) => hostViewFor(c.get('role'), h)) }, 200));

  const { control } = deps;
  if (!control) return app;
  app.openapi(createRoute({
    method: 'post', path: '/v1/hosts/{id}/drain', tags, summary: 'Drain a host: move its instances away (admin)',
    request: { params: hostParams },
    responses: {
      200: jsonResponse(z.strictObject({
        drain: z.strictObject({ hostId: z.string(), moved: z.array(HostMove), failed: z.array(z.strictObject({ instanceId: z.string(), error: z.string() })) })
          .openapi('HostDrainReport', { description: 'Every instance moved away, or why one could not be (the host then stays draining)' }),
      }), 'The drain'),
      ...errorResponses,
    },
  }), async (c) => {
    requireAdmin(c.get('role'), 'draining a host');
    const r = await control.drain(c.req.valid('param').id, c.get('requestId'));
    return c.json({ drain: { hostId: r.hostId, moved: r.moved, failed: r.failed } }, 200);
  });
  app.openapi(createRoute({
    method: 'post', path: '/v1/hosts/{id}/activate', tags, summary: 'Take a drained or draining host back into service (admin)',
    request: { params: hostParams },
    responses: { 200: jsonResponse(z.strictObject({ activated: z.string() }), 'Active again: its id'), ...errorResponses },
  }), async (c) => {
    requireAdmin(c.get('role'), 'activating a host');
    const { id } = c.req.valid('param');
    await control.activate(id, c.get('requestId'));
    return c.json({ activated: id }, 200);
  });
  app.openapi(createRoute({
    method: 'get', path: '/v1/consolidation', tags, summary: 'Each host\'s state and the services controller\'s latest moves (admin)',
    responses: {
      200: jsonResponse(z.strictObject({
        hosts: z.array(z.strictObject({
          id: z.string(), state: z.enum(['active', 'draining', 'drained']), stateReason: z.string().optional(),
          instances: z.number().int(), runningGuests: z.number().int(), releasable: z.boolean(),
        })),
        moves: z.array(HostMove),
      }).openapi('ConsolidationState', { description: 'Each host\'s state, and the services controller\'s latest moves, newest last' }), 'The hosts and moves'),
      ...errorResponses,
    },
  }), async (c) => {
    requireAdmin(c.get('role'), 'the consolidation journal');
    const hosts = (await deps.fleet.list()).map((h) => ({
      id: h.id, state: hostState(h), stateReason: h.stateReason, instances: h.instances?.length ?? 0, runningGuests: h.runningGuests, releasable: h.releasable ?? false,
    }));
    return c.json({ hosts, moves: await control.moves() }, 200);
  });
  return app;
}
