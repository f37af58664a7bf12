/**
 * Drain of one host (docs/autoscaling.md), by hand (`POST /v1/hosts/:id/drain`)
 * or by a host that received SIGTERM: the host stops taking work, the
 * controller live-migrates each of its instances to the active host with the
 * fewest, one holding the instance's parent warm first (the migration then
 * neither boots nor hashes it; reactivating a drained host when the active ones are full; a
 * failed move is tried once more on another host), and a host that stays
 * up is then marked drained. No request is lost: migration holds requests
 * during stop-and-copy and the target answers them.
 */
import { FlurryError, type DrainHostReply, type DrainHostRequest, type Fabric, type HostRecord, type Logger } from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { pickHosts } from '../planning/instance-hosts.js';
import { holdsParent, serviceParent } from '../planning/migration-target.js';
import type { ServiceStore } from '../services/service-store.js';
import { setHostState } from './host-state.js';
import type { InstanceMover } from './instance-mover.js';

export interface HostDrainDeps {
  fabric: Fabric;
  store: ServiceStore;
  fleet: FleetView;
  mover: InstanceMover;
  log: Logger;
  hostInstances: number;
  reactivate(hosts: HostRecord[], reason: string): Promise<void>;
}

export async function drainHost(deps: HostDrainDeps, req: DrainHostRequest): Promise<DrainHostReply> {
  const host = deps.fleet.live().find((h) => h.id === req.hostId);
  if (!host) throw new FlurryError('not_found', `host ${req.hostId} is not a live host`);
  const reason = `drain (${req.reason}): ${req.hostId} is being emptied`;
  if (!req.exiting) await setHostState(deps.fabric, req.hostId, 'draining', reason);
  const moved: Extract<DrainHostReply, { ok: true }>['moved'] = [];
  const failed: { instanceId: string; error: string }[] = [];
  const placed = new Map<string, number>();
  for (const { record, instances } of await deps.store.all()) {
    for (const inst of instances.filter((i) => i.host === req.hostId)) {
      const ref = { tenant: record.tenant, service: record.name, instanceId: inst.id, host: req.hostId };
      const parent = serviceParent(record, inst.digest);
      let error = 'no other host has room for it';
      const tried = new Set<string>([req.hostId]);
      for (let attempt = 0; attempt < 2; attempt++) {
        const candidates = deps.fleet.live().filter((h) => !tried.has(h.id));
        const choice = pickHosts(candidates, 1, deps.hostInstances, placed, (h) => holdsParent(h, parent));
        const to = choice.hosts[0];
        if (!to) break;
        if (choice.reactivate.length > 0) await deps.reactivate(choice.reactivate, `drain of ${req.hostId}`);
        tried.add(to.id);
        const move = await deps.mover.move(ref, to.id, 'drain', `${reason}; ${to.id} ${holdsParent(to, parent) ? 'holds its parent warm' : 'has the fewest instances'}`);
        if (move.ok) {
          moved.push(move);
          placed.set(to.id, (placed.get(to.id) ?? 0) + 1);
          error = '';
          break;
        }
        error = move.error ?? 'migration failed';
      }
      if (error) failed.push({ instanceId: inst.id, error });
    }
  }
  // A host with instances that could not move stays draining (they serve there); drain it again later.
  if (!req.exiting && failed.length === 0) await setHostState(deps.fabric, req.hostId, 'drained', reason);
  deps.log.info({ hostId: req.hostId, reason: req.reason, moved: moved.length, failed: failed.length }, 'host drain done');
  return { ok: true, hostId: req.hostId, moved, failed };
}
