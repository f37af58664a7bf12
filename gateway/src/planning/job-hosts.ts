/**
 * Where a job's parent, clones and reduce go (docs/jobs.md): the parent on a
 * host that keeps a parent it can reuse, else one with memory room, the
 * function warm, and free slots; clones spread round by round, one per host
 * with a free slot, hosts that cache the snapshot's pages first; a cold job's
 * reduce on the host with most free slots. Free slots are the coordinator's
 * view: a host's guest slots less the clones it sent there and still runs.
 */
import TinyQueue from 'tinyqueue';
import type { HostRecord, ParentKey } from '@flurry/core';
import { bestOf, HOSTS_TRIED } from './best-of.js';
import { roomFirst } from './memory-room.js';

/** A host's guest slots less the clones a coordinator runs there now (`inFlight`, by host id). */
export function slotsLeft(h: HostRecord, inFlight: ReadonlyMap<string, number>): number {
  return h.guestSlots - (inFlight.get(h.id) ?? 0);
}

/** Hosts not resting after a failed fork request (`restingUntil`, by host id): a host that died shows as live until its record goes stale. */
export function notResting(hosts: readonly HostRecord[], restingUntil: ReadonlyMap<string, number>, now: number): HostRecord[] {
  return hosts.filter((h) => (restingUntil.get(h.id) ?? 0) <= now);
}

/**
 * How a host holds a parent with the job's key, for `ParentHostFacts.keeps`:
 * 2 its record lists one, 1 it is the host this coordinator last asked to keep
 * one (`remembered`: not in its record yet), 0 neither.
 */
export function keptParentRank(h: HostRecord, key: ParentKey, remembered: string | undefined): number {
  if (h.parents?.some((p) => p.tenant === key.tenant && p.moduleDigest === key.moduleDigest && p.initDigest === key.initDigest)) return 2;
  return remembered === h.id ? 1 : 0;
}

/** Where a cold job's reduce boots its own instance: the host with the most free slots, then the first id. O(hosts). */
export function coldReduceHost(hosts: readonly HostRecord[], freeSlots: (h: HostRecord) => number): HostRecord | undefined {
  return bestOf(hosts, (a, b) => freeSlots(b) - freeSlots(a) || a.id.localeCompare(b.id), 1)[0];
}

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
