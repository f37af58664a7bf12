import { describe, expect, it } from 'vitest';
import { FlurryError } from '@flurry/core';
import { MemoryBudget, NO_ROOM_RETRY_AFTER_S } from './memory-budget.js';

const MiB = 1024 * 1024;

/** A budget with idle holdings `ids` (each `size` bytes, idle since its index), recording evictions. */
function withIdle(budgetBytes: number, ids: string[], size: number) {
  const budget = new MemoryBudget(budgetBytes);
  const evicted: string[] = [];
  ids.forEach((id, i) => {
    budget.track(id, { kind: 'snapshot', bytes: () => size });
    budget.evictable(id, { idleSince: () => 1000 + i, evict: () => evicted.push(id) });
  });
  return { budget, evicted };
}

describe('memory budget', () => {
  it('admission - fits without evicting anything', () => {
    const { budget, evicted } = withIdle(10 * MiB, ['a', 'b'], 2 * MiB);
    const admitted = budget.admit(6 * MiB, 'x');
    expect(evicted).toEqual([]);
    expect(budget.usedBytes).toBe(10 * MiB);
    admitted.done();
    admitted.done();
    expect(budget.usedBytes).toBe(4 * MiB);
  });

  it('eviction - least recently used idle holdings go first, only as many as needed', () => {
    const { budget, evicted } = withIdle(10 * MiB, ['old', 'mid', 'new'], 3 * MiB);
    budget.admit(4 * MiB, 'x');
    // 9 MiB held + 4 needed: freeing 3 (the oldest) is enough.
    expect(evicted).toEqual(['old']);
    expect(budget.usedBytes).toBe(10 * MiB);
  });

  it('eviction - busy holdings stay; a holding busy again is skipped', () => {
    const budget = new MemoryBudget(10 * MiB);
    const evicted: string[] = [];
    let busyIdle: number | undefined;
    budget.track('busy', { kind: 'service instance', bytes: () => 4 * MiB });
    budget.track('was-idle', { kind: 'page cache', bytes: () => 4 * MiB });
    budget.evictable('was-idle', { idleSince: () => busyIdle, evict: () => evicted.push('was-idle') });
    expect(() => budget.admit(4 * MiB, 'x')).toThrow(FlurryError);
    expect(evicted).toEqual([]);
    busyIdle = 5;
    budget.admit(4 * MiB, 'x').done();
    expect(evicted).toEqual(['was-idle']);
  });

  it('refusal - no_capacity with a retry hint, and nothing evicted when evicting could not make room', () => {
    const { budget, evicted } = withIdle(10 * MiB, ['a'], 2 * MiB);
    budget.track('instance', { kind: 'service instance', bytes: () => 6 * MiB });
    let err: unknown;
    try {
      budget.admit(5 * MiB, 'service instance of t/s');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlurryError);
    expect((err as FlurryError).code).toBe('no_capacity');
    expect((err as FlurryError).retryAfterSeconds).toBe(NO_ROOM_RETRY_AFTER_S);
    expect((err as FlurryError).message).toContain('service instance of t/s');
    expect(evicted).toEqual([]);
    expect(budget.usedBytes).toBe(8 * MiB);
  });

  it('admissions under way count: two placements racing cannot both take the last room', () => {
    const budget = new MemoryBudget(10 * MiB);
    const first = budget.admit(6 * MiB, 'first');
    expect(() => budget.admit(6 * MiB, 'second')).toThrow(/budget is full/);
    first.done();
    budget.admit(6 * MiB, 'second');
  });

  it('accounting - holdings are read as they are now (a page cache filling, an instance growing)', () => {
    const budget = new MemoryBudget(100 * MiB);
    let held = 0;
    budget.track('cache', { kind: 'page cache', bytes: () => held });
    expect(budget.use()).toEqual({ budgetBytes: 100 * MiB, usedBytes: 0 });
    held = 7 * MiB;
    expect(budget.usedBytes).toBe(7 * MiB);
    budget.untrack('cache');
    budget.untrack('unknown');
    expect(budget.usedBytes).toBe(0);
  });

  it('a budget must be positive', () => {
    expect(() => new MemoryBudget(0)).toThrow(RangeError);
  });
});
