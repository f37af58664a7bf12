import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import type { StoredJob } from '@flurry/core';
import { JobRecordWriter, PROGRESS_EVERY_MS } from './job-record-writer.js';
import type { JobStore } from './job-store.js';

/** A writer over a store that keeps what it is given; the test moves the clock. */
function writer(writtenAt = 0) {
  const stored: StoredJob = {
    record: {
      id: 'job-1', tenant: 't', function: 'f', digest: 'd', clones: 1, state: 'running', createdAt: 0, updatedAt: 0,
      counts: { done: 0, failed: 0, running: 0, pending: 0 }, clonesDetail: [{ index: 0, state: 'running', attempts: 1 }], pagesFetched: 0,
    },
  };
  const written: StoredJob[] = [];
  const store = { put: async (s: StoredJob) => void written.push(s), fabric: { link: { connected: true } } } as unknown as JobStore;
  return { w: new JobRecordWriter(store, stored, pino({ level: 'silent' }), () => false, writtenAt), stored, written };
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

  it('a job made just now - its creation counts as a write: the first changes go in one write PERSIST_EVERY_MS later', async () => {
    const { w, stored, written } = writer(Date.now());
    stored.record.state = 'running';
    w.changed();
    w.soon();
    vi.advanceTimersByTime(100);
    stored.record.clonesDetail[0].host = 'host-1';
    w.changed();
    w.soon();
    await Promise.resolve();
    expect(written).toHaveLength(0);
    vi.advanceTimersByTime(160);
    w.soon();
    await vi.waitFor(() => expect(written).toHaveLength(1));
    expect(written[0].record.state).toBe('running');
    expect(written[0].record.clonesDetail[0].host).toBe('host-1');
  });

  it('a state that may not last - written once it has lasted PERSIST_EVERY_MS, never when a write takes it first', async () => {
    const { w, stored, written } = writer();
    await w.now();
    stored.record.state = 'reducing';
    w.writeIfLasting();
    vi.advanceTimersByTime(240);
    await Promise.resolve();
    expect(written).toHaveLength(1);
    vi.advanceTimersByTime(20);
    await vi.waitFor(() => expect(written).toHaveLength(2));
    expect(written[1].record.state).toBe('reducing');

    // Done within moments: the end's write is the only one, and nothing is written after it.
    stored.record.state = 'running';
    w.writeIfLasting();
    vi.advanceTimersByTime(10);
    stored.record.state = 'done';
    await w.now();
    vi.advanceTimersByTime(1000);
    await Promise.resolve();
    expect(written.map((s) => s.record.state)).toEqual(['running', 'reducing', 'done']);
  });
});
