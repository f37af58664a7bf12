/**
 * How many clones of a task job each host may start now: its free slots, but
 * never more clones on a machine (hosts of one hostname) than the machine has
 * cores. A task job's clones balance the work between them, so one clone per
 * core is all it needs; more only time-slice the same cores: with no fleet, on
 * this project's 2-core machine, six clones of BLAST used 13% more CPU for the
 * same queries than one alone (two: 3%; each clone faults the index in again,
 * the caches are shared three ways), and a task near the end takes three times
 * as long, so the tail does too (docs/jobs.md, "Clones and slots"). A
 * machine's room is handed to its hosts one clone at a time, hosts holding the
 * snapshot's pages first, so clones still spread.
 */
import type { HostRecord } from '@flurry/core';

export function taskCloneRoom(
  hosts: readonly HostRecord[],
  freeSlots: (h: HostRecord) => number,
  /** Clones this coordinator runs on each host now (every job's), by host id. */
  inFlight: ReadonlyMap<string, number>,
  hasPages: (h: HostRecord) => boolean,
): (h: HostRecord) => number {
  const machines = new Map<string, HostRecord[]>();
  for (const h of hosts) {
    const group = machines.get(h.hostname);
    if (group) group.push(h);
    else machines.set(h.hostname, [h]);
  }
  const room = new Map<string, number>();
  for (const group of machines.values()) {
    // Hosts of an older build report no cores: no cap there.
    const cores = Math.min(...group.map((h) => (h.cores > 0 ? h.cores : Infinity)));
    let left = cores - group.reduce((n, h) => n + (inFlight.get(h.id) ?? 0), 0);
    const order = [...group].sort((a, b) => Number(hasPages(b)) - Number(hasPages(a)) || freeSlots(b) - freeSlots(a) || a.id.localeCompare(b.id));
    for (const h of order) room.set(h.id, 0);
    for (let given = true; left > 0 && given; ) {
      given = false;
      for (const h of order) {
        if (left === 0) break;
        if (room.get(h.id)! >= freeSlots(h)) continue;
        room.set(h.id, room.get(h.id)! + 1);
        left--;
        given = true;
      }
    }
  }
  return (h) => room.get(h.id) ?? 0;
}
