/**
 * Where a service instance is live-migrated when the request names no host
 * (`POST /v1/instances/:id/migrate` without a target): a pure choice over the
 * live hosts (drains and consolidation choose their targets in
 * instance-hosts.ts and consolidation.ts).
 */
import { initDigest, type HostRecord, type ParentKey, type ServiceRecord } from '@flurry/core';
import { bestOf } from './best-of.js';
import { freeGuestSlots } from './host-states.js';

/** The parent a service's instances of module `digest` are cloned from, when it is the service's own (booted with an init input). */
export function serviceParent(record: Pick<ServiceRecord, 'tenant' | 'init' | 'initData'>, digest: string): ParentKey | undefined {
  if (!record.initData && (!record.init || record.init.length === 0)) return undefined;
  return { tenant: record.tenant, moduleDigest: digest, initDigest: initDigest(record.init ?? new Uint8Array(), record.initData) };
}

/** Whether the host lists `parent` warm (with its digest made: a migration there neither boots nor hashes it). */
export function holdsParent(host: HostRecord, parent: ParentKey | undefined): boolean {
  return parent !== undefined && (host.serviceParents ?? []).some((p) => p.tenant === parent.tenant && p.moduleDigest === parent.moduleDigest && p.initDigest === parent.initDigest);
}

/** Hosts an instance on host `from` may move to: not draining, not `from` itself. O(hosts). */
export function migrationCandidates(hosts: readonly HostRecord[], from: string): HostRecord[] {
  return hosts.filter((h) => !h.draining && h.id !== from);
}

/**
 * The default target for an instance on host `from`: a candidate holding the
 * instance's `parent` warm first (a standby: the migration then neither boots
 * nor hashes it), then the most free guest slots, then the first id;
 * undefined when there is none. O(hosts).
 *
 *   migrationTarget(fleet.live(), inst.host, serviceParent(record, inst.digest))?.id
 */
export function migrationTarget(hosts: readonly HostRecord[], from: string, parent?: ParentKey): HostRecord | undefined {
  const holds = (h: HostRecord) => (holdsParent(h, parent) ? 1 : 0);
  return bestOf(migrationCandidates(hosts, from), (a, b) => holds(b) - holds(a) || freeGuestSlots(b) - freeGuestSlots(a) || a.id.localeCompare(b.id), 1)[0];
}
