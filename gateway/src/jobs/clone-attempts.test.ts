import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { CloneDetail, JobEventKind, StoredJob } from '@flurry/core';
import { CloneAttempts, lossBackoffMs, type AttemptsOwner } from './clone-attempts.js';
import type { JobStore } from './job-store.js';

function storedJob(details: CloneDetail[], doneEventsStored?: number[]): StoredJob {
  return {
    record: {
      id: 'job-1', tenant: 't', function: 'f', digest: 'd', clones: details.length, state: 'running', createdAt: 0, updatedAt: 0,
      counts: { done: 0, failed: 0, running: 0, pending: 0 }, clonesDetail: details, pagesFetched: 0,
    },
    doneEventsStored,
  };
}

/** A run that records what it emits; its store keeps no results (every result is already in the record). */
function owner(stored: StoredJob): AttemptsOwner & { emitted: { kind: JobEventKind; fields: Record<string, unknown> }[] } {
  const emitted: { kind: JobEventKind; fields: Record<string, unknown> }[] = [];
  const store = { finishedIndexes: async () => new Set<number>(), failedAttempts: async () => [] } as unknown as JobStore;
  return { stored, retries: 0, log: pino({ level: 'silent' }), store, over: () => false, emit: (kind, fields) => emitted.push({ kind, fields }), changed: () => undefined, wake: () => undefined, emitted };
}

const done = (index: number, host: string): CloneDetail => ({ index, state: 'done', host, attempts: 1, startMs: 5, runMs: 7, pages: { local: 1, multicast: 2, unicast: 3, zero: 0 } });

describe('clone attempts resumed', () => {
  it('a clone the record has done whose clone.done the stream never stored - is announced again, with what the record knows', async () => {
    const job = owner(storedJob([done(0, 'host-a'), done(1, 'host-b'), { index: 2, state: 'running', host: 'host-c', attempts: 1 }], [1]));
    await new CloneAttempts(job, new Map()).resume();
    expect(job.emitted).toEqual([{ kind: 'clone.done', fields: { index: 0, host: 'host-a', startMs: 5, runMs: 7, pages: { local: 1, multicast: 2, unicast: 3, zero: 0 } } }]);
    expect(job.stored.record.clonesDetail[2].state).toBe('pending');
  });

  it('every done clone already announced - nothing is announced again', async () => {
    const job = owner(storedJob([done(0, 'host-a'), done(1, 'host-b')], [1, 0]));
    await new CloneAttempts(job, new Map()).resume();
    expect(job.emitted).toEqual([]);
  });
});

describe('clone attempts lost to the platform', () => {
  it('backoff - a lost clone waits before it is forked again, longer each loss, and is failed only at the eighth, after 15.75 s of waits', () => {
    const job = owner(storedJob([{ index: 0, state: 'pending', attempts: 0 }]));
    const attempts = new CloneAttempts(job, new Map());
    expect(attempts.ready(0, Date.now())).toBe(true);
    const waits: number[] = [];
    for (let loss = 1; loss < 8; loss++) {
      const before = Date.now();
      attempts.platformLoss(0, 'host-a', 'the memory server of the parent did not answer');
      expect(job.stored.record.clonesDetail[0].state).toBe('pending');
      expect(attempts.ready(0, before)).toBe(false);
      waits.push(lossBackoffMs(loss));
      expect(attempts.ready(0, Date.now() + lossBackoffMs(loss))).toBe(true);
    }
    expect(waits).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
    attempts.platformLoss(0, 'host-a', 'the memory server of the parent did not answer');
    expect(job.stored.record.clonesDetail[0]).toMatchObject({ state: 'failed', error: { code: 'unavailable' } });
  });
});
