/**
 * Where a new warm parent of a function goes (invoke placement, placement.ts):
 * hosts with room in their memory budget for its initial memory first, then
 * most free guest slots, then fewest warm parents; draining hosts and hosts
 * that hold the function already are skipped. One scan of the hosts: O(hosts).
 */
import type { FunctionRecord, HostRecord } from '@flurry/core';
import { bestOf, HOSTS_TRIED } from './best-of.js';
import { freeGuestSlots, isWarmOn } from './host-states.js';
import { initialMemoryOf, roomFirst } from './memory-room.js';

/** The best `limit` hosts for a new warm parent of `fn`, best first (none: no host can take one). */
export function warmParentHosts(fn: FunctionRecord, hosts: readonly HostRecord[], limit = HOSTS_TRIED): HostRecord[] {
  const room = roomFirst(initialMemoryOf(fn));
  return bestOf(
    hosts.filter((h) => !h.draining && !isWarmOn(h, fn)),
    (a, b) => room(a, b) || freeGuestSlots(b) - freeGuestSlots(a) || a.warm.length - b.warm.length || a.id.localeCompare(b.id),
    limit,
  );
}
