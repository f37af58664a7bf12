import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { HostAway, whileHostLive } from './host-held-work.js';

/** The three things whileHostLive reads of the fleet view, changed by the test. */
function fleetOf(host: { id: string; startedAt: number; brokerOutages: number; live: boolean }) {
  return {
    live: () => (host.live ? [{ id: host.id } as HostRecord] : []),
    incarnation: (id: string) => (id === host.id ? host.startedAt : undefined),
    brokerOutages: (id: string) => (id === host.id ? host.brokerOutages : undefined),
  };
}

const never = new Promise<never>(() => {});

describe('whileHostLive', () => {
  it('gives the work\'s own outcome while the host stays', async () => {
    const host = { id: 'host-1', startedAt: 1, brokerOutages: 0, live: true };
    await expect(whileHostLive(fleetOf(host), 'host-1', Promise.resolve('answer'))).resolves.toBe('answer');
    await expect(whileHostLive(fleetOf(host), 'host-1', Promise.reject(new Error('refused')))).rejects.toThrow('refused');
  });

  it.each([
    ['stopped heartbeating', (h: { live: boolean }) => (h.live = false)],
    ['restarted', (h: { startedAt: number }) => (h.startedAt = 2)],
    ['lost its broker connection', (h: { brokerOutages: number }) => (h.brokerOutages = 1)],
  ] as const)('ends the wait when the host %s, naming the work', async (reason, change) => {
    const host = { id: 'host-1', startedAt: 1, brokerOutages: 0, live: true };
    const waiting = whileHostLive(fleetOf(host), 'host-1', never, 'the reduce of job j1');
    change(host as never);
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostAway);
    expect(err).toMatchObject({ code: 'unavailable', reason, hostId: 'host-1', retryAfterSeconds: 1, message: `host host-1 ${reason} while it held the reduce of job j1; its outcome is unknown` });
  });
});
