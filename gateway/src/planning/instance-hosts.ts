/**
 * Where new service instances go.
 *
 * The autoscaler and drains (`pickHosts`): a host takes up to `perHost`
 * instances (FLURRY_HOST_INSTANCES, a memory bound), counted from the
 * instance lists in the hosts' heartbeats plus what the controller placed
 * since; instances beyond its guest threads share them. Only active hosts
 * take instances; a drained host (emptied by consolidation, not released yet)
 * is reactivated when the active ones have no free guest thread left: a burst
 * spreads over machines for CPU, and consolidation packs the instances again
 * once load falls.
 *
 * A service's own reconcile (`serviceInstanceHosts`, up to min, or after a
 * lost instance): room in the memory budget first, then fewest instances of
 * this service, then most free guest slots.
 */
import TinyQueue from 'tinyqueue';
import type { HostRecord, ServiceInstanceRecord } from '@flurry/core';
import { bestOf, HOSTS_TRIED } from './best-of.js';
import { freeGuestSlots, hostState, instanceCount, isActive } from './host-states.js';
import { roomFirst } from './memory-room.js';

export interface HostChoice {
  /** One host per instance to make (a host may appear several times). */
  hosts: HostRecord[];
  /** Drained hosts among them, to set active first. */
  reactivate: HostRecord[];
}

interface Slot {
  host: HostRecord;
  /** Instances on it, counting those assigned so far. */
  load: number;
}

/** Preferred hosts first, then the fewest instances, then the first id. */
const fewestFirst = (prefer: (h: HostRecord) => boolean) => (a: Slot, b: Slot) =>
  Number(prefer(b.host)) - Number(prefer(a.host)) || a.load - b.load || a.host.id.localeCompare(b.host.id);

/**
 * Hosts for `count` new instances. Each goes to the host with the fewest
 * instances (counting those already assigned; ties to the first id) among, in
 * this order: active hosts with a free guest thread, drained hosts with one,
 * active hosts with room, drained hosts with room. `extra` adds instances the
 * heartbeats do not list yet; within a tier, hosts `prefer` names come first
 * (a drain prefers hosts holding the instance's parent warm). Fewer than
 * `count` when the fleet is full.
 *
 * One heap per tier: O(hosts + count × log hosts). A host lives in one heap
 * at a time; a later tier is only looked at once the earlier ones are empty,
 * so the "with room" heaps need only hold hosts whose guest threads are taken.
 */
export function pickHosts(hosts: readonly HostRecord[], count: number, perHost: number, extra: ReadonlyMap<string, number> = new Map(), prefer: (h: HostRecord) => boolean = () => false): HostChoice {
  const threads = (h: HostRecord) => Math.min(perHost, h.guestSlots);
  const [activeFree, drainedFree, activeRoom, drainedRoom]: Slot[][] = [[], [], [], []];
  for (const host of hosts) {
    const active = isActive(host);
    // An exiting host reports 'draining', never 'drained'.
    if (!active && hostState(host) !== 'drained') continue;
    const slot = { host, load: instanceCount(host) + (extra.get(host.id) ?? 0) };
    if (slot.load < threads(host)) (active ? activeFree : drainedFree).push(slot);
    else if (slot.load < perHost) (active ? activeRoom : drainedRoom).push(slot);
  }
  const tiers = [activeFree, drainedFree, activeRoom, drainedRoom].map((slots) => new TinyQueue(slots, fewestFirst(prefer)));
  const [activeWithThread, , activeWithRoom] = tiers;
  const out: HostChoice = { hosts: [], reactivate: [] };
  for (let i = 0; i < count; i++) {
    const tier = tiers.findIndex((t) => t.length > 0);
    if (tier < 0) break;
    const slot = tiers[tier]!.pop()!;
    // Reactivated hosts join the active ones for the next picks.
    if (tier === 1 || tier === 3) out.reactivate.push(slot.host);
    out.hosts.push(slot.host);
    slot.load++;
    if (slot.load < threads(slot.host)) activeWithThread!.push(slot);
    else if (slot.load < perHost) activeWithRoom!.push(slot);
  }
  return out;
}

/** The best `limit` hosts for one more instance of a service that has `instances`, best first. O(hosts + instances). */
export function serviceInstanceHosts(hosts: readonly HostRecord[], instances: readonly ServiceInstanceRecord[], limit = HOSTS_TRIED): HostRecord[] {
  const onHost = new Map<string, number>();
  for (const i of instances) onHost.set(i.host, (onHost.get(i.host) ?? 0) + 1);
  const count = (h: HostRecord) => onHost.get(h.id) ?? 0;
  const room = roomFirst(0);
  return bestOf(
    hosts.filter((h) => !h.draining),
    (a, b) => room(a, b) || count(a) - count(b) || freeGuestSlots(b) - freeGuestSlots(a) || a.id.localeCompare(b.id),
    limit,
  );
}
