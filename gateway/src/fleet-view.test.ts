/**
 * The fleet view's index of warm function versions: the hosts a call looks
 * at (`liveWarm`) are exactly the live hosts whose last record lists the
 * version warm, as records come, change, expire and are deleted.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, type Fabric, type HostRecord, type WarmFunction } from '@flurry/core';
import { FleetView } from './fleet-view.js';
import { isWarmOn } from './planning/host-states.js';

const TTL_MS = 10_000;
const NOW = 1_000_000;

function view(link: { connected: boolean; lastUpAt: number; lastDownAt: number } = { connected: true, lastUpAt: 0, lastDownAt: 0 }): FleetView {
  return new FleetView({ link } as unknown as Fabric, TTL_MS, createLogger('test', {}, 'silent'));
}

function host(id: string, warm: WarmFunction[], heartbeatAt = NOW, startedAt = 1): HostRecord {
  return { id, pid: 1, hostname: 'h', startedAt, heartbeatAt, cores: 2, memoryBytes: 1 << 30, guestSlots: 2, runningGuests: 0, warm, pager: 'portable', draining: false };
}

const echo = { tenant: 't', name: 'echo', digest: 'a'.repeat(64) };
const echoV2 = { ...echo, digest: 'b'.repeat(64) };
const other = { tenant: 'u', name: 'echo', digest: 'a'.repeat(64) };
const ids = (hosts: HostRecord[]) => hosts.map((h) => h.id).sort();

describe('FleetView - warm index', () => {
  it('lists the live hosts holding a version warm, and no others', () => {
    const fleet = view();
    fleet.record('h1', host('h1', [echo]));
    fleet.record('h2', host('h2', [echo, other]));
    fleet.record('h3', host('h3', [other]));
    expect(ids(fleet.liveWarm(echo, NOW))).toEqual(['h1', 'h2']);
    expect(ids(fleet.liveWarm(other, NOW))).toEqual(['h2', 'h3']);
    expect(fleet.liveWarm(echoV2, NOW)).toEqual([]);
  });

  it('follows a host that drops a version, takes a new one, or is deleted', () => {
    const fleet = view();
    fleet.record('h1', host('h1', [echo]));
    fleet.record('h2', host('h2', [echo]));
    fleet.record('h1', host('h1', [echoV2]));
    expect(ids(fleet.liveWarm(echo, NOW))).toEqual(['h2']);
    expect(ids(fleet.liveWarm(echoV2, NOW))).toEqual(['h1']);
    fleet.forget('h2');
    expect(fleet.liveWarm(echo, NOW)).toEqual([]);
    expect(fleet.live(NOW).map((h) => h.id)).toEqual(['h1']);
  });

  it('gives the latest record of a host (a call reads its draining flag and slots from it)', () => {
    const fleet = view();
    fleet.record('h1', host('h1', [echo]));
    fleet.record('h1', { ...host('h1', [echo]), draining: true, guestSlots: 8 });
    expect(fleet.liveWarm(echo, NOW)).toMatchObject([{ id: 'h1', draining: true, guestSlots: 8 }]);
  });

  it('leaves out a host whose heartbeat is older than the TTL, as live() does', () => {
    const fleet = view();
    fleet.record('h1', host('h1', [echo], NOW - TTL_MS - 1));
    fleet.record('h2', host('h2', [echo], NOW - TTL_MS + 1));
    expect(ids(fleet.liveWarm(echo, NOW))).toEqual(['h2']);
    expect(ids(fleet.live(NOW))).toEqual(['h2']);
  });

  it('judges hosts from when the broker came back, as live() does', () => {
    // Heartbeats could not arrive before NOW - 1000: a host silent since long before still counts as live.
    const fleet = view({ connected: true, lastUpAt: NOW - 1000, lastDownAt: NOW - 5000 });
    fleet.record('h1', host('h1', [echo], NOW - 60_000));
    expect(ids(fleet.liveWarm(echo, NOW))).toEqual(['h1']);
    expect(ids(fleet.live(NOW))).toEqual(['h1']);
  });

  it('agrees with filtering live() by isWarmOn over a run of random records', () => {
    const fleet = view();
    const versions = [echo, echoV2, other];
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let step = 0; step < 2000; step++) {
      const id = `h${random(12)}`;
      if (random(10) === 0) fleet.forget(id);
      else fleet.record(id, host(id, versions.filter(() => random(2) === 0), NOW - random(2 * TTL_MS), 1 + random(2)));
      for (const v of versions) {
        const fn = { ...v, size: 1, exports: [], memory: { initialPages: 1, maximumPages: 1 }, createdAt: 1, updatedAt: 1 };
        expect(ids(fleet.liveWarm(v, NOW))).toEqual(ids(fleet.live(NOW).filter((h) => isWarmOn(h, fn))));
      }
    }
  });
});
