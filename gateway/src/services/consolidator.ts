/**
 * Consolidation (docs/autoscaling.md), part of the services controller: when
 * load allows, it packs service instances onto fewer hosts by live-migrating
 * every instance off the active host that holds the fewest, onto the fullest
 * hosts that still have room, then marks that host drained: a cloud
 * autoscaler may release it (`releasable` in `GET /v1/hosts`). A host that
 * held instances and has none left (the autoscaler scaled in) is marked
 * drained the same way. It stays away while the autoscaler is scaling or has
 * scaled out within the cool-down, and it never drains the last active host.
 */
import { serviceKey, type Fabric, type HostRecord, type Logger } from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import type { Autoscaler } from './autoscaler.js';
import type { FleetLoad } from './fleet-load.js';
import { isActive } from './host-capacity.js';
import { setHostState } from './host-state.js';
import type { InstanceMover, InstanceRef } from './instance-mover.js';
import type { ServiceManager } from './service-manager.js';

export interface PlacedInstance extends InstanceRef {
  /** Requests in flight to it, fleet-wide, and its service's target per instance. */
  inFlight: number;
  targetConcurrency: number;
}

export interface ConsolidationPlan {
  source: string;
  reason: string;
  moves: { inst: PlacedInstance; to: string; reason: string }[];
}

/**
 * The next consolidation step, if any: the active host with the fewest
 * instances whose instances are all lightly loaded (at most half their
 * target in flight) and fit on the other active hosts that hold instances
 * (at most `perHost` each), fullest first.
 */
export function planConsolidation(hosts: HostRecord[], instances: PlacedInstance[], perHost: number): ConsolidationPlan | undefined {
  const on = new Map<string, PlacedInstance[]>();
  for (const h of hosts) if (isActive(h)) on.set(h.id, []);
  for (const i of instances) on.get(i.host)?.push(i);
  const holding = [...on.entries()].filter(([, list]) => list.length > 0);
  if (holding.length < 2) return undefined;
  const inFlight = (list: PlacedInstance[]) => list.reduce((s, i) => s + i.inFlight, 0);
  const sources = [...holding].sort((a, b) => a[1].length - b[1].length || inFlight(a[1]) - inFlight(b[1]) || b[0].localeCompare(a[0]));
  for (const [source, list] of sources) {
    if (list.some((i) => i.inFlight * 2 > i.targetConcurrency)) continue;
    const room = new Map(holding.filter(([id]) => id !== source).map(([id, l]) => [id, l.length]));
    const moves: ConsolidationPlan['moves'] = [];
    for (const inst of list) {
      const to = [...room.entries()].filter(([, n]) => n < perHost).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
      if (!to) break;
      moves.push({
        inst,
        to: to[0],
        reason: `consolidate: ${source} holds ${list.length} instance(s) with ${inFlight(list)} request(s) in flight; ${to[0]} has room (${to[1]}/${perHost} instances), so ${source} can be drained`,
      });
      room.set(to[0], to[1] + 1);
    }
    if (moves.length === list.length) {
      return { source, moves, reason: `consolidate: its ${list.length} lightly loaded instance(s) fit on ${[...new Set(moves.map((m) => m.to))].join(', ')}` };
    }
  }
  return undefined;
}

export interface ConsolidatorDeps {
  fabric: Fabric;
  services: ServiceManager;
  fleet: FleetView;
  load: FleetLoad;
  autoscaler: Autoscaler;
  mover: InstanceMover;
  log: Logger;
  hostInstances: number;
  /** No consolidation this long after a scale-out. */
  quietMs: number;
}

export class Consolidator {
  /** Hosts seen holding instances: drained once they hold none. */
  private readonly everHeld = new Set<string>();

  constructor(private readonly deps: ConsolidatorDeps) {}

  /**
   * A host reactivated to take instances (a scale-out, a drain elsewhere):
   * drained again once it holds none, even if its instances came and went
   * between two rounds.
   */
  expectInstances(hostId: string): void {
    this.everHeld.add(hostId);
  }

  /** One round: drain hosts left empty, or move the instances off one host. */
  async tick(): Promise<void> {
    const { autoscaler, quietMs } = this.deps;
    const placed = await this.placed();
    // Noted while the autoscaler works too: an instance made and removed during a scale-out's quiet time still counts.
    for (const i of placed) this.everHeld.add(i.host);
    if (autoscaler.scaling || Date.now() - autoscaler.lastScaleOutAt < quietMs) return;
    const hosts = this.deps.fleet.live();
    let active = hosts.filter(isActive);
    for (const h of active) {
      const empty = !placed.some((i) => i.host === h.id) && (h.instances?.length ?? 0) === 0 && h.runningGuests === 0;
      if (!empty || !this.everHeld.has(h.id) || active.length <= 1) continue;
      await this.markDrained(h.id, 'consolidate: no service instances left on it (scaled in)');
      active = active.filter((x) => x.id !== h.id);
    }
    const plan = planConsolidation(active, placed, this.deps.hostInstances);
    if (plan) await this.run(plan);
  }

  private async run(plan: ConsolidationPlan): Promise<void> {
    const { fabric, log, mover } = this.deps;
    log.info({ hostId: plan.source, reason: plan.reason, moves: plan.moves.length }, 'consolidating host');
    await setHostState(fabric, plan.source, 'draining', plan.reason);
    let ok = true;
    for (const m of plan.moves) ok = (await mover.move(m.inst, m.to, 'consolidate', m.reason)).ok && ok;
    if (ok) await this.markDrained(plan.source, plan.reason);
    else await setHostState(fabric, plan.source, 'active', 'consolidation failed').catch(() => undefined);
  }

  private async markDrained(hostId: string, reason: string): Promise<void> {
    await setHostState(this.deps.fabric, hostId, 'drained', reason);
    this.everHeld.delete(hostId);
    this.deps.log.info({ hostId, reason }, 'host drained');
  }

  /** Every service instance, where it is and its load. */
  private async placed(): Promise<PlacedInstance[]> {
    const out: PlacedInstance[] = [];
    for (const { record, instances } of await this.deps.services.all()) {
      const load = this.deps.load.service(serviceKey(record.tenant, record.name)).perInstance;
      for (const i of instances) {
        out.push({ tenant: record.tenant, service: record.name, instanceId: i.id, host: i.host, inFlight: load.get(i.id) ?? 0, targetConcurrency: record.targetConcurrency });
      }
    }
    return out;
  }
}
