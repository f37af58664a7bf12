/** Instance-thread placement and the default limit, as pure functions (no threads). */
import { describe, expect, it } from 'vitest';
import { FlurryError } from '@flurry/core';
import { chooseInstanceThread, defaultInstanceThreads, INSTANCE_THREAD_OVERHEAD_BYTES, INSTANCES_PER_THREAD, NO_INSTANCE_THREAD_RETRY_AFTER_S } from './instance-threads.js';

const GiB = 1024 ** 3;
const thread = (tenant: string, load: number) => ({ tenant, load });

describe('chooseInstanceThread', () => {
  it('placement - the tenant\'s thread with the fewest instances while one has room', () => {
    const threads = [thread('a', 3), thread('b', 0), thread('a', 1), thread('a', INSTANCES_PER_THREAD)];
    expect(chooseInstanceThread(threads, 'a', 8)).toBe(threads[2]);
  });

  it('placement - never another tenant\'s thread, however empty: a new thread instead', () => {
    expect(chooseInstanceThread([thread('b', 0), thread('c', 1)], 'a', 8)).toBe('new');
    expect(chooseInstanceThread([], 'a', 1)).toBe('new');
  });

  it(`placement - a tenant whose threads hold ${INSTANCES_PER_THREAD} each gets a new one`, () => {
    expect(chooseInstanceThread([thread('a', INSTANCES_PER_THREAD), thread('a', INSTANCES_PER_THREAD)], 'a', 8)).toBe('new');
    expect(chooseInstanceThread([thread('a', 1)], 'a', 8, 1)).toBe('new');
  });

  it('limit - no_capacity with a retry hint when a new thread would pass the host\'s limit; room on the tenant\'s own thread still counts', () => {
    const full = [thread('a', 2), thread('b', INSTANCES_PER_THREAD)];
    expect(chooseInstanceThread(full, 'a', 2)).toBe(full[0]);
    for (const tenant of ['b', 'c']) {
      let err: unknown;
      try {
        chooseInstanceThread(full, tenant, 2);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FlurryError);
      expect(err).toMatchObject({ code: 'no_capacity', retryAfterSeconds: NO_INSTANCE_THREAD_RETRY_AFTER_S });
    }
    // A host configured for no instance threads takes no instance.
    expect(() => chooseInstanceThread([], 'a', 0)).toThrow(/FLURRY_INSTANCE_THREADS/);
  });
});

describe('defaultInstanceThreads', () => {
  it('default - a quarter of what the budget leaves of the machine, at the overhead of one thread each', () => {
    expect(defaultInstanceThreads(16 * GiB, 8 * GiB)).toBe((2 * GiB) / INSTANCE_THREAD_OVERHEAD_BYTES);
    expect(defaultInstanceThreads(24 * GiB, 12 * GiB)).toBe(Math.floor((3 * GiB) / INSTANCE_THREAD_OVERHEAD_BYTES));
  });

  it('default - at least 2 (a budget as large as the machine), at most 256', () => {
    expect(defaultInstanceThreads(4 * GiB, 4 * GiB)).toBe(2);
    expect(defaultInstanceThreads(4 * GiB, 8 * GiB)).toBe(2);
    expect(defaultInstanceThreads(1024 * GiB, 512 * GiB)).toBe(256);
  });
});
