import { describe, expect, it } from 'vitest';
import type { FunctionRecord, HostRecord } from '@flurry/core';
import { initialMemoryOf, memoryRoom, roomFirst } from './memory-room.js';
import { warmParentHosts } from './warm-parent.js';

const MiB = 1024 * 1024;

function host(id: string, used: number | undefined, runningGuests = 0): HostRecord {
  return {
    id, pid: 1, hostname: 'h', startedAt: 0, heartbeatAt: 0, cores: 2, memoryBytes: 0, guestSlots: 4, runningGuests, warm: [], pager: 'portable', draining: false,
    ...(used === undefined ? {} : { memoryBudget: { budgetBytes: 10 * MiB, usedBytes: used } }),
  };
}

const fn: FunctionRecord = { tenant: 't', name: 'f', digest: 'd', size: 1, exports: ['handle'], memory: { initialPages: 64, maximumPages: 64 }, createdAt: 0, updatedAt: 0 };

describe('memory room', () => {
  it('room - free bytes of the budget; a host that reports none counts as roomy', () => {
    expect(memoryRoom(host('a', 3 * MiB))).toBe(7 * MiB);
    expect(memoryRoom(host('b', undefined))).toBe(Number.POSITIVE_INFINITY);
    expect(initialMemoryOf(fn)).toBe(4 * MiB);
    expect(initialMemoryOf(undefined)).toBe(0);
  });

  it('order - hosts with room for the function first, full ones last but still tried', () => {
    const hosts = [host('full', 8 * MiB), host('busy-roomy', 0, 3), host('idle-roomy', 0)];
    expect([...hosts].sort(roomFirst(4 * MiB)).map((h) => h.id)).toEqual(['busy-roomy', 'idle-roomy', 'full']);
    // Placement: room first, then free guest slots.
    expect(warmParentHosts(fn, hosts).map((h) => h.id)).toEqual(['idle-roomy', 'busy-roomy', 'full']);
  });
});
