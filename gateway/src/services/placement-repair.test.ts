import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { HostRecord, ServiceInstanceRecord, ServiceRecord } from '@flurry/core';
import { InstanceMigrations } from './instance-migration.js';
import type { ServiceStore } from './service-store.js';
import type { FleetView } from '../fleet-view.js';

const record: ServiceRecord = { tenant: 't', name: 'room', function: 'room', digest: 'd', min: 1, max: 1, targetConcurrency: 1, createdAt: 0, updatedAt: 0 };

/** A host as the fleet view gives it: its last heartbeat's time and the instances it listed then. */
const host = (id: string, heartbeatAt: number, instanceIds: string[]) =>
  ({ id, heartbeatAt, instances: instanceIds.map((instanceId) => ({ tenant: 't', service: 'room', instanceId, requests: 0 })) }) as unknown as HostRecord;

/** Repairs with the instance recorded as `inst` and the hosts as given; what the record says afterwards. */
async function repair(inst: ServiceInstanceRecord, hosts: HostRecord[]): Promise<ServiceInstanceRecord> {
  let stored = inst;
  const store = {
    locked: <T>(_key: string, work: () => Promise<T>) => work(),
    changeInstance: async (_key: string, _id: string, change: (i: ServiceInstanceRecord) => ServiceInstanceRecord) => void (stored = change(stored)),
  } as unknown as ServiceStore;
  const fleet = { live: () => hosts } as unknown as FleetView;
  const migrations = new InstanceMigrations({ store, fleet, fabric: undefined as never, instanceLostMs: 60_000, log: pino({ level: 'silent' }) });
  await migrations.repairPlacements([{ record, instances: [inst] }]);
  return stored;
}

describe('placement repair', () => {
  const now = Date.now();

  it('a migration that just committed, heard of only through heartbeats from before it - the placement stays', async () => {
    // Moved to host-1 a moment ago; host-2 (the source) still lists it, host-1 does not yet: both heartbeats are older than the move.
    const inst = { id: 'inst-1', host: 'host-1', digest: 'd', createdAt: now - 60_000, placedAt: now - 50 };
    expect((await repair(inst, [host('host-1', now - 100, []), host('host-2', now - 100, ['inst-1'])])).host).toBe('host-1');
  });

  it('heartbeats sent well after the placement say another host holds it - the placement follows them', async () => {
    const inst = { id: 'inst-1', host: 'host-1', digest: 'd', createdAt: now - 60_000, placedAt: now - 10_000 };
    const repaired = await repair(inst, [host('host-1', now - 100, []), host('host-2', now - 100, ['inst-1'])]);
    expect(repaired.host).toBe('host-2');
    expect(repaired.placedAt).toBeGreaterThanOrEqual(now);
  });

  it('the recorded host lists it - nothing changes', async () => {
    const inst = { id: 'inst-1', host: 'host-1', digest: 'd', createdAt: now - 60_000 };
    expect(await repair(inst, [host('host-1', now, ['inst-1']), host('host-2', now, [])])).toEqual(inst);
  });
});
