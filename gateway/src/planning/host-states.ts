/**
 * What the planners read off a host's record: its state (docs/autoscaling.md,
 * "Host states"), the service instances it holds and its free guest slots.
 */
import type { FunctionRecord, HostRecord } from '@flurry/core';

export function hostState(h: HostRecord): NonNullable<HostRecord['state']> {
  return h.state ?? (h.draining ? 'draining' : 'active');
}

/** Takes new work: active, and not draining (a host reports `draining` as soon as it starts to exit). */
export function isActive(h: HostRecord): boolean {
  return hostState(h) === 'active' && !h.draining;
}

/** Service instances its heartbeat lists. */
export function instanceCount(h: HostRecord): number {
  return h.instances?.length ?? 0;
}

/** Guest threads not running a call, as its heartbeat reports. */
export function freeGuestSlots(h: HostRecord): number {
  return h.guestSlots - h.runningGuests;
}

/**
 * What makes a warm function version: its tenant, name and code digest. The one
 * definition, for the planners here and for the gateway's warm index (FleetView).
 */
export function warmVersionKey(fn: Pick<FunctionRecord, 'tenant' | 'name' | 'digest'>): string {
  return `${fn.tenant}.${fn.name}@${fn.digest}`;
}

/** Holds a warm parent of this function version. */
export function isWarmOn(host: HostRecord, fn: FunctionRecord): boolean {
  const key = warmVersionKey(fn);
  return host.warm.some((w) => warmVersionKey(w) === key);
}
