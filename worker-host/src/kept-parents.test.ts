// The kept-parent policy: holders, idle expiry and the idle cache cap (least
// recently used first). The clock is vitest's fake one: the policy is about
// order and thresholds, not about how fast anything runs.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ParentKeeper } from './kept-parents.js';

const MiB = 1024 * 1024;
const parent = (n: number, memoryBytes = 16 * MiB) => ({
  tenant: 'default', moduleDigest: 'm'.repeat(64), initDigest: `sha256:${n}`, function: 'pattern', snapshotId: `snap-${n}`, memoryBytes,
});

describe('kept parents', () => {
  let freed: string[];
  const keeper = (idleMs = 10_000, cacheBytes = 64 * MiB) => new ParentKeeper({ idleMs, cacheBytes, free: (id) => freed.push(id) });

  beforeEach(() => {
    vi.useFakeTimers();
    freed = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('kept parents - found by key, idle only once every holder released, freed after the idle time', () => {
    const k = keeper();
    k.add(parent(1), 'job-a');
    expect(k.find(parent(1))).toBe('snap-1');
    expect(k.find(parent(2))).toBeUndefined();
    k.hold('snap-1', 'job-b');
    k.release('snap-1', 'job-a');
    k.release('snap-1', 'job-a'); // twice: still held by job-b
    expect(k.list()).toEqual([expect.objectContaining({ snapshotId: 'snap-1', holders: 1 })]);
    vi.advanceTimersByTime(60_000);
    expect(freed).toEqual([]);
    k.release('snap-1', 'job-b');
    expect(k.list()[0]).toMatchObject({ holders: 0, idleSince: expect.any(Number) });
    vi.advanceTimersByTime(9_999);
    expect(freed).toEqual([]);
    // Used again before it expired: held, and the idle clock starts over at its next release.
    k.hold('snap-1', 'job-c');
    vi.advanceTimersByTime(60_000);
    expect(freed).toEqual([]);
    k.release('snap-1', 'job-c');
    vi.advanceTimersByTime(10_000);
    expect(freed).toEqual(['snap-1']);
    expect(k.find(parent(1))).toBeUndefined();
    expect(k.list()).toEqual([]);
  });

  it('kept parents - idle parents over the cache size go least recently used first; held ones never count', () => {
    const k = keeper(600_000, 40 * MiB);
    for (const n of [1, 2, 3]) k.add(parent(n), `job-${n}`);
    k.add(parent(4, 100 * MiB), 'job-4');
    k.release('snap-2', 'job-2');
    vi.advanceTimersByTime(1);
    k.release('snap-1', 'job-1');
    vi.advanceTimersByTime(1);
    expect(freed).toEqual([]); // 32 MiB idle
    k.release('snap-3', 'job-3'); // 48 MiB idle: the least recently used (2) goes
    expect(freed).toEqual(['snap-2']);
    k.release('snap-4', 'job-4'); // larger than the whole cache: 1 and 3 go, then 4 itself
    expect(freed).toEqual(['snap-2', 'snap-1', 'snap-3', 'snap-4']);
    expect(k.list()).toEqual([]);
  });

  it('kept parents - a cache size of 0 keeps nothing idle; forget drops a parent without freeing it twice', () => {
    const k = keeper(600_000, 0);
    k.add(parent(1), 'job-1');
    k.release('snap-1', 'job-1');
    expect(freed).toEqual(['snap-1']);
    k.add(parent(2), 'job-2');
    k.forget('snap-2');
    k.release('snap-2', 'job-2');
    vi.advanceTimersByTime(600_000);
    expect(freed).toEqual(['snap-1']);
  });
});
