/**
 * Consolidation's decisions (docs/autoscaling.md, "Consolidation"): which
 * hosts scaling in left empty, and which host to empty next and where its
 * instances go.
 */
import TinyQueue from 'tinyqueue';
import type { HostRecord } from '@flurry/core';
import { instanceCount, isActive } from './host-states.js';

/** A service instance, where it is and its load. */
export interface PlacedInstance {
  tenant: string;
  service: string;
  instanceId: string;
  host: string;
  /** Requests in flight to it, fleet-wide, and its service's target per instance. */
  inFlight: number;
  targetConcurrency: number;
}

export interface ConsolidationPlan {
  source: string;
  reason: string;
  moves: { inst: PlacedInstance; to: string; reason: string }[];
}

/**
 * Active hosts to mark drained because they once held instances (`everHeld`)
 * and now hold none and run nothing, in the hosts' order; never the last
 * active host. O(hosts + instances).
 */
export function emptiedHosts(hosts: readonly HostRecord[], placed: readonly PlacedInstance[], everHeld: ReadonlySet<string>): HostRecord[] {
  const holding = new Set(placed.map((i) => i.host));
  const active = hosts.filter(isActive);
  let left = active.length;
  const out: HostRecord[] = [];
  for (const h of active) {
    const empty = !holding.has(h.id) && instanceCount(h) === 0 && h.runningGuests === 0;
    if (!empty || !everHeld.has(h.id) || left <= 1) continue;
    out.push(h);
    left--;
  }
  return out;
}

interface Holder {
  id: string;
  list: PlacedInstance[];
  inFlight: number;
  /** Every instance has at most half its target in flight. */
  light: boolean;
}

/**
 * The next consolidation step, if any: the active host with the fewest
 * instances (then fewest requests in flight, then the last id) whose
 * instances are all lightly loaded (at most half their target in flight) and
 * fit on the other active hosts that hold instances (at most `perHost` each),
 * fullest first (then the first id).
 *
 * O(hosts + instances + moves × log hosts). Filling the fullest host with
 * room first fills each destination up before the next, so a source fits
 * exactly when the other holders' free room adds up to its instances (no
 * trial moves), and its destinations are taken in one fixed order (a heap).
 */
export function planConsolidation(hosts: readonly HostRecord[], instances: readonly PlacedInstance[], perHost: number): ConsolidationPlan | undefined {
  const on = new Map<string, Holder>();
  for (const h of hosts) if (isActive(h)) on.set(h.id, { id: h.id, list: [], inFlight: 0, light: true });
  for (const i of instances) {
    const holder = on.get(i.host);
    if (!holder) continue;
    holder.list.push(i);
    holder.inFlight += i.inFlight;
    if (i.inFlight * 2 > i.targetConcurrency) holder.light = false;
  }
  const holding = [...on.values()].filter((h) => h.list.length > 0);
  if (holding.length < 2) return undefined;
  const free = (h: Holder) => Math.max(0, perHost - h.list.length);
  const totalFree = holding.reduce((s, h) => s + free(h), 0);
  // The first source in this order that is light and fits: one scan, no sort.
  const emptiestFirst = (a: Holder, b: Holder) => a.list.length - b.list.length || a.inFlight - b.inFlight || b.id.localeCompare(a.id);
  let source: Holder | undefined;
  for (const h of holding) {
    if (h.light && totalFree - free(h) >= h.list.length && (!source || emptiestFirst(h, source) < 0)) source = h;
  }
  if (!source) return undefined;
  const from = source;
  const fullestFirst = (a: Holder, b: Holder) => b.list.length - a.list.length || a.id.localeCompare(b.id);
  const destinations = new TinyQueue(holding.filter((h) => h !== from && h.list.length < perHost), fullestFirst);
  const moves: ConsolidationPlan['moves'] = [];
  let to = destinations.pop()!;
  let n = to.list.length;
  for (const inst of from.list) {
    if (n >= perHost) {
      to = destinations.pop()!;
      n = to.list.length;
    }
    moves.push({
      inst,
      to: to.id,
      reason: `consolidate: ${from.id} holds ${from.list.length} instance(s) with ${from.inFlight} request(s) in flight; ${to.id} has room (${n}/${perHost} instances), so ${from.id} can be drained`,
    });
    n++;
  }
  return { source: from.id, moves, reason: `consolidate: its ${from.list.length} lightly loaded instance(s) fit on ${[...new Set(moves.map((m) => m.to))].join(', ')}` };
}
