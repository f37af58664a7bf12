/**
 * Simulated fleets for the planners' property tests and `npm run bench -- plan`:
 * host records, functions, services with their instances and requests in
 * flight, drawn from a seed (the same seed gives the same fleet). Load is
 * skewed as in real fleets: instances per host and per service, and requests
 * per service, follow Zipf's law; some hosts are drained or draining, some
 * report no memory budget, some a full one, some run every guest slot.
 */
import type { FunctionRecord, HostRecord, ServiceInstanceRecord, ServiceRecord } from '@flurry/core';
import { seededRandom } from './seeded-random.js';

export interface SimulatedFleetOptions {
  hosts: number;
  instances: number;
  /** Services the instances belong to (default: one per 20 instances). */
  services?: number;
  /** Functions deployed, some warm on hosts (default: one per 10 hosts). */
  functions?: number;
  /** Instances one host takes at most (FLURRY_HOST_INSTANCES). */
  perHost: number;
  seed: number;
  /** Host ids (default `host-<i>`); tests pass ids that tie and sort oddly. */
  hostId?: (i: number) => string;
}

export interface SimulatedService {
  record: ServiceRecord;
  instances: ServiceInstanceRecord[];
  /** Requests in flight per instance id, fleet-wide. */
  inFlight: Map<string, number>;
  /** Requests held for an instance. */
  held: number;
}

export interface SimulatedFleet {
  hosts: HostRecord[];
  functions: FunctionRecord[];
  services: SimulatedService[];
}

const GiB = 1024 ** 3;

/** Index in [0, n) drawn with weight 1/(i+1)^s: a few indices take most draws. */
function zipf(random: () => number, n: number, s = 1): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) cumulative.push((total += 1 / (i + 1) ** s));
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export function simulatedFleet(o: SimulatedFleetOptions): SimulatedFleet {
  const random = seededRandom(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const hostId = o.hostId ?? ((i: number) => `host-${i}`);

  const functions: FunctionRecord[] = Array.from({ length: Math.max(1, o.functions ?? Math.ceil(o.hosts / 10)) }, (_, i) => {
    const pages = pick([1, 16, 256, 1024, 4096]);
    return { tenant: 't', name: `fn-${i}`, digest: `d${i}`, size: 1, exports: ['handle'], memory: { initialPages: pages, maximumPages: pages }, createdAt: 0, updatedAt: 0 };
  });
  const warmFunction = zipf(random, functions.length);

  const hosts: HostRecord[] = Array.from({ length: o.hosts }, (_, i) => {
    const r = random();
    // Mostly active; some exiting (draining before their state says so), drained (consolidation emptied them),
    // draining, or reporting no state (older hosts).
    const [state, draining]: [HostRecord['state'], boolean] = r < 0.78 ? ['active', false] : r < 0.8 ? ['active', true] : r < 0.88 ? ['drained', true] : r < 0.93 ? ['draining', true] : [undefined, r < 0.95];
    const guestSlots = pick([1, 2, 4, 8, 16]);
    const m = random();
    const budgetBytes = pick([1, 2, 4, 8]) * GiB;
    const memoryBudget = m < 0.2 ? undefined : { budgetBytes, usedBytes: m < 0.3 ? budgetBytes : Math.floor(random() * budgetBytes) };
    const warm = [...new Set(Array.from({ length: Math.floor(random() * 4) }, warmFunction))].map((f) => ({ tenant: 't', name: functions[f]!.name, digest: functions[f]!.digest }));
    return {
      id: hostId(i), pid: i + 1, hostname: `h${i}`, startedAt: 0, heartbeatAt: 0, cores: guestSlots, memoryBytes: 16 * GiB, guestSlots,
      runningGuests: random() < 0.2 ? guestSlots : Math.floor(random() * (guestSlots + 1)), warm, pager: 'portable', draining,
      ...(state ? { state } : {}), instances: [], ...(memoryBudget ? { memoryBudget } : {}),
    };
  });

  const serviceCount = Math.max(1, o.services ?? Math.ceil(o.instances / 20));
  const services: SimulatedService[] = Array.from({ length: serviceCount }, (_, i) => ({
    record: {
      tenant: 't', name: `svc-${i}`, function: functions[i % functions.length]!.name, digest: functions[i % functions.length]!.digest,
      min: pick([0, 1, 1, 2]), max: 0, targetConcurrency: pick([1, 2, 4, 8, 16]), createdAt: 0, updatedAt: 0,
    },
    instances: [], inFlight: new Map(), held: 0,
  }));

  // Instances go to hosts that can hold them (not drained), a few hosts taking most, never beyond perHost.
  const holders = hosts.filter((h) => h.state !== 'drained');
  for (let i = holders.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [holders[i], holders[j]] = [holders[j]!, holders[i]!];
  }
  const holderOf = zipf(random, Math.max(1, holders.length), 0.8);
  const serviceOf = zipf(random, serviceCount);
  const open = new Set(holders.filter(() => o.perHost > 0));
  for (let n = 0; n < o.instances && open.size > 0; n++) {
    let host = holders[holderOf()]!;
    // A full host: another one with room (the first in the open set is as good as any other and O(1)).
    if (!open.has(host)) host = open.values().next().value!;
    const svc = services[serviceOf()]!;
    const id = `inst-${n}`;
    svc.instances.push({ id, host: host.id, digest: svc.record.digest, createdAt: Math.floor(random() * 1_000_000) });
    host.instances!.push({ tenant: 't', service: svc.record.name, instanceId: id, requests: 0 });
    if (host.instances!.length >= o.perHost) open.delete(host);
  }

  // Requests in flight: a few hot services carry most of the load, most are idle or nearly.
  const heatOf = zipf(random, serviceCount);
  const heat = new Map<SimulatedService, number>();
  for (let n = 0; n < serviceCount; n++) {
    const svc = services[heatOf()]!;
    heat.set(svc, (heat.get(svc) ?? 0) + 1);
  }
  for (const svc of services) {
    const h = heat.get(svc) ?? 0;
    const target = svc.record.targetConcurrency;
    for (const inst of svc.instances) {
      const n = Math.floor(random() * random() * h * target);
      if (n > 0) svc.inFlight.set(inst.id, n);
    }
    svc.held = svc.instances.length === 0 && h > 0 ? Math.ceil(random() * h) : 0;
    svc.record.max = Math.max(svc.record.min, svc.instances.length) + pick([0, 0, 1, 4]);
  }
  const byName = new Map(services.map((s) => [s.record.name, s]));
  for (const h of hosts) for (const i of h.instances!) i.requests = byName.get(i.service)!.inFlight.get(i.instanceId) ?? 0;
  return { hosts, functions, services };
}
