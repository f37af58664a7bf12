// The fast planners decide exactly as the plain sort-based ones (reference.ts)
// on random fleets: small ones, where ties (equal loads, slots, room), drained
// and draining hosts, full hosts and ids that sort oddly are common.
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { seededRandom, simulatedFleet, type SimulatedFleet } from '@flurry/infra';
import { bestOf } from './best-of.js';
import { emptiedHosts, planConsolidation, type PlacedInstance } from './consolidation.js';
import { pickHosts, serviceInstanceHosts } from './instance-hosts.js';
import { jobParentHosts, spreadClones } from './job-hosts.js';
import * as reference from './reference.js';
import { scaleInVictims } from './scaling.js';
import { warmParentHosts } from './warm-parent.js';

const FLEETS = 400;
const ODD_IDS = ['a', 'B', 'b', 'A', 'h10', 'h9', 'h1', 'host_1', 'host-1', 'Host-2', 'z', 'Z', 'é', 'e', '10', '9'];

interface Case {
  random: () => number;
  fleet: SimulatedFleet;
  perHost: number;
  placed: PlacedInstance[];
}

/** Fleet number `seed`: 1 to 14 hosts with ids that tie in letters but not case, 0 to 6 instances each at most. */
function fleetCase(seed: number): Case {
  const random = seededRandom(seed);
  const ids = [...ODD_IDS].sort(() => random() - 0.5);
  const hosts = 1 + Math.floor(random() * 14);
  const perHost = 1 + Math.floor(random() * 6);
  const fleet = simulatedFleet({
    hosts, instances: Math.floor(random() * hosts * perHost * 1.1), services: 1 + Math.floor(random() * 4), functions: 3, perHost, seed,
    hostId: (i) => ids[i] ?? `h${i}`,
  });
  // Fewer guest slots and requests than the benchmark's fleets, so that loads, slots and room tie often.
  for (const h of fleet.hosts) {
    h.guestSlots = Math.floor(random() * 4);
    h.runningGuests = Math.floor(random() * (h.guestSlots + 1));
  }
  // Some hosts hold some of three parents warm; some instances are clones of one (consolidation prefers those hosts).
  const parents = [0, 1, 2].map((n) => ({ tenant: 't', moduleDigest: `sha256:m${n}`, initDigest: 'sha256:i' }));
  const someParent = () => (random() < 0.5 ? parents[Math.floor(random() * parents.length)] : undefined);
  for (const h of fleet.hosts) h.serviceParents = parents.filter(() => random() < 0.3);
  const placed = fleet.services.flatMap((s) => s.instances.map((i): PlacedInstance => {
    const parent = someParent();
    return { tenant: s.record.tenant, service: s.record.name, instanceId: i.id, host: i.host, inFlight: s.inFlight.get(i.id) ?? 0, targetConcurrency: s.record.targetConcurrency, ...(parent ? { parent } : {}) };
  }));
  return { random, fleet, perHost, placed };
}

const ids = (hosts: HostRecord[]) => hosts.map((h) => h.id);
const cases = Array.from({ length: FLEETS }, (_, seed) => fleetCase(seed));

describe('planners against the reference', () => {
  it('best-of - the first few of a stable sort, ties in the items\' order', () => {
    const random = seededRandom(7);
    for (let n = 0; n < 200; n++) {
      const items = Array.from({ length: Math.floor(random() * 30) }, (_, i) => ({ i, key: Math.floor(random() * 5) }));
      const limit = Math.floor(random() * 8);
      const byKey = (a: { key: number }, b: { key: number }) => a.key - b.key;
      expect(bestOf(items, byKey, limit)).toEqual([...items].sort(byKey).slice(0, limit));
    }
  });

  it('placement - the same hosts for a warm parent, a service instance and a job\'s parent', () => {
    let nonEmpty = 0;
    for (const { random, fleet } of cases) {
      for (const fn of fleet.functions) {
        for (const limit of [1, 3, fleet.hosts.length]) {
          const fast = warmParentHosts(fn, fleet.hosts, limit);
          expect(ids(fast)).toEqual(ids(reference.warmParentHostsBySort(fn, fleet.hosts, limit)));
          if (fast.length > 0) nonEmpty++;
        }
      }
      for (const svc of fleet.services) {
        expect(ids(serviceInstanceHosts(fleet.hosts, svc.instances))).toEqual(ids(reference.serviceInstanceHostsBySort(fleet.hosts, svc.instances, 3)));
      }
      const facts = {
        ...randomFacts(random, fleet.hosts),
        warm: (h: HostRecord) => h.warm.length > 1,
        bytes: [0, 2 ** 30, 4 * 2 ** 30][Math.floor(random() * 3)]!,
      };
      expect(ids(jobParentHosts(fleet.hosts, facts))).toEqual(ids(reference.jobParentHostsBySort(fleet.hosts, facts, 3)));
    }
    expect(nonEmpty).toBeGreaterThan(FLEETS);
  });

  it('placement - pickHosts picks the same hosts, reactivating the same drained ones, with instances not yet in heartbeats', () => {
    let reactivated = 0;
    let short = 0;
    for (const { random, fleet, perHost } of cases) {
      const extra = new Map(fleet.hosts.filter(() => random() < 0.3).map((h) => [h.id, Math.floor(random() * 3)]));
      for (const count of [1, 3, Math.floor(random() * fleet.hosts.length * perHost * 1.2) + 1]) {
        for (const cap of [perHost, perHost + 2]) {
          const preferred = new Set(fleet.hosts.filter(() => random() < 0.2).map((h) => h.id));
          const prefer = (h: HostRecord) => preferred.has(h.id);
          const fast = pickHosts(fleet.hosts, count, cap, extra, prefer);
          const slow = reference.pickHostsBySort(fleet.hosts, count, cap, extra, prefer);
          expect(ids(fast.hosts)).toEqual(ids(slow.hosts));
          expect(ids(fast.reactivate)).toEqual(ids(slow.reactivate));
          reactivated += fast.reactivate.length;
          if (fast.hosts.length < count) short++;
        }
      }
    }
    // The random fleets did exercise reactivation and full fleets.
    expect(reactivated).toBeGreaterThan(50);
    expect(short).toBeGreaterThan(50);
  });

  it('autoscaler - the same scale-in victims', () => {
    for (const { random, fleet } of cases) {
      for (const svc of fleet.services) {
        const count = Math.floor(random() * (svc.instances.length + 2));
        expect(scaleInVictims(svc.instances, count, svc.inFlight, fleet.hosts)).toEqual(reference.scaleInVictimsBySort(svc.instances, count, svc.inFlight, fleet.hosts));
      }
    }
  });

  it('consolidation - the same plan (source, moves, reasons) and the same emptied hosts', () => {
    let plans = 0;
    let toParentHolders = 0;
    let none = 0;
    let emptied = 0;
    for (const { random, fleet, perHost, placed } of cases) {
      for (const cap of [perHost, perHost + 1, perHost + 3]) {
        const fast = planConsolidation(fleet.hosts, placed, cap);
        expect(fast).toEqual(reference.planConsolidationBySort(fleet.hosts, placed, cap));
        if (fast) plans++;
        if (fast?.moves.some((m) => /holds its parent warm/.test(m.reason))) toParentHolders++;
        else none++;
      }
      // Scaled in: some instances gone from the placements (their hosts' heartbeats may still list them).
      const left = placed.filter(() => random() < 0.5);
      for (const h of fleet.hosts) if (random() < 0.5) h.runningGuests = 0;
      const everHeld = new Set(fleet.hosts.filter(() => random() < 0.7).map((h) => h.id));
      const fastEmptied = emptiedHosts(fleet.hosts, left, everHeld);
      expect(ids(fastEmptied)).toEqual(ids(reference.emptiedHostsOneByOne(fleet.hosts, left, everHeld)));
      emptied += fastEmptied.length;
    }
    expect(plans).toBeGreaterThan(FLEETS / 4);
    // The random fleets did move instances to hosts holding their parents.
    expect(toParentHolders).toBeGreaterThan(10);
    expect(none).toBeGreaterThan(FLEETS / 4);
    expect(emptied).toBeGreaterThan(FLEETS / 10);
  });

  it('jobs - clones spread over the same hosts in the same order', () => {
    for (const { random, fleet } of cases) {
      const { freeSlots, hasPages } = randomFacts(random, fleet.hosts);
      for (const clones of [1, 2, fleet.hosts.length, Math.floor(random() * 40)]) {
        const pending = Array.from({ length: clones }, (_, i) => i * 2);
        const fast = spreadClones(pending, fleet.hosts, hasPages, freeSlots);
        expect([...fast]).toEqual([...reference.spreadClonesRoundRobin(pending, fleet.hosts, hasPages, freeSlots)]);
      }
    }
  });
});

/** Per-host facts a job run has of its own (kept parents, free slots after its calls in flight, cached pages), drawn at random. */
function randomFacts(random: () => number, hosts: HostRecord[]) {
  const keeps = new Map(hosts.map((h) => [h.id, [0, 0, 0, 1, 2][Math.floor(random() * 5)]!]));
  const free = new Map(hosts.map((h) => [h.id, Math.floor(random() * 5) - 1]));
  const pages = new Map(hosts.map((h) => [h.id, random() < 0.3]));
  return { keeps: (h: HostRecord) => keeps.get(h.id)!, freeSlots: (h: HostRecord) => free.get(h.id)!, hasPages: (h: HostRecord) => pages.get(h.id)! };
}
