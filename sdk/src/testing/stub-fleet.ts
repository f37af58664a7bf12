/** The hosts and the host move the stub gateway reports, for the stub's routes and the tests that check them. */
import type { HostMove, HostRecord } from '../types.js';

export const STUB_HOSTS: HostRecord[] = [
  {
    id: 'host-a', pid: 4242, hostname: 'alpha', startedAt: Date.now() - 60_000, heartbeatAt: Date.now() - 2_000,
    cores: 8, memoryBytes: 16 * 2 ** 30, guestSlots: 8, runningGuests: 3,
    warm: [{ tenant: 'default', name: 'echo', digest: 'ab'.repeat(32) }], pager: 'userfaultfd', draining: false,
    state: 'active', instances: [{ tenant: 'default', service: 'room', instanceId: 'inst-1', requests: 5 }], releasable: false,
  },
  {
    id: 'host-b', pid: 77, hostname: 'beta', startedAt: Date.now() - 600_000, heartbeatAt: Date.now() - 1_000,
    cores: 2, memoryBytes: 4 * 2 ** 30, guestSlots: 2, runningGuests: 0, warm: [], pager: 'portable', draining: true,
    state: 'drained', stateReason: 'consolidate: its 1 lightly loaded instance(s) fit on host-a', instances: [], releasable: true,
  },
];

export const STUB_MOVE: HostMove = {
  at: Date.now() - 3_000, tenant: 'default', service: 'room', instanceId: 'inst-1', from: 'host-a', to: 'host-b',
  kind: 'drain', reason: 'api', ok: true, downtimeMs: 2.5,
};
