/**
 * The autoscaler (docs/autoscaling.md), part of the services controller: it
 * runs on the one gateway that holds the controller's lease, reads the
 * fleet-wide load (fleet-load.ts) and carries out what the planners
 * (planning/scaling.ts, planning/instance-hosts.ts) decide: it scales out as
 * soon as a load report asks for more (a report follows a burst within
 * milliseconds), forking the warm parent onto the hosts with fewest
 * instances; it scales in only after the load has asked for fewer instances
 * for a whole cool-down, removing the instances on the emptiest hosts first
 * so that consolidation has less to move.
 */
import type { FleetView } from '../fleet-view.js';
import { serviceKey, type HostRecord, type Logger, type ServiceInstanceRecord, type ServiceRecord } from '@flurry/core';
import { hostState } from '../planning/host-states.js';
import { pickHosts } from '../planning/instance-hosts.js';
import { migrationTarget, serviceParent } from '../planning/migration-target.js';
import { desiredInstances, scaleInVictims, scalingDecision } from '../planning/scaling.js';
import type { FleetLoad } from './fleet-load.js';
import type { StandbyParents } from './standby-parents.js';
import type { InstanceScaling } from './instance-scaling.js';
import type { ServiceStore } from './service-store.js';

export interface AutoscalerDeps {
  store: ServiceStore;
  scaling: InstanceScaling;
  fleet: FleetView;
  load: FleetLoad;
  log: Logger;
  /** Load must ask for fewer instances this long before any is removed. */
  cooldownMs: number;
  /** Instances one host takes. */
  hostInstances: number;
  /** Sets drained hosts active again when the active ones are full. */
  reactivate(hosts: HostRecord[], reason: string): Promise<void>;
  /** Keeps the service's parent warm where its next instances would go. */
  standby?: StandbyParents;
  /** Runs a scale-in between consolidation rounds and drains (they must not move an instance being removed). */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

export class Autoscaler {
  /** Services with a scaling step under way: evaluated again when it ends. */
  private readonly busy = new Map<string, boolean>();
  /**
   * Services with a scale-in under way. It runs apart from the steps (it may
   * wait for a consolidation round and for requests in flight), so that a
   * burst meanwhile still scales out at once.
   */
  private readonly shrinking = new Set<string>();
  /** When each service's load last asked for at least its current instances. */
  private readonly lastNeed = new Map<string, number>();
  /** Instances made by this controller that heartbeats may not list yet, per host. */
  private readonly recent = new Map<string, { host: string; at: number }>();
  /** When the last scale-out started (consolidation waits a cool-down after it). */
  lastScaleOutAt = 0;

  constructor(private readonly deps: AutoscalerDeps) {}

  /** True while any scaling step runs. */
  get scaling(): boolean {
    return this.busy.size > 0 || this.shrinking.size > 0;
  }

  /** Looks at one service's load and scales it if needed; never two steps at once for a service. */
  evaluate(tenant: string, name: string): void {
    const key = serviceKey(tenant, name);
    if (this.busy.has(key)) {
      this.busy.set(key, true);
      return;
    }
    this.busy.set(key, false);
    void this.step(tenant, name, key)
      .catch((err: unknown) => this.deps.log.warn({ service: `${tenant}/${name}`, err: (err as Error).message }, 'autoscaling step failed'))
      .finally(() => {
        const again = this.busy.get(key);
        this.busy.delete(key);
        if (again) this.evaluate(tenant, name);
      });
  }

  forget(key: string): void {
    this.lastNeed.delete(key);
  }

  private async step(tenant: string, name: string, key: string): Promise<void> {
    const st = await this.deps.store.state(tenant, name).catch(() => undefined);
    if (!st) {
      this.forget(key);
      return;
    }
    const load = this.deps.load.service(key);
    const current = st.instances.length;
    const { want, needSince, action } = scalingDecision({
      record: st.record, current, load, needSince: this.lastNeed.get(key), now: Date.now(), cooldownMs: this.deps.cooldownMs, shrinking: this.shrinking.has(key),
    });
    this.lastNeed.set(key, needSince);
    const why = `${load.total} requests in flight${load.held > 0 ? ` (${load.held} held)` : ''} over ${current} instances, target ${st.record.targetConcurrency} each: want ${want} (min ${st.record.min}, max ${st.record.max})`;
    if (action.kind === 'out') await this.scaleOut(tenant, name, action.count, want, why);
    else if (action.kind === 'standby') this.keepStandby(st.record, st.instances.map((i) => i.host), action.room);
    if (action.kind === 'standby' || action.kind === 'none') this.keepMigrationStandby(st.record, st.instances);
    else if (action.kind === 'in') {
      this.shrinking.add(key);
      void this.scaleIn(tenant, name, key, why)
        .catch((err: unknown) => this.deps.log.warn({ service: `${tenant}/${name}`, err: (err as Error).message }, 'scale-in failed'))
        .finally(() => {
          this.shrinking.delete(key);
          this.lastNeed.set(key, Date.now());
        });
    }
  }

  /** `count` more instances, `want` in all (instance-scaling.ts counts again before it makes them). */
  private async scaleOut(tenant: string, name: string, count: number, want: number, why: string): Promise<void> {
    this.lastScaleOutAt = Date.now();
    const now = Date.now();
    for (const [id, r] of this.recent) if (now - r.at > 5000) this.recent.delete(id);
    const extra = new Map<string, number>();
    const live = this.deps.fleet.live();
    const byId = new Map(live.map((h) => [h.id, h]));
    for (const [id, r] of this.recent) {
      // Counted until the host's heartbeat lists it.
      const h = byId.get(r.host);
      if (h && !(h.instances ?? []).some((i) => i.instanceId === id)) extra.set(r.host, (extra.get(r.host) ?? 0) + 1);
    }
    const choice = pickHosts(live, count, this.deps.hostInstances, extra);
    if (choice.hosts.length === 0) {
      this.deps.log.warn({ service: `${tenant}/${name}`, reason: why }, 'no host has room for another instance');
      return;
    }
    this.deps.log.info({ service: `${tenant}/${name}`, reason: why, hosts: choice.hosts.map((h) => h.id), reactivate: choice.reactivate.map((h) => h.id) }, 'scaling out');
    if (choice.reactivate.length > 0) await this.deps.reactivate(choice.reactivate, `scale-out of ${tenant}/${name}`);
    const made = await this.deps.scaling.addInstances(tenant, name, choice.hosts, want, why);
    for (const m of made) this.recent.set(m.id, { host: m.host, at: Date.now() });
  }

  /**
   * Standby parents on the hosts the next `room` instances would go to (drained ones included: a scale-out
   * reactivates them), other than those holding an instance already; not on hosts that are exiting.
   */
  private keepStandby(record: ServiceRecord, holding: string[], room: number): void {
    if (!this.deps.standby) return;
    const busy = new Set(holding);
    const next = pickHosts(this.deps.fleet.live().filter((h) => hostState(h) !== 'draining'), room, this.deps.hostInstances).hosts.filter((h) => !busy.has(h.id));
    this.deps.standby.keep(record, [...new Map(next.map((h) => [h.id, h])).values()]);
  }

  /**
   * A standby parent where each instance would be migrated to by default (a service's own parent only: booting
   * and hashing a large one inside a migration starves the instance's clients of CPU for seconds).
   */
  private keepMigrationStandby(record: ServiceRecord, instances: ServiceInstanceRecord[]): void {
    if (!this.deps.standby) return;
    const live = this.deps.fleet.live();
    const targets = instances.flatMap((i) => {
      const parent = serviceParent(record, i.digest);
      const to = parent && !i.migrating ? migrationTarget(live, i.host, parent) : undefined;
      return to ? [to] : [];
    });
    if (targets.length > 0) this.deps.standby.keep(record, [...new Map(targets.map((h) => [h.id, h])).values()]);
  }

  /** Removes the instances the load no longer asks for, decided again once consolidation and drains let it run. */
  private async scaleIn(tenant: string, name: string, key: string, why: string): Promise<void> {
    await this.deps.exclusive(async () => {
      const st = await this.deps.store.state(tenant, name);
      const load = this.deps.load.service(key);
      const count = st.instances.length - desiredInstances(st.record, load);
      if (count <= 0) return;
      const victims = scaleInVictims(st.instances, count, load.perInstance, this.deps.fleet.live());
      this.deps.log.info({ service: `${tenant}/${name}`, reason: why, victims }, 'scaling in');
      await this.deps.scaling.removeInstances(tenant, name, victims, why, (id) => this.deps.load.instance(key, id) === 0);
    });
  }
}
