/**
 * Which hosts can take service instances, for the services controller:
 * a host takes up to `perHost` instances (FLURRY_HOST_INSTANCES), counted
 * from the instance lists in the hosts' heartbeats plus what the controller
 * placed since. Only active hosts take instances; a drained host (one that
 * consolidation emptied and a cloud autoscaler has not released yet) is
 * reactivated when the active ones are full.
 */
import type { HostRecord } from '@flurry/core';

export function hostState(h: HostRecord): NonNullable<HostRecord['state']> {
  return h.state ?? (h.draining ? 'draining' : 'active');
}

export function isActive(h: HostRecord): boolean {
  return hostState(h) === 'active' && !h.draining;
}

export function instanceCount(h: HostRecord): number {
  return h.instances?.length ?? 0;
}

export interface HostChoice {
  /** One host per instance to make (a host may appear several times). */
  hosts: HostRecord[];
  /** Drained hosts among them, to set active first. */
  reactivate: HostRecord[];
}

/**
 * Hosts for `count` new instances, spread: each goes to the host with the
 * fewest instances (counting those already assigned), active hosts first,
 * then drained ones. `extra` adds instances the heartbeats do not list yet.
 * Fewer than `count` when the fleet is full.
 */
export function pickHosts(hosts: HostRecord[], count: number, perHost: number, extra: Map<string, number> = new Map()): HostChoice {
  const load = new Map(hosts.map((h) => [h.id, instanceCount(h) + (extra.get(h.id) ?? 0)]));
  const pool = (filter: (h: HostRecord) => boolean) => hosts.filter(filter).sort((a, b) => a.id.localeCompare(b.id));
  const active = pool(isActive);
  // An exiting host reports 'draining', never 'drained'.
  const drained = pool((h) => hostState(h) === 'drained');
  const out: HostChoice = { hosts: [], reactivate: [] };
  for (let i = 0; i < count; i++) {
    let best = lightest(active, load, perHost);
    if (!best) {
      best = lightest(drained, load, perHost);
      if (!best) break;
      // Reactivated hosts join the active pool for the next picks.
      drained.splice(drained.indexOf(best), 1);
      active.push(best);
      out.reactivate.push(best);
    }
    out.hosts.push(best);
    load.set(best.id, load.get(best.id)! + 1);
  }
  return out;
}

function lightest(hosts: HostRecord[], load: Map<string, number>, perHost: number): HostRecord | undefined {
  let best: HostRecord | undefined;
  for (const h of hosts) {
    const n = load.get(h.id)!;
    if (n < perHost && (!best || n < load.get(best.id)!)) best = h;
  }
  return best;
}
