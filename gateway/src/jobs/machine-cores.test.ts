import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { taskCloneRoom } from './machine-cores.js';

const host = (id: string, hostname: string, cores: number, guestSlots = 2) => ({ id, hostname, cores, guestSlots }) as HostRecord;
const free = (inFlight: Map<string, number>) => (h: HostRecord) => h.guestSlots - (inFlight.get(h.id) ?? 0);

describe('task clone room', () => {
  it('one machine - three hosts of one 2-core machine take 2 clones between them, one each, the host with the pages first', () => {
    const hosts = [host('a', 'm', 2), host('b', 'm', 2), host('c', 'm', 2)];
    const inFlight = new Map<string, number>();
    const room = taskCloneRoom(hosts, free(inFlight), inFlight, (h) => h.id === 'c');
    expect(hosts.map(room)).toEqual([1, 0, 1]);
  });

  it('busy - clones running on the machine (any job\'s) take its cores; a host never gets more than its free slots', () => {
    const hosts = [host('a', 'm', 4), host('b', 'm', 4, 1)];
    const inFlight = new Map([['a', 1]]);
    const room = taskCloneRoom(hosts, free(inFlight), inFlight, () => false);
    expect(hosts.map(room)).toEqual([1, 1]);
    const full = new Map([['a', 2], ['b', 1]]);
    expect(hosts.map(taskCloneRoom(hosts, free(full), full, () => false))).toEqual([0, 0]);
  });

  it('machines - each machine counts its own cores; a host that reports none is capped by its slots alone', () => {
    const hosts = [host('a', 'm1', 1, 4), host('b', 'm2', 8, 3), host('c', 'old', 0, 2)];
    const inFlight = new Map<string, number>();
    expect(hosts.map(taskCloneRoom(hosts, free(inFlight), inFlight, () => false))).toEqual([1, 3, 2]);
  });
});
