// The services controller's decisions, without a fleet: how many instances
// the load asks for, where new instances go, and which host consolidation
// empties.
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { planConsolidation, type PlacedInstance } from './consolidation.js';
import { pickHosts } from './instance-hosts.js';
import { desiredInstances } from './scaling.js';

const host = (id: string, instances: number, state: HostRecord['state'] = 'active'): HostRecord => ({
  id, pid: 1, hostname: 'h', startedAt: 0, heartbeatAt: 0, cores: 2, memoryBytes: 0, guestSlots: 2, runningGuests: 0, warm: [], pager: 'portable',
  draining: state !== 'active', state,
  instances: Array.from({ length: instances }, (_, i) => ({ tenant: 't', service: 's', instanceId: `${id}-${i}`, requests: 0 })),
});

const placed = (host: string, n: number, inFlight = 0): PlacedInstance[] =>
  Array.from({ length: n }, (_, i) => ({ tenant: 't', service: 's', instanceId: `${host}-${i}`, host, inFlight, targetConcurrency: 8 }));

describe('desiredInstances', () => {
  const svc = { min: 1, max: 5, targetConcurrency: 4 };
  it('autoscaler - one instance per targetConcurrency requests in flight, within min and max', () => {
    expect(desiredInstances(svc, { total: 0, held: 0 })).toBe(1);
    expect(desiredInstances(svc, { total: 4, held: 0 })).toBe(1);
    expect(desiredInstances(svc, { total: 5, held: 0 })).toBe(2);
    expect(desiredInstances(svc, { total: 17, held: 0 })).toBe(5);
    expect(desiredInstances(svc, { total: 400, held: 0 })).toBe(5);
  });
  it('autoscaler - a service with min 0 gets an instance when requests are held for one', () => {
    expect(desiredInstances({ ...svc, min: 0 }, { total: 0, held: 0 })).toBe(0);
    expect(desiredInstances({ ...svc, min: 0 }, { total: 1, held: 1 })).toBe(1);
  });
});

describe('pickHosts', () => {
  it('placement - spreads new instances over the active hosts with fewest instances while they have free guest threads', () => {
    const choice = pickHosts([host('a', 2), host('b', 0), host('c', 1)], 3, 16);
    expect(choice.hosts.map((h) => h.id)).toEqual(['b', 'b', 'c']);
    expect(choice.reactivate).toEqual([]);
  });
  it('placement - reactivates a drained host before sharing threads on the active ones, never a draining one', () => {
    const choice = pickHosts([host('a', 2), host('b', 0, 'drained'), host('c', 0, 'draining')], 4, 16);
    expect(choice.hosts.map((h) => h.id)).toEqual(['b', 'b', 'a', 'b']);
    expect(choice.reactivate.map((h) => h.id)).toEqual(['b']);
  });
  it('placement - stops at the fleet capacity', () => {
    expect(pickHosts([host('a', 1)], 3, 2).hosts.map((h) => h.id)).toEqual(['a']);
  });
});

describe('planConsolidation', () => {
  it('consolidation - moves the instances of the emptiest host onto the fullest with room, with a reason', () => {
    const plan = planConsolidation([host('a', 3), host('b', 1), host('c', 2)], [...placed('a', 3), ...placed('b', 1), ...placed('c', 2)], 4);
    expect(plan?.source).toBe('b');
    expect(plan?.moves.map((m) => m.to)).toEqual(['a']);
    expect(plan?.moves[0]!.reason).toMatch(/b holds 1 instance.*a has room \(3\/4 instances\)/);
  });
  it('consolidation - leaves busy instances where they are', () => {
    expect(planConsolidation([host('a', 1), host('b', 1)], [...placed('a', 1, 5), ...placed('b', 1, 6)], 4)).toBeUndefined();
  });
  it('consolidation - does nothing when the instances do not fit elsewhere or one host holds them all', () => {
    expect(planConsolidation([host('a', 2), host('b', 2)], [...placed('a', 2), ...placed('b', 2)], 3)).toBeUndefined();
    expect(planConsolidation([host('a', 3), host('b', 0)], placed('a', 3), 4)).toBeUndefined();
  });
  it('consolidation - never moves onto a draining or drained host', () => {
    expect(planConsolidation([host('a', 1), host('b', 1, 'drained')], [...placed('a', 1), ...placed('b', 1)], 4)).toBeUndefined();
  });
});
