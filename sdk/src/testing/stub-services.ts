/**
 * The services and host-control routes of the stub gateway (`/v1/services...`,
 * `/v1/instances/:id/migrate`, `/v1/hosts/:id/drain|activate`, `/v1/consolidation`), for the
 * SDK's and the CLI's tests.
 *
 * - A service gets `min` instances (`<name>-0`, `<name>-1`, ...) on `host-a` at once; a scale
 *   adds or removes the newest to fit the new bounds. A service of function `missing` is
 *   refused as not deployed; a taken name answers 409.
 * - Any instance of a service migrates (to `target`, default `host-b`) with a report whose rounds
 *   follow `maxRounds` (0: none); instance `busy-1` answers 409 as being migrated already.
 * - `host-a` drains with every instance moved; `host-b` drains with one move failed; other ids
 *   are not live hosts (404), for drain and activate alike.
 */
import type { ServerResponse } from 'node:http';
import type { ConsolidationState, HostDrainReport, MigrationReport, ServiceRecord } from '../types.js';
import { STUB_HOSTS, STUB_MOVE } from './stub-fleet.js';
import { sendError, sendJson } from './stub-replies.js';

export interface ServicesRequest {
  method: string;
  route: string;
  body: Buffer;
}

const STUB_DIGEST = 'cd'.repeat(32);

export function createStubServices() {
  const services = new Map<string, ServiceRecord>();

  function instancesUpTo(svc: ServiceRecord, count: number): void {
    while (svc.instances.length < count) {
      svc.instances.push({ id: `${svc.name}-${svc.instances.length}`, host: 'host-a', inFlight: 0, createdAt: Date.now() - 4_000 });
    }
    svc.instances.length = Math.min(svc.instances.length, count);
  }

  function migrationReport(target: string, maxRounds: number): MigrationReport {
    const rounds = Array.from({ length: Math.min(maxRounds, 3) }, (_, i) => ({ pages: 256 >> i, bytes: (256 >> i) * 65_536, ms: 4 - i }));
    return {
      source: 'host-a', target, mode: 'async', rounds, stopReason: maxRounds === 0 ? 'stop-and-copy' : 'budget', finalPages: 12,
      downtimeMs: 3.25, downtime: { stopMs: 1, waitMs: 0.5, readMs: 0.25, sendMs: 0, commitMs: 2, targetApplyMs: 0.5, targetCommitMs: 1, releaseMs: 0.25 },
      totalMs: 41.5, totalBytes: 3 * 2 ** 20, perPageMs: 0.01, forwarded: 1, pagesSent: rounds.reduce((n, r) => n + r.pages, 0) + 12, memoryBytes: 64 * 2 ** 20, placementMs: 0.75,
    };
  }

  function drainReport(hostId: string): HostDrainReport {
    if (hostId === 'host-a') return { hostId, moved: [STUB_MOVE], failed: [] };
    return { hostId, moved: [], failed: [{ instanceId: 'inst-9', error: 'no host can take it' }] };
  }

  function consolidation(): ConsolidationState {
    return {
      hosts: STUB_HOSTS.map((h) => ({
        id: h.id, state: h.state ?? 'active', stateReason: h.stateReason, instances: h.instances?.length ?? 0, runningGuests: h.runningGuests, releasable: h.releasable ?? false,
      })),
      moves: [STUB_MOVE],
    };
  }

  /** Answers the request if it is one of these routes; false otherwise. */
  function handle(request: ServicesRequest, res: ServerResponse): boolean {
    const { method, route } = request;
    // Parsed only on these routes: other routes' bodies need not be JSON.
    const json = () => (request.body.length === 0 ? {} : (JSON.parse(request.body.toString('utf8')) as Record<string, unknown>));
    let match: RegExpMatchArray | null;
    if (route === '/v1/services' && method === 'POST') {
      const body = json();
      const name = body.name as string;
      if (body.function === 'missing') sendError(res, 404, 'not_found', `cannot create service "${name}": function "missing" is not deployed`);
      else if (services.has(name)) sendError(res, 409, 'conflict', `service "${name}" exists already`);
      else {
        const min = (body.min as number | undefined) ?? 1;
        const now = Date.now();
        const svc: ServiceRecord = {
          tenant: 'default', name, function: body.function as string, digest: STUB_DIGEST, min, max: (body.max as number | undefined) ?? min,
          targetConcurrency: (body.targetConcurrency as number | undefined) ?? 8, createdAt: now - 4_000, updatedAt: now, instances: [],
          ...(body.init === undefined ? {} : { init: body.init as string }),
        };
        instancesUpTo(svc, min);
        services.set(name, svc);
        sendJson(res, 201, { service: svc });
      }
      return true;
    }
    if (route === '/v1/services' && method === 'GET') {
      sendJson(res, 200, { services: [...services.values()] });
      return true;
    }
    if ((match = route.match(/^\/v1\/services\/([^/]+)$/))) {
      const name = decodeURIComponent(match[1]);
      const svc = services.get(name);
      if (!svc) sendError(res, 404, 'not_found', `service "${name}" does not exist`);
      else if (method === 'GET') sendJson(res, 200, { service: svc });
      else if (method === 'PATCH') {
        const body = json();
        if (typeof body.min === 'number') svc.min = body.min;
        if (typeof body.max === 'number') svc.max = body.max;
        else if (svc.min > svc.max) svc.max = svc.min;
        if (typeof body.targetConcurrency === 'number') svc.targetConcurrency = body.targetConcurrency;
        instancesUpTo(svc, Math.min(Math.max(svc.instances.length, svc.min), svc.max));
        sendJson(res, 200, { service: svc });
      } else if (method === 'DELETE') {
        services.delete(name);
        sendJson(res, 200, { deleted: name });
      } else return false;
      return true;
    }
    if ((match = route.match(/^\/v1\/instances\/([^/]+)\/migrate$/)) && method === 'POST') {
      const id = decodeURIComponent(match[1]);
      const body = json();
      const known = [...services.values()].some((svc) => svc.instances.some((i) => i.id === id));
      if (id === 'busy-1') sendError(res, 409, 'conflict', `instance ${id} is being migrated already (to host host-b)`);
      else if (!known) sendError(res, 404, 'not_found', `no instance ${id}`);
      else sendJson(res, 200, { migration: migrationReport((body.target as string | undefined) ?? 'host-b', (body.maxRounds as number | undefined) ?? 30) });
      return true;
    }
    if ((match = route.match(/^\/v1\/hosts\/([^/]+)\/(drain|activate)$/)) && method === 'POST') {
      const id = decodeURIComponent(match[1]);
      if (!STUB_HOSTS.some((h) => h.id === id)) sendError(res, 404, 'not_found', `${id} is not a live host`);
      else if (match[2] === 'drain') sendJson(res, 200, { drain: drainReport(id) });
      else sendJson(res, 200, { activated: id });
      return true;
    }
    if (route === '/v1/consolidation' && method === 'GET') {
      sendJson(res, 200, consolidation());
      return true;
    }
    return false;
  }

  return { handle };
}
