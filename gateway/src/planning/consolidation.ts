/**
 * Consolidation's decisions (docs/autoscaling.md, "Consolidation"): which
 * hosts scaling in left empty, and which host to empty next and where its
 * instances go.
 */
import type { HostRecord, ParentKey } from '@flurry/core';
import { instanceCount, isActive } from './host-states.js';
import { holdsParent } from './migration-target.js';

/** A service instance, where it is and its load. */
export interface PlacedInstance {
  tenant: string;
  service: string;
  instanceId: string;
  host: string;
  /** Requests in flight to it, fleet-wide, and its service's target per instance. */
  inFlight: number;
  targetConcurrency: number;
  /** The parent it is a clone of, when it is its service's own: a host holding it warm takes the instance without booting it. */
  parent?: ParentKey;
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
  host: HostRecord;
  list: PlacedInstance[];
  inFlight: number;
  /** Every instance has at most half its target in flight. */
  light: boolean;
}

/**
 * The next consolidation step, if any: the active host with the fewest
 * instances (then fewest requests in flight, then the last id) whose
 * instances are all lightly loaded (at most half their target in flight) and
 * fit on the other active hosts that hold instances (at most `perHost` each).
 * Each instance goes to a host with room that holds its parent warm when
 * there is one (the migration then neither boots nor hashes the parent), else
 * to the fullest host with room (then the first id): destinations fill up
 * one after the other, so the emptied host's instances land on few hosts.
 *
 * O(hosts + instances + moves × hosts): a source fits exactly when the other
 * holders' free room adds up to its instances (no trial moves), and each move
 * scans the destinations once (moves ≤ perHost).
 */
export function planConsolidation(hosts: readonly HostRecord[], instances: readonly PlacedInstance[], perHost: number): ConsolidationPlan | undefined {
  const on = new Map<string, Holder>();
  for (const h of hosts) if (isActive(h)) on.set(h.id, { host: h, list: [], inFlight: 0, light: true });
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
  const emptiestFirst = (a: Holder, b: Holder) => a.list.length - b.list.length || a.inFlight - b.inFlight || b.host.id.localeCompare(a.host.id);
  let source: Holder | undefined;
  for (const h of holding) {
    if (h.light && totalFree - free(h) >= h.list.length && (!source || emptiestFirst(h, source) < 0)) source = h;
  }
  if (!source) return undefined;
  const from = source;
  const destinations = holding.filter((h) => h !== from).map((h) => ({ host: h.host, n: h.list.length }));
  const moves: ConsolidationPlan['moves'] = [];
  for (const inst of from.list) {
    const to = bestDestination(destinations, inst.parent, perHost)!;
    moves.push({
      inst,
      to: to.host.id,
      reason: `consolidate: ${from.host.id} holds ${from.list.length} instance(s) with ${from.inFlight} request(s) in flight; ${to.host.id} ${holdsParent(to.host, inst.parent) ? 'holds its parent warm and ' : ''}has room (${to.n}/${perHost} instances), so ${from.host.id} can be drained`,
    });
    to.n++;
  }
  return { source: from.host.id, moves, reason: `consolidate: its ${from.list.length} lightly loaded instance(s) fit on ${[...new Set(moves.map((m) => m.to))].join(', ')}` };
}

/** Among destinations with room: one holding `parent` first, then the fullest, then the first id. */
function bestDestination<D extends { host: HostRecord; n: number }>(destinations: D[], parent: ParentKey | undefined, perHost: number): D | undefined {
  let best: D | undefined;
  let bestHolds = false;
  for (const d of destinations) {
    if (d.n >= perHost) continue;
    const holds = holdsParent(d.host, parent);
    if (!best || (holds && !bestHolds) || (holds === bestHolds && (d.n > best.n || (d.n === best.n && d.host.id.localeCompare(best.host.id) < 0)))) {
      best = d;
      bestHolds = holds;
    }
  }
  return best;
}
