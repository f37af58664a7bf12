// The services controller's decisions, without a fleet: how many instances
// the load asks for, where new instances go, and which host consolidation
// empties.
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { planConsolidation, type PlacedInstance } from './consolidation.js';
import { pickHosts } from './instance-hosts.js';
import { desiredInstances, scaleInVictims, scalingDecision, type ScalingInput } from './scaling.js';

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

describe('scalingDecision', () => {
  const base: ScalingInput = { record: { min: 1, max: 3, targetConcurrency: 2 }, current: 1, load: { total: 0, held: 0 }, needSince: 0, now: 10_000, cooldownMs: 5000, shrinking: false };
  it('autoscaler - scales out at once by what the load asks for beyond the instances, and notes the need', () => {
    expect(scalingDecision({ ...base, load: { total: 5, held: 0 } })).toEqual({ want: 3, needSince: 10_000, action: { kind: 'out', count: 2 } });
  });
  it('autoscaler - below max with no more asked: keeps standby parents for the room left', () => {
    expect(scalingDecision({ ...base, current: 2, load: { total: 1, held: 0 }, needSince: 6000 })).toEqual({ want: 1, needSince: 6000, action: { kind: 'standby', room: 1 } });
    expect(scalingDecision({ ...base, current: 2, load: { total: 4, held: 0 } })).toEqual({ want: 2, needSince: 10_000, action: { kind: 'standby', room: 1 } });
  });
  it('autoscaler - below max too, scales in once the load has asked for fewer for a whole cool-down', () => {
    expect(scalingDecision({ ...base, current: 2, load: { total: 1, held: 0 }, needSince: 5000 })).toEqual({ want: 1, needSince: 5000, action: { kind: 'in' } });
  });
  it('autoscaler - scales in only after a whole cool-down of asking for fewer, never twice at once', () => {
    const atMax = { ...base, current: 3, load: { total: 1, held: 0 } };
    expect(scalingDecision({ ...atMax, needSince: 6000 }).action).toEqual({ kind: 'none' });
    expect(scalingDecision({ ...atMax, needSince: 5000 })).toEqual({ want: 1, needSince: 5000, action: { kind: 'in' } });
    expect(scalingDecision({ ...atMax, needSince: 5000, shrinking: true }).action).toEqual({ kind: 'none' });
    // A service seen for the first time starts its cool-down now.
    expect(scalingDecision({ ...atMax, needSince: undefined })).toEqual({ want: 1, needSince: 10_000, action: { kind: 'none' } });
  });
});

describe('scaleInVictims', () => {
  const inst = (id: string, host: string, createdAt: number) => ({ id, host, digest: 'd', createdAt });
  it('autoscaler - removes idle instances first, on the emptiest hosts, newest first', () => {
    const instances = [inst('busy', 'b', 1), inst('old-on-a', 'a', 1), inst('new-on-a', 'a', 2), inst('on-c', 'c', 3)];
    const hosts = [host('a', 1), host('b', 1), host('c', 3)];
    expect(scaleInVictims(instances, 3, new Map([['busy', 2]]), hosts)).toEqual(['new-on-a', 'old-on-a', 'on-c']);
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
  it('placement - within a tier, a preferred host (a drain: one holding the parent warm) comes before one with fewer instances', () => {
    const prefer = (h: HostRecord) => h.id === 'a';
    expect(pickHosts([host('a', 1), host('b', 0)], 1, 16, new Map(), prefer).hosts.map((h) => h.id)).toEqual(['a']);
    // A preferred host without a free guest thread comes after one with a thread.
    expect(pickHosts([{ ...host('a', 2), guestSlots: 2 }, host('b', 0)], 1, 16, new Map(), prefer).hosts.map((h) => h.id)).toEqual(['b']);
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
  it('consolidation - an instance goes to a host with room holding its parent warm, before the fullest', () => {
    const parent = { tenant: 't', moduleDigest: 'sha256:m', initDigest: 'sha256:i' };
    const withParent = { ...host('c', 3), serviceParents: [parent] };
    const plan = planConsolidation([host('a', 3), host('b', 2), withParent], [...placed('a', 3), ...placed('b', 2).map((i) => ({ ...i, parent })), ...placed('c', 3)], 5);
    expect(plan?.source).toBe('b');
    // Without the parent, both would go to a (as full as c, the first id).
    expect(plan?.moves.map((m) => m.to)).toEqual(['c', 'c']);
    expect(plan?.moves[0]!.reason).toMatch(/c holds its parent warm and has room \(3\/5 instances\)/);
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
