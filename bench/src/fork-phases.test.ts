import { describe, expect, it } from 'vitest';
import type { CloneResult, ForkStarted } from '@flurry/core';
import { breakdownTable, forkBreakdown } from './fork-phases.js';

const sentAt = 1_000_000;
const reply = (hostId: string, receivedAt: number, preparedMs: number, runningMs: number): ForkStarted =>
  ({ ok: true, hostId, started: 2, runningAt: 0, pager: 'userfaultfd', phases: { receivedAt, preparedMs, runningMs } });
const clone = (hostId: string, index: number, createdMs: number, firstFaultMs?: number): CloneResult =>
  ({ requestId: 'r', hostId, index, ok: true, startMs: 0, runMs: 0, createdMs, firstFaultMs, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0 });

describe('fork breakdown', () => {
  it('milestones - per host since the requests went out, the host\'s slowest clone, the fleet\'s slowest host', () => {
    const b = forkBreakdown(sentAt, [reply('host-1', sentAt + 2, 0.1, 20), reply('host-2', sentAt + 5, 8, 40)], [
      clone('host-1', 0, 10), clone('host-2', 1, 20, 30), clone('host-1', 2, 12), clone('host-2', 3, 25, 33),
    ], { 'host-1': 23, 'host-2': 47 });
    expect(b.hosts).toEqual([
      { hostId: 'host-1', clones: 2, request: 2, descriptor: 2.1, instance: 14, firstFault: null, running: 22, reply: 23 },
      { hostId: 'host-2', clones: 2, request: 5, descriptor: 13, instance: 30, firstFault: 38, running: 45, reply: 47 },
    ]);
    expect(b.slowest).toEqual({
      request: { ms: 5, hostId: 'host-2' }, descriptor: { ms: 13, hostId: 'host-2' }, instance: { ms: 30, hostId: 'host-2' },
      firstFault: { ms: 38, hostId: 'host-2' }, running: { ms: 45, hostId: 'host-2' }, reply: { ms: 47, hostId: 'host-2' },
    });
    // Clones at 12, 14, 25, 30 (instance); 35, 38 (first fault): the upper median.
    expect(b.cloneMedian).toEqual({ instance: 25, firstFault: 38 });
  });

  it('no clone faulted lazily anywhere - first fault is null, not zero', () => {
    const b = forkBreakdown(sentAt, [reply('host-1', sentAt + 1, 0, 3)], [clone('host-1', 0, 2)]);
    expect(b.slowest.firstFault).toBeNull();
    expect(b.cloneMedian.firstFault).toBeNull();
    expect(breakdownTable(b).at(-1)).toContain('—');
  });

  it('a host without phases - refused, naming it', () => {
    const old = { ...reply('host-3', 0, 0, 0), phases: undefined };
    expect(() => forkBreakdown(sentAt, [old], [])).toThrow(/host-3 reported no fork phases/);
  });

  it('table - a line per host and one for the slowest', () => {
    const lines = breakdownTable(forkBreakdown(sentAt, [reply('host-1', sentAt + 2, 0.1, 20)], [clone('host-1', 0, 10, 11)]));
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/host-1\s+1\s+2\.0\s+2\.1\s+12\.0\s+13\.0\s+22\.0/);
  });
});
