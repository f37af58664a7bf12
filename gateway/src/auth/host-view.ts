/**
 * What `GET /v1/hosts` shows each role. An admin sees the whole host record;
 * a user sees capacity figures only, picked field by field (a field added to
 * HostRecord later stays hidden until it is listed here): no functions,
 * instances, parents or page caches of any tenant, no pid, no hostname.
 */
import type { HostRecord, Role } from '@flurry/core';
import { hostState } from '../planning/host-states.js';

/** A host as a user sees it. */
export type HostCapacity = Pick<HostRecord, 'id' | 'startedAt' | 'heartbeatAt' | 'cores' | 'memoryBytes' | 'guestSlots' | 'runningGuests' | 'pager' | 'draining' | 'releasable' | 'memoryBudget'> & {
  state: NonNullable<HostRecord['state']>;
};

export function hostViewFor(role: Role, h: HostRecord): HostRecord | HostCapacity {
  if (role === 'admin') return h;
  return {
    id: h.id,
    state: hostState(h),
    draining: h.draining,
    releasable: h.releasable ?? false,
    startedAt: h.startedAt,
    heartbeatAt: h.heartbeatAt,
    cores: h.cores,
    memoryBytes: h.memoryBytes,
    guestSlots: h.guestSlots,
    runningGuests: h.runningGuests,
    pager: h.pager,
    memoryBudget: h.memoryBudget,
  };
}
