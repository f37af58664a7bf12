// The default migration target, without a fleet.
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { migrationCandidates, migrationTarget } from './migration-target.js';

const host = (id: string, guestSlots: number, runningGuests: number, draining = false): HostRecord => ({
  id, pid: 1, hostname: 'h', startedAt: 0, heartbeatAt: 0, cores: 2, memoryBytes: 0, guestSlots, runningGuests, warm: [], pager: 'portable', draining,
});

describe('migrationTarget', () => {
  it('migration - the host with the most free guest slots, never the source or a draining host', () => {
    const hosts = [host('a', 8, 0), host('b', 4, 1), host('c', 8, 2), host('d', 16, 0, true)];
    expect(migrationTarget(hosts, 'a')?.id).toBe('c');
    expect(migrationTarget(hosts, 'c')?.id).toBe('a');
    expect(migrationCandidates(hosts, 'a').map((h) => h.id)).toEqual(['b', 'c']);
  });
  it('migration - ties go to the first id', () => {
    expect(migrationTarget([host('z', 2, 0), host('y', 2, 0), host('x', 1, 0)], 'x')?.id).toBe('y');
  });
  it('migration - none when no other host takes instances', () => {
    expect(migrationTarget([host('a', 8, 0), host('b', 8, 0, true)], 'a')).toBeUndefined();
  });
});
