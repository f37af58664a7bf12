/**
 * The receiver's watch on a migration's source, with a stand-in pool and fake clocks: silence ends a
 * migration, time the target itself stood still does not. (The real pools and broker: nats-migration.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@flurry/core';
import type { GuestPool } from '../guest/guest-pool.js';
import { MigrationReceiver } from './migration-receiver.js';

const SILENT_MS = 1000;

describe('MigrationReceiver - a silent source', () => {
  let destroyed: string[];
  let receiver: MigrationReceiver;

  beforeEach(() => {
    vi.useFakeTimers();
    destroyed = [];
    const pool = { receiveInstance: async () => 'pool-1', destroyInstance: (id: string) => void destroyed.push(id) } as unknown as GuestPool;
    receiver = new MigrationReceiver({
      hostId: 'h', pool, log: createLogger('test', {}, 'silent'), sourceSilentMs: SILENT_MS,
      acquireParent: async () => 'parent', releaseParent: () => undefined, keepReplies: () => undefined, forgetReplies: () => undefined,
      warm: async () => undefined, adopt: async () => undefined, drop: () => undefined,
    });
  });
  afterEach(() => void vi.useRealTimers());

  const prepare = () => receiver.answer({ step: 'prepare', migrationId: 'm', requestId: 'r', tenant: 't', service: 's', instanceId: 'i', name: 'f', digest: 'd', memoryBytes: 65536 });

  it('a source not heard for the bound - the migration ends, refused, its instance destroyed', async () => {
    await prepare();
    await vi.advanceTimersByTimeAsync(SILENT_MS / 2);
    await receiver.answer({ step: 'ping', migrationId: 'm' });
    await vi.advanceTimersByTimeAsync(SILENT_MS);
    expect(destroyed).toEqual([]);
    await vi.advanceTimersByTimeAsync(SILENT_MS / 2);
    expect(destroyed).toEqual(['pool-1']);
    expect(await receiver.settled('m', 'i')).toBe('refused');
  });

  it('the target stood still (its checks ran late) - that time is not counted against the source', async () => {
    await prepare();
    // The whole process stalls for three bounds: no timer runs meanwhile, the source's probes wait unread.
    vi.setSystemTime(Date.now() + 3 * SILENT_MS);
    await vi.advanceTimersByTimeAsync(SILENT_MS / 4);
    expect(destroyed).toEqual([]);
    await receiver.answer({ step: 'ping', migrationId: 'm' });
    await vi.advanceTimersByTimeAsync(SILENT_MS / 2);
    expect(destroyed).toEqual([]);
  });
});
