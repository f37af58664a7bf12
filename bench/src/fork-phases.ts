/**
 * Where a fork's fan-out time goes, from what the hosts report (ForkReply.phases,
 * CloneResult.createdMs / firstFaultMs): per host and for the fleet's slowest,
 * each milestone as ms since the driver sent the fork requests.
 *
 *   request     the host received its fork request
 *   descriptor  the snapshot's memory ready on the host (adopted: page cache,
 *               module compiled; the parent's host: at once)
 *   instance    the host's last clone instance made (its first instruction next)
 *   firstFault  the host's last clone to have its first lazy fault served by
 *               the pager (absent where no clone faulted to it: the parent's
 *               host maps its memory file, and a host's page store is mapped
 *               under its clones, so the kernel serves every page already
 *               there; only pages still on their way fault to the pager)
 *   running     every clone of the host running: its answer went out
 *   reply       the host's answer reached the driver (the driver's clock)
 *
 * Hosts' times are on their own clocks; on one machine (LocalFleet) every
 * process reads the same one. Milestones need not come in this order: a clone
 * that touches no memory in `on_restore` faults first in `run`, after running.
 */
import type { CloneResult, ForkStarted } from '@flurry/core';

export const MILESTONES = ['request', 'descriptor', 'instance', 'firstFault', 'running', 'reply'] as const;
export type Milestone = (typeof MILESTONES)[number];

/** Milestones of one host, ms since the requests went out (null: not reached by any of its clones). */
export type HostMilestones = { hostId: string; clones: number } & Record<Milestone, number | null>;

export interface ForkBreakdown {
  hosts: HostMilestones[];
  /** The fleet's slowest host at each milestone, and which host it was. */
  slowest: Record<Milestone, { ms: number; hostId: string } | null>;
  /** Over every clone of the fork: the median clone's instance made and first fault served, ms since the requests went out. */
  cloneMedian: { instance: number | null; firstFault: number | null };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function max(xs: number[]): number | null {
  return xs.length ? Math.max(...xs) : null;
}

/**
 * Breaks a fork down by host from the hosts' replies and the clones' results.
 * A reply without phases (a host from before they existed) is refused: the
 * breakdown would be silently partial.
 */
export function forkBreakdown(sentAt: number, replies: ForkStarted[], results: CloneResult[], repliedMs: Record<string, number> = {}): ForkBreakdown {
  const byHost = new Map<string, CloneResult[]>();
  for (const r of results) if (r) byHost.set(r.hostId, [...(byHost.get(r.hostId) ?? []), r]);
  const hosts = replies.map((reply): HostMilestones => {
    if (!reply.phases) throw new Error(`host ${reply.hostId} reported no fork phases`);
    const offset = reply.phases.receivedAt - sentAt;
    const clones = byHost.get(reply.hostId) ?? [];
    const at = (xs: (number | undefined)[]) => {
      const m = max(xs.filter((x): x is number => x !== undefined));
      return m === null ? null : offset + m;
    };
    return {
      hostId: reply.hostId,
      clones: clones.length,
      request: offset,
      descriptor: offset + reply.phases.preparedMs,
      instance: at(clones.map((c) => c.createdMs)),
      firstFault: at(clones.map((c) => c.firstFaultMs)),
      running: offset + reply.phases.runningMs,
      reply: repliedMs[reply.hostId] ?? null,
    };
  });
  const slowest = Object.fromEntries(MILESTONES.map((m) => {
    let worst: { ms: number; hostId: string } | null = null;
    for (const h of hosts) {
      const v = h[m];
      if (v !== null && (worst === null || v > worst.ms)) worst = { ms: v, hostId: h.hostId };
    }
    return [m, worst];
  })) as ForkBreakdown['slowest'];
  const offsets = new Map(replies.map((r) => [r.hostId, r.phases!.receivedAt - sentAt]));
  const sinceSent = (pick: (c: CloneResult) => number | undefined) =>
    median(results.flatMap((c) => (c && pick(c) !== undefined && offsets.has(c.hostId) ? [offsets.get(c.hostId)! + pick(c)!] : [])));
  return { hosts, slowest, cloneMedian: { instance: sinceSent((c) => c.createdMs), firstFault: sinceSent((c) => c.firstFaultMs) } };
}

/** The breakdown as a table, one line per host and one for the fleet's slowest. */
export function breakdownTable(b: ForkBreakdown): string[] {
  const cell = (v: number | null) => (v === null ? '—' : v.toFixed(1)).padStart(11);
  const head = `  ${'host'.padEnd(10)}${'clones'.padStart(7)}${MILESTONES.map((m) => m.padStart(11)).join('')}   (ms since the fork requests went out)`;
  const rows = b.hosts.map((h) => `  ${h.hostId.padEnd(10)}${String(h.clones).padStart(7)}${MILESTONES.map((m) => cell(h[m])).join('')}`);
  const slow = `  ${'slowest'.padEnd(10)}${''.padStart(7)}${MILESTONES.map((m) => cell(b.slowest[m]?.ms ?? null)).join('')}`;
  return [head, ...rows, slow];
}
