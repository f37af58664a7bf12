// The default migration target, without a fleet.
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { holdsParent, migrationCandidates, migrationTarget, serviceParent } from './migration-target.js';

const host = (id: string, guestSlots: number, runningGuests: number, draining = false): HostRecord => ({
  id, pid: 1, hostname: 'h', startedAt: 0, heartbeatAt: 0, cores: 2, memoryBytes: 0, guestSlots, runningGuests, warm: [], pager: 'portable', draining,
});

describe('migrationTarget', () => {
  it('migration - the host with the most free guest slots, never the source or a draining host', () => {
    const hosts = [host('a', 8, 0), host('b', 4, 1), host('c', 8, 2), host('d', 16, 0, true)];
    expect(migrationTarget(hosts, 'a')?.id).toBe('c');
    expect(migrationTarget(hosts, 'c')?.id).toBe('a');
    expect(migrationCandidates(hosts, 'a').map((h) => h.id)).toEqual(['b', 'c']);
  });
  it('migration - ties go to the first id', () => {
    expect(migrationTarget([host('z', 2, 0), host('y', 2, 0), host('x', 1, 0)], 'x')?.id).toBe('y');
  });
  it('migration - a host holding the instance\'s parent warm goes first, whatever its free slots', () => {
    const parent = serviceParent({ tenant: 't', init: new TextEncoder().encode('{"ballastMiB":256}') }, 'sha256:m')!;
    const other = { ...parent, initDigest: 'sha256:other' };
    const hosts = [host('a', 8, 0), { ...host('b', 2, 1), serviceParents: [parent] }, { ...host('c', 8, 0), serviceParents: [other] }, { ...host('d', 8, 0, true), serviceParents: [parent] }];
    expect(migrationTarget(hosts, 'a', parent)?.id).toBe('b');
    // Without a parent of its own (or another parent's holder): free slots decide.
    expect(migrationTarget(hosts, 'a')?.id).toBe('c');
    expect(migrationTarget(hosts, 'a', { ...parent, moduleDigest: 'sha256:v2' })?.id).toBe('c');
    expect(migrationTarget(hosts, 'b', parent)?.id).toBe('a');
  });
  it('migration - a service has its own parent only with an init input', () => {
    expect(serviceParent({ tenant: 't' }, 'sha256:m')).toBeUndefined();
    expect(serviceParent({ tenant: 't', init: new Uint8Array() }, 'sha256:m')).toBeUndefined();
    const data = { store: 's', name: 'n', digest: 'sha256:d', bytes: 3 };
    expect(serviceParent({ tenant: 't', initData: data }, 'sha256:m')).toEqual({ tenant: 't', moduleDigest: 'sha256:m', initDigest: 'sha256:d' });
    expect(holdsParent(host('a', 1, 0), serviceParent({ tenant: 't', initData: data }, 'sha256:m'))).toBe(false);
    expect(holdsParent({ ...host('a', 1, 0), serviceParents: [{ tenant: 't', moduleDigest: 'sha256:m', initDigest: 'sha256:d' }] }, undefined)).toBe(false);
  });
  it('migration - none when no other host takes instances', () => {
    expect(migrationTarget([host('a', 8, 0), host('b', 8, 0, true)], 'a')).toBeUndefined();
  });
});
