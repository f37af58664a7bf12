/**
 * Where a job's parent and clones go (docs/jobs.md): the parent on a host
 * that keeps a parent it can reuse, else one with memory room, the function
 * warm, and free slots; clones spread round by round, one per host with a
 * free slot, hosts that cache the snapshot's pages first.
 */
import TinyQueue from 'tinyqueue';
import type { HostRecord } from '@flurry/core';
import { bestOf, HOSTS_TRIED } from './best-of.js';
import { roomFirst } from './memory-room.js';

export interface ParentHostFacts {
  /** 2: keeps a parent with the job's key; 1: was told to keep one (not yet in its record); 0: neither. */
  keeps(h: HostRecord): number;
  /** Holds the function warm. */
  warm(h: HostRecord): boolean;
  /** Memory the parent needs at least. */
  bytes: number;
  /** Guest slots free for this job's clones (the coordinator counts its own calls in flight). */
  freeSlots(h: HostRecord): number;
}

/**
 * The best `limit` hosts for a job's parent, best first: a kept parent is
 * reused without new memory; otherwise a host with room in its budget comes
 * first, then one with the function warm, then most free slots. O(hosts).
 */
export function jobParentHosts(hosts: readonly HostRecord[], facts: ParentHostFacts, limit = HOSTS_TRIED): HostRecord[] {
  const room = roomFirst(facts.bytes);
  const warm = (h: HostRecord) => (facts.warm(h) ? 1 : 0);
  return bestOf(
    hosts,
    (a, b) => facts.keeps(b) - facts.keeps(a) || room(a, b) || warm(b) - warm(a) || facts.freeSlots(b) - facts.freeSlots(a) || a.id.localeCompare(b.id),
    limit,
  );
}

/**
 * Which host each pending clone goes to: round by round, one clone per host
 * with a free slot left, hosts caching the snapshot's pages first, then most
 * free slots, then the first id. The map's order is the hosts' order.
 * O(hosts + clones × log hosts): with fewer clones than open hosts only the
 * first ones are taken off a heap, never a full sort.
 */
export function spreadClones(pending: readonly number[], hosts: readonly HostRecord[], hasPages: (h: HostRecord) => boolean, freeSlots: (h: HostRecord) => number): Map<string, number[]> {
  const open = hosts.map((h) => ({ id: h.id, pages: hasPages(h) ? 1 : 0, free: freeSlots(h) })).filter((h) => h.free > 0);
  type Open = (typeof open)[number];
  const order = (a: Open, b: Open) => b.pages - a.pages || b.free - a.free || a.id.localeCompare(b.id);
  let ranked: Open[];
  if (pending.length < open.length) {
    const heap = new TinyQueue(open, order);
    ranked = Array.from({ length: pending.length }, () => heap.pop()!);
  } else {
    ranked = open.sort(order);
  }
  const plan = new Map<string, number[]>();
  let next = 0;
  for (let round = 0; next < pending.length && ranked.length > 0; round++) {
    ranked = ranked.filter((h) => h.free > round);
    for (const h of ranked) {
      if (next === pending.length) break;
      const indices = plan.get(h.id);
      if (indices) indices.push(pending[next++]!);
      else plan.set(h.id, [pending[next++]!]);
    }
  }
  return plan;
}
