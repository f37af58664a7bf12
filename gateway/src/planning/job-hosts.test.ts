// A job's placement decisions without a fleet: where its parent, its clones
// and a cold job's reduce go, and which hosts its coordinator counts as usable.
import { describe, expect, it } from 'vitest';
import type { HostRecord, ParentKey } from '@flurry/core';
import { coldReduceHost, jobParentHosts, keptParentRank, notResting, slotsLeft, spreadClones } from './job-hosts.js';

const MiB = 1024 * 1024;
const key: ParentKey = { tenant: 't', moduleDigest: 'm', initDigest: 'i' };

function host(id: string, extra: Partial<HostRecord> = {}): HostRecord {
  return { id, pid: 1, hostname: 'h', startedAt: 0, heartbeatAt: 0, cores: 2, memoryBytes: 0, guestSlots: 4, runningGuests: 0, warm: [], pager: 'portable', draining: false, ...extra };
}

const ids = (hosts: readonly HostRecord[]) => hosts.map((h) => h.id);

describe('job hosts', () => {
  it('slots - a host\'s guest slots less the clones the coordinator runs there', () => {
    expect(slotsLeft(host('a'), new Map([['a', 3]]))).toBe(1);
    expect(slotsLeft(host('b'), new Map([['a', 3]]))).toBe(4);
    expect(slotsLeft(host('a'), new Map([['a', 6]]))).toBe(-2);
  });

  it('backoff - hosts resting after a failed fork request are skipped until their time is up', () => {
    const hosts = [host('a'), host('b'), host('c')];
    expect(ids(notResting(hosts, new Map([['a', 2000], ['b', 1000]]), 1000))).toEqual(['b', 'c']);
  });

  it('parent - a host listing a parent with the job\'s key ranks above the one last asked to keep it, others last', () => {
    const keeping = host('a', { parents: [{ ...key, function: 'f', snapshotId: 's', memoryBytes: 1, holders: 0 }] });
    const otherKey = host('c', { parents: [{ ...key, initDigest: 'other', function: 'f', snapshotId: 's2', memoryBytes: 1, holders: 0 }] });
    expect(keptParentRank(keeping, key, 'b')).toBe(2);
    expect(keptParentRank(host('b'), key, 'b')).toBe(1);
    expect(keptParentRank(otherKey, key, 'b')).toBe(0);
    expect(keptParentRank(host('d'), key, undefined)).toBe(0);
  });

  it('parent - a kept parent first, then memory room, then the function warm, then free slots', () => {
    const full = { memoryBudget: { budgetBytes: 10 * MiB, usedBytes: 10 * MiB } };
    const hosts = [host('full-keeps', full), host('warm'), host('roomy'), host('full', full)];
    const facts = {
      keeps: (h: HostRecord) => (h.id === 'full-keeps' ? 2 : 0),
      warm: (h: HostRecord) => h.id === 'warm' || h.id === 'full',
      bytes: MiB,
      freeSlots: (h: HostRecord) => (h.id === 'roomy' ? 4 : 1),
    };
    expect(ids(jobParentHosts(hosts, facts, 4))).toEqual(['full-keeps', 'warm', 'roomy', 'full']);
    expect(ids(jobParentHosts(hosts, facts))).toEqual(['full-keeps', 'warm', 'roomy']);
  });

  it('clones - spread one per host per round, hosts with the snapshot\'s pages first, never past free slots', () => {
    const hosts = [host('a'), host('b'), host('c')];
    const free = new Map([['a', 1], ['b', 3], ['c', 0]]);
    const plan = spreadClones([0, 1, 2, 3, 4], hosts, (h) => h.id === 'a', (h) => free.get(h.id)!);
    expect([...plan]).toEqual([['a', [0]], ['b', [1, 2, 3]]]);
  });

  it('reduce - a cold job reduces on the host with most free slots, ties to the first id; none without hosts', () => {
    const free = new Map([['a', 1], ['b', 3], ['c', 3]]);
    expect(coldReduceHost([host('c'), host('a'), host('b')], (h) => free.get(h.id)!)?.id).toBe('b');
    expect(coldReduceHost([], () => 1)).toBeUndefined();
  });
});
