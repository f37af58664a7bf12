/**
 * Where a service instance is live-migrated when the request names no host
 * (`POST /v1/instances/:id/migrate` without a target): a pure choice over the
 * live hosts (drains and consolidation choose their targets in
 * instance-hosts.ts and consolidation.ts).
 */
import type { HostRecord } from '@flurry/core';
import { bestOf } from './best-of.js';
import { freeGuestSlots } from './host-states.js';

/** Hosts an instance on host `from` may move to: not draining, not `from` itself. O(hosts). */
export function migrationCandidates(hosts: readonly HostRecord[], from: string): HostRecord[] {
  return hosts.filter((h) => !h.draining && h.id !== from);
}

/**
 * The default target for an instance on host `from`: the candidate with the
 * most free guest slots, then the first id; undefined when there is none. O(hosts).
 *
 *   migrationTarget(fleet.live(), inst.host)?.id
 */
export function migrationTarget(hosts: readonly HostRecord[], from: string): HostRecord | undefined {
  return bestOf(migrationCandidates(hosts, from), (a, b) => freeGuestSlots(b) - freeGuestSlots(a) || a.id.localeCompare(b.id), 1)[0];
}
