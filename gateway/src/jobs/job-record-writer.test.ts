import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import type { StoredJob } from '@flurry/core';
import { JobRecordWriter, PROGRESS_EVERY_MS } from './job-record-writer.js';
import type { JobStore } from './job-store.js';

/** A writer over a store that keeps what it is given; the test moves the clock. */
function writer() {
  const stored: StoredJob = {
    record: {
      id: 'job-1', tenant: 't', function: 'f', digest: 'd', clones: 1, state: 'running', createdAt: 0, updatedAt: 0,
      counts: { done: 0, failed: 0, running: 0, pending: 0 }, clonesDetail: [{ index: 0, state: 'running', attempts: 1 }], pagesFetched: 0,
    },
  };
  const written: StoredJob[] = [];
  const store = { put: async (s: StoredJob) => void written.push(s), fabric: { link: { connected: true } } } as unknown as JobStore;
  return { w: new JobRecordWriter(store, stored, pino({ level: 'silent' }), () => false), stored, written };
}

describe('job record writer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it('progress - counts alone are written at most every PROGRESS_EVERY_MS, other changes sooner', async () => {
    const { w, stored, written } = writer();
    await w.now();
    expect(written).toHaveLength(1);
    stored.record.tasks = { total: 10, done: 1, running: 1, backups: 0, duplicates: 0, failures: 0 };
    w.progressed();
    vi.advanceTimersByTime(300);
    w.soon();
    vi.advanceTimersByTime(PROGRESS_EVERY_MS - 310);
    w.soon();
    await Promise.resolve();
    expect(written).toHaveLength(1);
    vi.advanceTimersByTime(20);
    w.soon();
    await vi.waitFor(() => expect(written).toHaveLength(2));
    expect(written[1].record.tasks?.done).toBe(1);
    // A change other than progress is written once the last write is 250 ms old.
    stored.record.clonesDetail[0].state = 'done';
    w.changed();
    vi.advanceTimersByTime(260);
    w.soon();
    await vi.waitFor(() => expect(written).toHaveLength(3));
    expect(written.at(-1)!.record.clonesDetail[0].state).toBe('done');
  });

  it('last - progress not yet written is written when the run ends', async () => {
    const { w, stored, written } = writer();
    await w.now();
    stored.record.tasks = { total: 10, done: 10, running: 0, backups: 0, duplicates: 0, failures: 0 };
    w.progressed();
    await w.last();
    expect(written.at(-1)!.record.tasks?.done).toBe(10);
  });
});
