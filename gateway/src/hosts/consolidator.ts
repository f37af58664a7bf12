/**
 * Consolidation (docs/autoscaling.md), part of the services controller: when
 * load allows, it packs service instances onto fewer hosts by live-migrating
 * every instance off the active host that holds the fewest, onto the fullest
 * hosts that still have room (planning/consolidation.ts decides), then marks
 * that host drained: a cloud
 * autoscaler may release it (`releasable` in `GET /v1/hosts`). A host that
 * held instances and has none left (the autoscaler scaled in) is marked
 * drained the same way. It stays away while the autoscaler is scaling or has
 * scaled out within the cool-down, and it never drains the last active host.
 */
import { serviceKey, type Fabric, type Logger } from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { emptiedHosts, planConsolidation, type ConsolidationPlan, type PlacedInstance } from '../planning/consolidation.js';
import { isActive } from '../planning/host-states.js';
import { serviceParent } from '../planning/migration-target.js';
import type { Autoscaler } from '../services/autoscaler.js';
import type { FleetLoad } from '../services/fleet-load.js';
import type { ServiceStore } from '../services/service-store.js';
import { setHostState } from './host-state.js';
import type { InstanceMover } from './instance-mover.js';

export interface ConsolidatorDeps {
  fabric: Fabric;
  store: ServiceStore;
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
    const drained = new Set<string>();
    for (const h of emptiedHosts(hosts, placed, this.everHeld)) {
      await this.markDrained(h.id, 'consolidate: no service instances left on it (scaled in)');
      drained.add(h.id);
    }
    const active = hosts.filter((h) => isActive(h) && !drained.has(h.id));
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
    for (const { record, instances } of await this.deps.store.all()) {
      const load = this.deps.load.service(serviceKey(record.tenant, record.name)).perInstance;
      for (const i of instances) {
        const parent = serviceParent(record, i.digest);
        out.push({ tenant: record.tenant, service: record.name, instanceId: i.id, host: i.host, inFlight: load.get(i.id) ?? 0, targetConcurrency: record.targetConcurrency, ...(parent ? { parent } : {}) });
      }
    }
    return out;
  }
}
