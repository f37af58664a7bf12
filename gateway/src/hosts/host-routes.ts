/**
 * Host drain and consolidation routes (docs/autoscaling.md):
 * `POST /v1/hosts/:id/drain`, `POST /v1/hosts/:id/activate` and
 * `GET /v1/consolidation`. `GET /v1/hosts` (app.ts) shows each host's
 * `state`, `stateReason`, `instances` and `releasable`. All three act on
 * the whole fleet and every tenant's instances: admin keys only.
 */
import type { Hono } from 'hono';
import { requireAdmin, type CallerVariables } from '../auth/roles.js';
import type { FleetView } from '../fleet-view.js';
import { hostState } from '../planning/host-states.js';
import type { HostControl } from './host-control.js';

type Env = { Variables: { requestId: string } & CallerVariables };

export function addHostRoutes<E extends Env>(app: Hono<E>, deps: { control: HostControl; fleet: FleetView }): void {
  app.post('/v1/hosts/:id/drain', async (c) => {
    requireAdmin(c.var.role, 'draining a host');
    const r = await deps.control.drain(c.req.param('id'), c.var.requestId);
    return c.json({ drain: { hostId: r.hostId, moved: r.moved, failed: r.failed } });
  });
  app.post('/v1/hosts/:id/activate', async (c) => {
    requireAdmin(c.var.role, 'activating a host');
    await deps.control.activate(c.req.param('id'), c.var.requestId);
    return c.json({ activated: c.req.param('id') });
  });
  app.get('/v1/consolidation', async (c) => {
    requireAdmin(c.var.role, 'the consolidation journal');
    const hosts = (await deps.fleet.list()).map((h) => ({
      id: h.id, state: hostState(h), stateReason: h.stateReason, instances: h.instances?.length ?? 0, runningGuests: h.runningGuests, releasable: h.releasable ?? false,
    }));
    return c.json({ hosts, moves: await deps.control.moves() });
  });
}
