/**
 * What the dashboard shows a caller (docs/dashboard.md), as one plain
 * object made from the fleet's state: a pure function, so that what each
 * role may see is decided and tested in one place. A user sees its own
 * tenant only: hosts' capacity figures (auth/host-view.ts) with its own warm
 * functions, kept parents and instances; its services; its migrations. An
 * admin sees every tenant's on the hosts, every migration and the
 * consolidation moves.
 */
import type { ControllerMove, HostRecord, Role } from '@flurry/core';
import { hostState } from '../planning/host-states.js';
import type { ServiceView } from '../services/service-records.js';
import type { Dashboard, DashboardHost, MigrationEntry } from './dashboard-schema.js';

export interface Caller {
  tenant: string;
  role: Role;
}

export interface DashboardInput {
  hosts: HostRecord[];
  services?: ServiceView[];
  migrations?: MigrationEntry[];
  moves?: ControllerMove[];
  /** Requests per second of an instance on a host (request-rates.ts). */
  perSecond: (hostId: string, instanceId: string) => number | undefined;
  now: number;
}

/** The dashboard as `caller` may see it. `input.services` and `input.migrations` must be the caller's already (or every tenant's for an admin). */
export function dashboardFor(caller: Caller, input: DashboardInput): Dashboard {
  const mine = (tenant: string) => caller.role === 'admin' || tenant === caller.tenant;
  const hosts = [...input.hosts].sort((a, b) => a.id.localeCompare(b.id)).map((h): DashboardHost => ({
    id: h.id,
    state: hostState(h),
    ...(caller.role === 'admin' && h.stateReason ? { stateReason: h.stateReason } : {}),
    pager: h.pager,
    cores: h.cores,
    guestSlots: h.guestSlots,
    runningGuests: h.runningGuests,
    ...(h.memoryBudget ? { memoryBudget: h.memoryBudget } : {}),
    heartbeatAt: h.heartbeatAt,
    releasable: h.releasable ?? false,
    warm: h.warm.filter((w) => mine(w.tenant)),
    parents: (h.parents ?? []).filter((p) => mine(p.tenant)),
    instances: (h.instances ?? []).filter((i) => mine(i.tenant)).map((i) => ({
      tenant: i.tenant, service: i.service, instanceId: i.instanceId, requests: i.requests,
      ...rate(input.perSecond(h.id, i.instanceId)), ...(i.migrating ? { migrating: true } : {}),
    })),
  }));
  const out: Dashboard = { at: input.now, caller, hosts };
  if (input.services) {
    out.services = input.services.map((s) => ({
      name: s.name, function: s.function, min: s.min, max: s.max,
      instances: s.instances.map((i) => ({
        id: i.id, host: i.host, inFlight: i.inFlight, ...rate(input.perSecond(i.host, i.id)),
        ...(i.migrating ? { migrating: { target: i.migrating.target, since: i.migrating.since } } : {}),
      })),
    }));
  }
  if (input.migrations) out.migrations = input.migrations.filter((m) => mine(m.tenant));
  if (caller.role === 'admin' && input.moves) out.moves = input.moves;
  return out;
}

function rate(perSecond: number | undefined): { perSecond?: number } {
  return perSecond === undefined ? {} : { perSecond: Math.round(perSecond * 10) / 10 };
}
