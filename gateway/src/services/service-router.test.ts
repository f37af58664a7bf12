// The router's handling of an instance whose subject nobody serves, without a
// fleet: the broker, the fleet view, the store and the scaling are stand-ins
// that record what the router asked of them (the fleet suites
// test/service-failover and test/host-pause run it against real hosts).
import { describe, expect, it } from 'vitest';
import { NoRespondersError, type Msg } from '@nats-io/transport-node';
import pino from 'pino';
import { encode, FlurryError, type Fabric, type HostRecord, type InvokeRequest, type ServiceInstanceRecord, type ServiceRecord } from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import type { InstanceScaling } from './instance-scaling.js';
import type { RequestCounts } from './request-counts.js';
import { ServiceRouter } from './service-router.js';
import type { ServiceStore } from './service-store.js';

const record = { tenant: 't', name: 'room', function: 'room', digest: 'd', min: 1, max: 1, targetConcurrency: 8 } as ServiceRecord;
const inst: ServiceInstanceRecord = { id: 'inst_a', host: 'host-1', digest: 'd', createdAt: 0 };
const request = { requestId: 'req_1', tenant: 't', name: 'room', method: 'POST', path: '/say', query: '', headers: [], body: new Uint8Array() } as unknown as InvokeRequest;
const answer = encode({ ok: true, status: 200, headers: [], body: new Uint8Array([1]), hostId: 'host-1', durationMs: 1 });

interface World {
  /** The host as the fleet view has it; undefined: not live. */
  host?: Partial<HostRecord>;
  /** Requests sent to the instance, and what the next ones meet: nobody serving it, or an answer. */
  served: (sent: number) => boolean;
  invokeTimeoutMs?: number;
}

function router(world: World) {
  const sent: number[] = [];
  const replaced: string[] = [];
  const nc = {
    async request(subject: string): Promise<Msg> {
      sent.push(Date.now());
      if (!world.served(sent.length)) throw new NoRespondersError(subject);
      return { data: answer } as Msg;
    },
  };
  const link = { connected: true, outages: 0, whenUp: async () => undefined, nextOutage: () => ({ outage: new Promise<never>(() => undefined), cancel: () => undefined }) };
  const fleet = {
    live: () => (world.host ? [{ id: 'host-1', ...world.host } as HostRecord] : []),
    incarnation: () => 1,
    brokerOutages: () => 0,
    silentLongerThan: () => false,
  } as unknown as FleetView;
  const state = { record, instances: [inst] };
  const store = { readForRouting: async () => state, read: async () => state, forget: () => undefined, cached: () => state } as unknown as ServiceStore;
  const scaling = { replaceLost: async (_t: string, _n: string, id: string) => void replaced.push(id) } as unknown as InstanceScaling;
  const counts = { sent: () => undefined, ended: () => undefined, holding: () => undefined, inFlight: () => 0 } as unknown as RequestCounts;
  const r = new ServiceRouter({
    fabric: { nc, link } as unknown as Fabric, fleet, store, scaling, counts,
    invokeTimeoutMs: world.invokeTimeoutMs ?? 5000, createTimeoutMs: 1000, instanceLostMs: 10_000,
    getFunction: async () => Promise.reject(new Error('none')), log: pino({ level: 'silent' }),
  });
  return { sent, replaced, forward: () => r.forward('t', 'room', () => request) };
}

describe('a service request that finds nobody serving its instance', () => {
  it('is sent again while the live host has not beaten since (its heartbeats not stored yet), and answered once served', async () => {
    const w = router({ host: { heartbeatAt: Date.now() - 5000, instances: [] }, served: (n) => n >= 4 });
    const res = await w.forward();
    expect(res.status).toBe(200);
    expect(w.sent).toHaveLength(4);
    expect(w.replaced).toEqual([]);
  });

  it('is refused at its deadline, not before, when nobody serves it and the host never beats again', async () => {
    const w = router({ host: { heartbeatAt: Date.now() - 5000 }, served: () => false, invokeTimeoutMs: 600 });
    const started = Date.now();
    const err = await w.forward().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlurryError);
    expect((err as FlurryError).code).toBe('unavailable');
    expect((err as FlurryError).message).toMatch(/nobody has served its subject/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(w.sent.length).toBeGreaterThanOrEqual(2);
  });

  it('is refused at once when the host stopped heartbeating (it may come back with the state)', async () => {
    const w = router({ host: undefined, served: () => false });
    const err = await w.forward().catch((e: unknown) => e);
    expect((err as FlurryError).message).toMatch(/stopped heartbeating/);
    expect(w.sent).toHaveLength(1);
  });

  it('replaces the instance when its host beats without it, and sends the request to the replacement', async () => {
    const world: World = { host: { heartbeatAt: Date.now() + 60_000, instances: [] }, served: (n) => n >= 2 };
    const w = router(world);
    const res = await w.forward();
    expect(res.status).toBe(200);
    expect(w.replaced).toEqual(['inst_a']);
  });
});
