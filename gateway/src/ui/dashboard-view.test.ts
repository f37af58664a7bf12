// What the dashboard shows each role (dashboard-view.ts), and the request rates it shows (request-rates.ts):
// pure functions of the fleet's state, tested without a fleet.
import { describe, expect, it } from 'vitest';
import type { ControllerMove, HostRecord } from '@flurry/core';
import type { ServiceView } from '../services/service-records.js';
import { Dashboard } from './dashboard-schema.js';
import { dashboardFor } from './dashboard-view.js';
import { MigrationHistory, MIGRATIONS_KEPT } from './migration-history.js';
import { RequestRates } from './request-rates.js';

function host(id: string, over: Partial<HostRecord> = {}): HostRecord {
  return {
    id, pid: 1, hostname: 'secret-hostname', startedAt: 1, heartbeatAt: 1000, cores: 2, memoryBytes: 8 << 30, guestSlots: 4, runningGuests: 1,
    warm: [{ tenant: 'alice', name: 'echo', digest: 'd1' }, { tenant: 'bob', name: 'bobs-fn', digest: 'd2' }],
    pager: 'userfaultfd', draining: true, state: 'draining', stateReason: 'consolidation: bob moved away',
    instances: [{ tenant: 'alice', service: 'room', instanceId: 'inst_a', requests: 10 }, { tenant: 'bob', service: 'bobs-svc', instanceId: 'inst_b', requests: 5, migrating: true }],
    parents: [{ tenant: 'bob', moduleDigest: 'd2', initDigest: 'i', function: 'bobs-fn', snapshotId: 's', memoryBytes: 1 << 20, holders: 0, idleSince: 500 }],
    memoryBudget: { budgetBytes: 1 << 30, usedBytes: 1 << 28 },
    ...over,
  };
}

const report = (source: string, target: string) => ({
  source, target, rounds: [{ pages: 1200, bytes: 1200 * 4096, ms: 30 }, { pages: 40, bytes: 40 * 4096, ms: 2 }], stopReason: 'converged', finalPages: 3,
  downtimeMs: 4.2, downtime: { stopMs: 0, waitMs: 0, readMs: 0, sendMs: 0, commitMs: 0, targetApplyMs: 0, targetCommitMs: 0, releaseMs: 0 },
  totalMs: 50, totalBytes: 1243 * 4096, perPageMs: 0.01, forwarded: 2, pagesSent: 1243, memoryBytes: 1 << 24,
});

const move: ControllerMove = { at: 1, tenant: 'bob', service: 'bobs-svc', instanceId: 'inst_b', from: 'host-1', to: 'host-2', kind: 'consolidate', reason: 'r', ok: true, downtimeMs: 3 };

const aliceServices: ServiceView[] = [{
  tenant: 'alice', name: 'room', function: 'room', digest: 'd1', min: 1, max: 2, targetConcurrency: 8, createdAt: 1, updatedAt: 1,
  instances: [{ id: 'inst_a', host: 'host-1', inFlight: 2, createdAt: 1 }],
}];

describe('dashboard view', () => {
  const history = new MigrationHistory();
  history.add('alice', 'room', 'inst_a', report('host-2', 'host-1'));
  history.add('bob', 'bobs-svc', 'inst_b', report('host-2', 'host-1'));
  const input = (tenant: string | undefined) => ({
    hosts: [host('host-2'), host('host-1')], services: aliceServices, migrations: history.list(tenant), moves: [move],
    perSecond: (h: string, i: string) => (h === 'host-1' && i === 'inst_a' ? 2.345 : undefined), now: 5000,
  });

  it('dashboard - a user sees its own tenant only: no other tenant\'s functions, parents, instances, migrations or moves', () => {
    const view = dashboardFor({ tenant: 'alice', role: 'user' }, input('alice'));
    expect(view.hosts.map((h) => h.id)).toEqual(['host-1', 'host-2']);
    const h1 = view.hosts[0]!;
    expect(h1).toMatchObject({ state: 'draining', pager: 'userfaultfd', guestSlots: 4, runningGuests: 1, memoryBudget: { budgetBytes: 1 << 30, usedBytes: 1 << 28 } });
    expect(h1.warm).toEqual([{ tenant: 'alice', name: 'echo', digest: 'd1' }]);
    expect(h1.parents).toEqual([]);
    expect(h1.instances).toEqual([{ tenant: 'alice', service: 'room', instanceId: 'inst_a', requests: 10, perSecond: 2.3 }]);
    expect(JSON.stringify(view)).not.toMatch(/bob|secret-hostname/);
    expect(view.moves).toBeUndefined();
    expect(view.migrations!.map((m) => m.instanceId)).toEqual(['inst_a']);
    expect(view.services).toEqual([{ name: 'room', function: 'room', min: 1, max: 2, instances: [{ id: 'inst_a', host: 'host-1', inFlight: 2, perSecond: 2.3 }] }]);
    // What the API document declares, and nothing more (strict objects).
    expect(Dashboard.parse(view)).toEqual(view);
  });

  it('dashboard - an admin sees every tenant on the hosts, every migration with its rounds and pause, and the moves', () => {
    const view = dashboardFor({ tenant: 'ops', role: 'admin' }, input(undefined));
    const h1 = view.hosts[0]!;
    expect(h1.stateReason).toBe('consolidation: bob moved away');
    expect(h1.warm).toHaveLength(2);
    expect(h1.parents.map((p) => p.function)).toEqual(['bobs-fn']);
    expect(h1.instances.map((i) => [i.instanceId, i.migrating ?? false])).toEqual([['inst_a', false], ['inst_b', true]]);
    expect(view.moves).toEqual([move]);
    expect(view.migrations!.map((m) => m.tenant)).toEqual(['alice', 'bob']);
    expect(Dashboard.parse(view)).toEqual(view);
    expect(view.migrations![0]).toMatchObject({ source: 'host-2', target: 'host-1', rounds: [{ pages: 1200, ms: 30 }, { pages: 40, ms: 2 }], finalPages: 3, downtimeMs: 4.2, forwarded: 2 });
  });

  it('dashboard - without services the view has no services or migrations panel data', () => {
    const view = dashboardFor({ tenant: 'ops', role: 'admin' }, { hosts: [], perSecond: () => undefined, now: 1 });
    expect(view).toEqual({ at: 1, caller: { tenant: 'ops', role: 'admin' }, hosts: [] });
  });

  it('migration history - keeps the latest migrations only, newest last', () => {
    const h = new MigrationHistory();
    for (let i = 0; i < MIGRATIONS_KEPT + 5; i++) h.add('t', 's', `inst_${i}`, report('a', 'b'));
    const kept = h.list(undefined);
    expect(kept).toHaveLength(MIGRATIONS_KEPT);
    expect(kept[0]!.instanceId).toBe('inst_5');
    expect(kept.at(-1)!.instanceId).toBe(`inst_${MIGRATIONS_KEPT + 4}`);
    expect(h.list('other')).toEqual([]);
  });
});

describe('request rates', () => {
  const beat = (at: number, requests: number, id = 'host-1') => host(id, { heartbeatAt: at, instances: [{ tenant: 't', service: 's', instanceId: 'i', requests }] });

  it('rates - requests per second over the heartbeats of the last seconds; none from one heartbeat', () => {
    const rates = new RequestRates();
    rates.observe([beat(1000, 0)]);
    expect(rates.perSecond('host-1', 'i')).toBeUndefined();
    rates.observe([beat(1000, 0)]);
    expect(rates.perSecond('host-1', 'i')).toBeUndefined();
    rates.observe([beat(2000, 50)]);
    expect(rates.perSecond('host-1', 'i')).toBe(50);
    for (let t = 3000; t <= 12_000; t += 1000) rates.observe([beat(t, 50 + (t - 2000) / 10)]);
    // 100 requests a second over the last window, 50/s before it: only the window counts.
    expect(rates.perSecond('host-1', 'i')).toBeCloseTo(100, 5);
  });

  it('rates - a counter that starts again (the instance came back to the host) and a host that forgets the instance', () => {
    const rates = new RequestRates();
    rates.observe([beat(1000, 500), beat(1000, 7, 'host-2')]);
    rates.observe([beat(2000, 510), beat(2000, 9, 'host-2')]);
    expect(rates.perSecond('host-2', 'i')).toBe(2);
    rates.observe([beat(3000, 4)]);
    expect(rates.perSecond('host-1', 'i')).toBeUndefined();
    expect(rates.perSecond('host-2', 'i')).toBeUndefined();
    rates.observe([beat(4000, 24)]);
    expect(rates.perSecond('host-1', 'i')).toBe(20);
  });
});
