/**
 * Live migration of a service instance as the gateway sees it
 * (docs/services.md, "Migration"): the instance marked `migrating` in its
 * placement, the source host asked to drive the move, and the placement
 * following the answer; when the answer is lost, the hosts' heartbeats say
 * who holds the instance, and the controller repairs placements that
 * disagree with the hosts.
 */
import {
  call, FlurryError, MigrationSubjects, newId, serviceKey,
  type Fabric, type Logger, type MigrateInstanceReply, type MigrateInstanceRequest, type MigrationReportWire, type ServiceInstanceRecord,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { migrationCandidates, migrationTarget, serviceParent } from '../planning/migration-target.js';
import type { ServiceState, ServiceStore } from './service-store.js';
import type { MigrationHistory } from '../ui/migration-history.js';

/** A `migrating` mark older than this is taken for the leftover of a gateway that died mid-migration (a migration answers within 5 minutes). */
const MIGRATION_MARK_MS = 6 * 60_000;
/** A repair trusts only heartbeats sent this long after the placement was written (hosts' clocks may be off by less). */
const PLACEMENT_SETTLE_MS = 1000;

/** How the pre-copy runs, as the API may ask (the source host gets them in its MigrateInstanceRequest). */
export type MigrationTuning = Pick<MigrateInstanceRequest, 'downtimeBudgetMs' | 'maxRounds' | 'verify'>;

export interface InstanceMigrationsDeps {
  fabric: Fabric;
  fleet: FleetView;
  store: ServiceStore;
  /** A host silent this long past its TTL is gone for good (FLURRY_INSTANCE_LOST_MS). */
  instanceLostMs: number;
  log: Logger;
  /** Where committed migrations are kept for the dashboard. */
  history?: MigrationHistory;
}

export class InstanceMigrations {
  constructor(private readonly deps: InstanceMigrationsDeps) {}

  /**
   * Live-migrates an instance to `target` (default: migrationTarget's
   * choice); the source host drives it (docs/services.md, "Migration") and
   * the placement record follows. A `migrating` mark set by compare-and-set
   * on the placement record keeps a second migration of the instance (from
   * any gateway) out until this one commits or aborts. `tenant` scopes the
   * search to one tenant's instances (a user's request); undefined searches
   * every tenant's (an admin's).
   */
  async migrate(tenant: string | undefined, instanceId: string, target?: string, opts: MigrationTuning = {}): Promise<MigrationReportWire & { placementMs: number }> {
    const { store, fleet, fabric, log } = this.deps;
    if (target !== undefined && (typeof target !== 'string' || target === '')) throw new FlurryError('bad_request', 'target must be a host id');
    for (const key of await store.keys(tenant)) {
      const c = await store.read(key, true).catch(() => undefined);
      if (!c?.instances.some((i) => i.id === instanceId)) continue;
      const requestId = newId('req');
      const { record, inst, to } = await store.locked(key, async () => {
        const fresh = await store.read(key, true);
        const found = fresh.instances.find((i) => i.id === instanceId);
        if (!found) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
        const live = fleet.live();
        const chosen = target ?? migrationTarget(live, found.host, serviceParent(fresh.record, found.digest))?.id;
        if (!chosen) throw new FlurryError('no_capacity', 'no other live host to migrate to', { retryAfterSeconds: 1 });
        if (chosen === found.host) throw new FlurryError('bad_request', `instance ${instanceId} is on host ${chosen} already`);
        if (!migrationCandidates(live, found.host).some((h) => h.id === chosen)) throw new FlurryError('bad_request', `host ${chosen} is not a live host that takes instances`);
        await store.changeInstance(key, instanceId, (i) => {
          if (i.migrating && Date.now() - i.migrating.since < MIGRATION_MARK_MS) {
            throw new FlurryError('conflict', `instance ${instanceId} is being migrated already (to host ${i.migrating.target}, for ${Math.round((Date.now() - i.migrating.since) / 1000)} s)`);
          }
          return { ...i, migrating: { target: chosen, since: Date.now(), migrationRequest: requestId } };
        });
        return { record: fresh.record, inst: found, to: chosen };
      });
      let reply: MigrateInstanceReply;
      let answered = false;
      try {
        const req: MigrateInstanceRequest = { requestId, tenant: record.tenant, service: record.name, instanceId, name: record.function, digest: inst.digest, target: to, ...opts };
        // Answered within the table's timeout for `migrate` (5 minutes).
        const asked = call(fabric.nc, 'migrate', MigrationSubjects.migrate(inst.host), req);
        let watch: NodeJS.Timeout | undefined;
        // A source that dies mid-migration never answers: give up once its heartbeats stop, or it was restarted.
        const incarnation = fleet.incarnation(inst.host);
        const sourceGone = new Promise<never>((_, reject) => {
          watch = setInterval(() => {
            if (!fleet.live().some((h) => h.id === inst.host)) reject(new Error(`host ${inst.host} stopped heartbeating`));
            else if (fleet.incarnation(inst.host) !== incarnation) reject(new Error(`host ${inst.host} restarted`));
          }, 500);
        });
        // The source's answer is lost in a broker outage: stop waiting for it then.
        try {
          reply = await fabric.link.orOutage(Promise.race([asked, sourceGone]));
        } catch (err) {
          throw new FlurryError('unavailable', `source host ${inst.host} did not answer the migration: ${(err as Error).message}`, { retryAfterSeconds: 1 });
        } finally {
          clearInterval(watch);
        }
        answered = true;
        if (!reply.ok) throw FlurryError.fromWire(reply.error);
      } catch (err) {
        // Without the source's answer the outcome is unknown: the hosts' records say who holds the instance once it settles.
        const owner = answered ? undefined : await this.settledOwner(instanceId, [inst.host, to]);
        await store.locked(key, () => store.changeInstance(key, instanceId, (i) => (i.migrating?.migrationRequest === requestId ? { ...withoutMark(i), ...(owner ? { host: owner, placedAt: Date.now() } : {}) } : i)))
          .catch((e: unknown) => log.warn({ instanceId, err: (e as Error).message }, 'clearing a migration mark failed'));
        if (owner) log.warn({ instanceId, source: inst.host, target: to, owner, err: (err as Error).message }, 'migration answer lost; the hosts say who holds the instance');
        if (owner === to) throw new FlurryError('unavailable', `the migration's answer was lost (${(err as Error).message}); it committed: instance ${instanceId} is on host ${to} now`, { retryAfterSeconds: 1 });
        throw err;
      }
      // Routing does not wait for this: the instance's subject has no host in it, and the target serves it already.
      const placed = performance.now();
      await store.locked(key, () => store.changeInstance(key, instanceId, (i) => ({ ...withoutMark(i), host: to, placedAt: Date.now() })));
      const placementMs = performance.now() - placed;
      this.deps.history?.add(record.tenant, record.name, instanceId, reply.report);
      log.info({ service: `${record.tenant}/${record.name}`, instanceId, source: inst.host, target: to, downtimeMs: reply.report.downtimeMs }, 'service instance migrated');
      return { ...reply.report, placementMs };
    }
    throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
  }

  /**
   * Makes the placements agree with the hosts (the controller calls it now
   * and then): an instance that is not migrating, whose record names a host
   * that does not list it while exactly one live host does, is placed there.
   * A safety net for a migration whose outcome the gateway never learned.
   */
  async repairPlacements(services: ServiceState[]): Promise<void> {
    const { store, log } = this.deps;
    const hosts = this.deps.fleet.live();
    for (const { record, instances } of services) {
      const key = serviceKey(record.tenant, record.name);
      for (const inst of instances) {
        if (inst.migrating) continue;
        // Only heartbeats sent after the placement was written count: an older one (the source's from before a
        // migration that just committed, or the target's from before it) would undo a correct placement.
        const since = (inst.placedAt ?? inst.createdAt) + PLACEMENT_SETTLE_MS;
        if (hosts.some((h) => h.heartbeatAt <= since && (h.id === inst.host || h.instances?.some((i) => i.instanceId === inst.id)))) continue;
        const listing = hosts.filter((h) => h.instances?.some((i) => i.instanceId === inst.id && !i.migrating));
        if (listing.length !== 1 || listing[0]!.id === inst.host || hosts.some((h) => h.id === inst.host && h.instances?.some((i) => i.instanceId === inst.id))) continue;
        const owner = listing[0]!.id;
        log.warn({ service: `${record.tenant}/${record.name}`, instanceId: inst.id, recorded: inst.host, owner }, 'placement repaired: the instance is on another host than its record said');
        await store.locked(key, () => store.changeInstance(key, inst.id, (i) => (i.migrating || i.host !== inst.host ? i : { ...i, host: owner, placedAt: Date.now() })))
          .catch((err: unknown) => log.warn({ instanceId: inst.id, err: (err as Error).message }, 'repairing a placement failed'));
      }
    }
  }

  /**
   * After a migration whose answer was lost: which of `candidates` holds the
   * instance, once each of them has either heartbeat since (after the broker
   * is back) or been silent past the instance grace (gone for good: a paused
   * source may still run the migration when it resumes), and at most one
   * lists it, not migrating any more. Undefined when none holds it (its
   * holder died), or when that does not settle within `withinMs`.
   */
  private async settledOwner(instanceId: string, candidates: string[], withinMs = 60_000): Promise<string | undefined> {
    const { fleet } = this.deps;
    const until = Date.now() + withinMs;
    await this.deps.fabric.link.whenUp(withinMs).catch(() => undefined);
    const since = Date.now();
    while (Date.now() < until) {
      const live = fleet.live().filter((h) => candidates.includes(h.id));
      const accounted = candidates.every((id) => live.some((h) => h.id === id && h.heartbeatAt > since) || fleet.silentLongerThan(id, this.deps.instanceLostMs));
      if (accounted) {
        const holding = live.filter((h) => h.instances?.some((i) => i.instanceId === instanceId));
        if (holding.length === 0) return undefined;
        if (holding.length === 1 && !holding[0]!.instances!.find((i) => i.instanceId === instanceId)!.migrating) return holding[0]!.id;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return undefined;
  }
}

function withoutMark(i: ServiceInstanceRecord): ServiceInstanceRecord {
  const { migrating: _m, ...rest } = i;
  return rest;
}
