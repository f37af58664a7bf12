/**
 * The planners written for clarity, not speed: sort every candidate, take the
 * first (the code the planners replaced). The property tests check that the
 * fast planners decide exactly as these do on random fleets, and
 * `npm run bench -- plan` times them as its baseline. Not used by the gateway.
 */
import type { HostRecord, ServiceInstanceRecord, FunctionRecord } from '@flurry/core';
import type { ConsolidationPlan, PlacedInstance } from './consolidation.js';
import { freeGuestSlots, hostState, instanceCount, isActive, isWarmOn } from './host-states.js';
import type { HostChoice } from './instance-hosts.js';
import type { ParentHostFacts } from './job-hosts.js';
import { initialMemoryOf, roomFirst } from './memory-room.js';
import { holdsParent } from './migration-target.js';

const byId = (a: HostRecord, b: HostRecord) => a.id.localeCompare(b.id);

export function warmParentHostsBySort(fn: FunctionRecord, hosts: readonly HostRecord[], limit: number): HostRecord[] {
  return hosts
    .filter((h) => !h.draining && !isWarmOn(h, fn))
    .sort((a, b) => roomFirst(initialMemoryOf(fn))(a, b) || freeGuestSlots(b) - freeGuestSlots(a) || a.warm.length - b.warm.length || byId(a, b))
    .slice(0, limit);
}

export function pickHostsBySort(hosts: readonly HostRecord[], count: number, perHost: number, extra: ReadonlyMap<string, number> = new Map(), prefer: (h: HostRecord) => boolean = () => false): HostChoice {
  const load = new Map(hosts.map((h) => [h.id, instanceCount(h) + (extra.get(h.id) ?? 0)]));
  const sorted = [...hosts].sort(byId);
  const active = new Set(sorted.filter(isActive).map((h) => h.id));
  const drained = sorted.filter((h) => hostState(h) === 'drained');
  const threads = (h: HostRecord) => Math.min(perHost, h.guestSlots);
  const tiers: { pool: () => HostRecord[]; limit: (h: HostRecord) => number }[] = [
    { pool: () => sorted.filter((h) => active.has(h.id)), limit: threads },
    { pool: () => drained.filter((h) => !active.has(h.id)), limit: threads },
    { pool: () => sorted.filter((h) => active.has(h.id)), limit: () => perHost },
    { pool: () => drained.filter((h) => !active.has(h.id)), limit: () => perHost },
  ];
  const out: HostChoice = { hosts: [], reactivate: [] };
  for (let i = 0; i < count; i++) {
    let best: HostRecord | undefined;
    for (const tier of tiers) {
      const candidates = tier.pool().filter((h) => load.get(h.id)! < tier.limit(h));
      best = candidates.sort((a, b) => Number(prefer(b)) - Number(prefer(a)) || load.get(a.id)! - load.get(b.id)!)[0];
      if (best) break;
    }
    if (!best) break;
    if (!active.has(best.id)) {
      active.add(best.id);
      out.reactivate.push(best);
    }
    out.hosts.push(best);
    load.set(best.id, load.get(best.id)! + 1);
  }
  return out;
}

export function serviceInstanceHostsBySort(hosts: readonly HostRecord[], instances: readonly ServiceInstanceRecord[], limit: number): HostRecord[] {
  const count = (id: string) => instances.filter((i) => i.host === id).length;
  return hosts
    .filter((h) => !h.draining)
    .sort((a, b) => roomFirst(0)(a, b) || count(a.id) - count(b.id) || freeGuestSlots(b) - freeGuestSlots(a) || byId(a, b))
    .slice(0, limit);
}

export function scaleInVictimsBySort(instances: readonly ServiceInstanceRecord[], count: number, inFlight: ReadonlyMap<string, number>, hosts: readonly HostRecord[]): string[] {
  const hostLoad = new Map(hosts.map((h) => [h.id, instanceCount(h)]));
  return [...instances]
    .sort((a, b) => (inFlight.get(a.id) ?? 0) - (inFlight.get(b.id) ?? 0) || (hostLoad.get(a.host) ?? 0) - (hostLoad.get(b.host) ?? 0) || b.createdAt - a.createdAt)
    .slice(0, count)
    .map((i) => i.id);
}

export function emptiedHostsOneByOne(hosts: readonly HostRecord[], placed: readonly PlacedInstance[], everHeld: ReadonlySet<string>): HostRecord[] {
  let active = hosts.filter(isActive);
  const out: HostRecord[] = [];
  for (const h of [...active]) {
    const empty = !placed.some((i) => i.host === h.id) && instanceCount(h) === 0 && h.runningGuests === 0;
    if (!empty || !everHeld.has(h.id) || active.length <= 1) continue;
    out.push(h);
    active = active.filter((x) => x.id !== h.id);
  }
  return out;
}

/** Tries every source in order, moving its instances one by one onto a host with room holding the instance's parent, else the fullest with room (sorted each time). */
export function planConsolidationBySort(hosts: readonly HostRecord[], instances: readonly PlacedInstance[], perHost: number): ConsolidationPlan | undefined {
  const on = new Map<string, PlacedInstance[]>();
  for (const h of hosts) if (isActive(h)) on.set(h.id, []);
  for (const i of instances) on.get(i.host)?.push(i);
  const holding = [...on.entries()].filter(([, list]) => list.length > 0);
  if (holding.length < 2) return undefined;
  const byHostId = new Map(hosts.map((h) => [h.id, h]));
  const inFlight = (list: PlacedInstance[]) => list.reduce((s, i) => s + i.inFlight, 0);
  const sources = [...holding].sort((a, b) => a[1].length - b[1].length || inFlight(a[1]) - inFlight(b[1]) || b[0].localeCompare(a[0]));
  for (const [source, list] of sources) {
    if (list.some((i) => i.inFlight * 2 > i.targetConcurrency)) continue;
    const room = new Map(holding.filter(([id]) => id !== source).map(([id, l]) => [id, l.length]));
    const moves: ConsolidationPlan['moves'] = [];
    for (const inst of list) {
      const holds = (id: string) => (holdsParent(byHostId.get(id)!, inst.parent) ? 1 : 0);
      const to = [...room.entries()].filter(([, n]) => n < perHost).sort((a, b) => holds(b[0]) - holds(a[0]) || b[1] - a[1] || a[0].localeCompare(b[0]))[0];
      if (!to) break;
      moves.push({
        inst,
        to: to[0],
        reason: `consolidate: ${source} holds ${list.length} instance(s) with ${inFlight(list)} request(s) in flight; ${to[0]} ${holds(to[0]) ? 'holds its parent warm and ' : ''}has room (${to[1]}/${perHost} instances), so ${source} can be drained`,
      });
      room.set(to[0], to[1] + 1);
    }
    if (moves.length === list.length) {
      return { source, moves, reason: `consolidate: its ${list.length} lightly loaded instance(s) fit on ${[...new Set(moves.map((m) => m.to))].join(', ')}` };
    }
  }
  return undefined;
}

export function jobParentHostsBySort(hosts: readonly HostRecord[], facts: ParentHostFacts, limit: number): HostRecord[] {
  return [...hosts].sort((a, b) => {
    const wa = facts.warm(a) ? 1 : 0;
    const wb = facts.warm(b) ? 1 : 0;
    return facts.keeps(b) - facts.keeps(a) || roomFirst(facts.bytes)(a, b) || wb - wa || facts.freeSlots(b) - facts.freeSlots(a) || byId(a, b);
  }).slice(0, limit);
}

export function spreadClonesRoundRobin(pending: readonly number[], hosts: readonly HostRecord[], hasPages: (h: HostRecord) => boolean, freeSlots: (h: HostRecord) => number): Map<string, number[]> {
  const left = [...pending];
  const sorted = [...hosts].sort((a, b) => (hasPages(b) ? 1 : 0) - (hasPages(a) ? 1 : 0) || freeSlots(b) - freeSlots(a) || byId(a, b));
  const plan = new Map<string, number[]>();
  let placed = true;
  while (left.length > 0 && placed) {
    placed = false;
    for (const h of sorted) {
      if (left.length === 0) break;
      const planned = plan.get(h.id)?.length ?? 0;
      if (freeSlots(h) - planned <= 0) continue;
      plan.set(h.id, [...(plan.get(h.id) ?? []), left.shift()!]);
      placed = true;
    }
  }
  return plan;
}
