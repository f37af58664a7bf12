/**
 * Which hosts can take service instances, for the services controller.
 * A host takes up to `perHost` instances (FLURRY_HOST_INSTANCES, a memory
 * bound), counted from the instance lists in the hosts' heartbeats plus what
 * the controller placed since; instances beyond its guest threads share
 * them. Only active hosts take instances; a drained host (emptied by
 * consolidation, not released yet) is reactivated when the active ones have
 * no free guest thread left: a burst spreads over machines for CPU, and
 * consolidation packs the instances again once load falls.
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
 * Hosts for `count` new instances. Each goes to the host with the fewest
 * instances (counting those already assigned) among, in this order: active
 * hosts with a free guest thread, drained hosts with one, active hosts with
 * room, drained hosts with room. `extra` adds instances the heartbeats do not
 * list yet. Fewer than `count` when the fleet is full.
 */
export function pickHosts(hosts: HostRecord[], count: number, perHost: number, extra: Map<string, number> = new Map()): HostChoice {
  const load = new Map(hosts.map((h) => [h.id, instanceCount(h) + (extra.get(h.id) ?? 0)]));
  const sorted = [...hosts].sort((a, b) => a.id.localeCompare(b.id));
  const active = new Set(sorted.filter(isActive).map((h) => h.id));
  // An exiting host reports 'draining', never 'drained'.
  const drained = sorted.filter((h) => hostState(h) === 'drained');
  const threads = (h: HostRecord) => Math.min(perHost, h.guestSlots);
  const tiers: { pool: () => HostRecord[]; limit: (h: HostRecord) => number }[] = [
    { pool: () => sorted.filter((h) => active.has(h.id)), limit: threads },
    { pool: () => drained.filter((h) => !active.has(h.id)), limit: threads },
    { pool: () => sorted.filter((h) => active.has(h.id)), limit: () => perHost },
    { pool: () => drained.filter((h) => !active.has(h.id)), limit: () => perHost },
  ];
  const out: HostChoice = { hosts: [], reactivate: [] };
  for (let i = 0; i < count; i++) {
    let best: HostRecord | undefined;
    for (const tier of tiers) {
      best = lightest(tier.pool(), load, tier.limit);
      if (best) break;
    }
    if (!best) break;
    if (!active.has(best.id)) {
      // Reactivated hosts join the active pool for the next picks.
      active.add(best.id);
      out.reactivate.push(best);
    }
    out.hosts.push(best);
    load.set(best.id, load.get(best.id)! + 1);
  }
  return out;
}

function lightest(hosts: HostRecord[], load: Map<string, number>, limit: (h: HostRecord) => number): HostRecord | undefined {
  let best: HostRecord | undefined;
  for (const h of hosts) {
    const n = load.get(h.id)!;
    if (n < limit(h) && (!best || n < load.get(best.id)!)) best = h;
  }
  return best;
}
