import { describe, expect, it } from 'vitest';
import { EnvReader, FlurryError } from '@flurry/core';
import { ConcurrentCalls } from './concurrent-calls.js';
import { RequestRate } from './request-rate.js';
import { JobTally } from './running-jobs.js';
import { checkServiceInstances } from './service-instances.js';
import { dataRoom, dataStoreMaxBytes } from './data-bytes.js';
import { DEFAULT_TENANT_QUOTAS, loadTenantQuotas } from './tenant-quotas.js';

function refusal(fn: () => void): FlurryError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlurryError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('RequestRate - a token bucket per tenant', () => {
  it('lets a burst through at once, then refuses with the seconds until a token is back', () => {
    const rate = new RequestRate(2, 3);
    for (let i = 0; i < 3; i++) expect(rate.take('a', 0)).toBe(0);
    expect(rate.take('a', 0)).toBe(1);
    // Another tenant has its own bucket.
    expect(rate.take('b', 0)).toBe(0);
  });

  it('refills at its rate, never above the burst', () => {
    const rate = new RequestRate(10, 5);
    for (let i = 0; i < 5; i++) rate.take('a', 0);
    expect(rate.take('a', 0)).toBe(1);
    expect(rate.take('a', 100)).toBe(0); // 100 ms at 10/s: one token
    expect(rate.take('a', 100)).toBe(1);
    let taken = 0;
    while (rate.take('a', 60_000) === 0) taken++;
    expect(taken).toBe(5);
  });

  it('a slow rate answers a Retry-After of whole seconds', () => {
    const rate = new RequestRate(0.25, 1);
    expect(rate.take('a', 0)).toBe(0);
    expect(rate.take('a', 0)).toBe(4);
  });

  it('rate 0 limits nothing', () => {
    const rate = new RequestRate(0, 1);
    for (let i = 0; i < 1000; i++) expect(rate.take('a', 0)).toBe(0);
  });
});

describe('ConcurrentCalls - slots per tenant', () => {
  it('the 65th call of a tenant limited to 64 is refused; another tenant still gets slots; a release frees one', () => {
    const calls = new ConcurrentCalls(64);
    for (let i = 0; i < 64; i++) expect(calls.tryAcquire('a')).toBe(true);
    expect(calls.tryAcquire('a')).toBe(false);
    expect(calls.tryAcquire('b')).toBe(true);
    calls.release('a');
    expect(calls.inFlight('a')).toBe(63);
    expect(calls.tryAcquire('a')).toBe(true);
    expect(calls.tryAcquire('a')).toBe(false);
  });

  it('a release without a slot taken never makes room for more than the limit', () => {
    const calls = new ConcurrentCalls(2);
    calls.release('a');
    expect(calls.tryAcquire('a')).toBe(true);
    expect(calls.tryAcquire('a')).toBe(true);
    expect(calls.tryAcquire('a')).toBe(false);
    expect(calls.inFlight('a')).toBe(2);
  });

  it('limit 0 limits nothing', () => {
    const calls = new ConcurrentCalls(0);
    for (let i = 0; i < 1000; i++) expect(calls.tryAcquire('a')).toBe(true);
  });
});

describe('JobTally - running jobs and clones from job records', () => {
  const quota = { runningJobs: 2, runningClones: 10 };

  it('counts a job until its record is terminal or deleted, once however often it is written', () => {
    const t = new JobTally();
    t.apply('a.j1', { tenant: 'a', clones: 4, state: 'queued' });
    t.apply('a.j1', { tenant: 'a', clones: 4, state: 'running' });
    t.apply('a.j2', { tenant: 'a', clones: 3, state: 'running' });
    expect(t.of('a')).toEqual({ jobs: 2, clones: 7 });
    t.apply('a.j1', { tenant: 'a', clones: 4, state: 'done' });
    expect(t.of('a')).toEqual({ jobs: 1, clones: 3 });
    t.apply('a.j1', { tenant: 'a', clones: 4, state: 'done' });
    t.apply('a.j2', undefined);
    expect(t.of('a')).toEqual({ jobs: 0, clones: 0 });
  });

  it('refuses the job past the jobs quota with 429 rate_limited and Retry-After; another tenant is not affected', () => {
    const t = new JobTally();
    t.apply('a.j1', { tenant: 'a', clones: 1, state: 'running' });
    t.apply('a.j2', { tenant: 'a', clones: 1, state: 'running' });
    const err = refusal(() => t.admit('a', 1, quota));
    expect(err.code).toBe('rate_limited');
    expect(err.retryAfterSeconds).toBeGreaterThan(0);
    expect(err.message).toMatch(/FLURRY_QUOTA_RUNNING_JOBS/);
    expect(() => t.admit('b', 1, quota)).not.toThrow();
    t.apply('a.j1', { tenant: 'a', clones: 1, state: 'failed' });
    expect(() => t.admit('a', 1, quota)).not.toThrow();
  });

  it('refuses a job whose clones would pass the clones quota', () => {
    const t = new JobTally();
    t.apply('a.j1', { tenant: 'a', clones: 6, state: 'running' });
    expect(() => t.admit('a', 4, quota)).not.toThrow();
    expect(refusal(() => t.admit('a', 5, quota)).message).toMatch(/FLURRY_QUOTA_RUNNING_CLONES/);
    expect(refusal(() => new JobTally().admit('a', 11, quota)).code).toBe('rate_limited');
  });

  it('0 limits nothing', () => {
    const t = new JobTally();
    for (let i = 0; i < 100; i++) t.apply(`a.j${i}`, { tenant: 'a', clones: 1024, state: 'running' });
    expect(() => t.admit('a', 1024, { runningJobs: 0, runningClones: 0 })).not.toThrow();
  });
});

describe('checkServiceInstances - the sum of a tenant\'s service max', () => {
  it('refuses a service that would take the sum past the quota with quota_exceeded', () => {
    const err = refusal(() => checkServiceInstances(64, [{ name: 'a', max: 60 }], 'b', 8));
    expect(err.code).toBe('quota_exceeded');
    expect(err.message).toMatch(/FLURRY_QUOTA_SERVICE_INSTANCES/);
    expect(() => checkServiceInstances(64, [{ name: 'a', max: 60 }], 'b', 4)).not.toThrow();
  });

  it('a service being changed counts with its new max, not its old one', () => {
    expect(() => checkServiceInstances(10, [{ name: 'a', max: 8 }, { name: 'b', max: 2 }], 'a', 8)).not.toThrow();
    expect(() => checkServiceInstances(10, [{ name: 'a', max: 8 }, { name: 'b', max: 2 }], 'a', 9)).toThrow(FlurryError);
  });

  it('quota 0 limits nothing', () => {
    expect(() => checkServiceInstances(0, [{ name: 'a', max: 64 }], 'b', 64)).not.toThrow();
  });
});

describe('data bytes', () => {
  it('room is what the quota leaves, never negative; a store may hold a little more than the quota for chunk headers', () => {
    expect(dataRoom(1000, 400)).toBe(600);
    expect(dataRoom(1000, 1400)).toBe(0);
    expect(dataRoom(0, 1400)).toBe(Infinity);
    expect(dataStoreMaxBytes(1024 ** 3)).toBe(1024 ** 3 + 1024 ** 3 / 64);
    expect(dataStoreMaxBytes(0)).toBe(-1);
  });
});

describe('loadTenantQuotas', () => {
  it('has the documented defaults', () => {
    expect(loadTenantQuotas(new EnvReader({}))).toEqual(DEFAULT_TENANT_QUOTAS);
  });

  it('reads every variable; a burst follows a raised rate', () => {
    const q = loadTenantQuotas(new EnvReader({
      FLURRY_QUOTA_CONCURRENT_CALLS: '8', FLURRY_QUOTA_REQUESTS_PER_S: '50000', FLURRY_QUOTA_RUNNING_JOBS: '3',
      FLURRY_QUOTA_RUNNING_CLONES: '30', FLURRY_QUOTA_SERVICE_INSTANCES: '4', FLURRY_QUOTA_DATA_BYTES: '1MiB',
    }));
    expect(q).toEqual({ concurrentCalls: 8, requestsPerSecond: 50_000, requestBurst: 100_000, runningJobs: 3, runningClones: 30, serviceInstances: 4, dataBytes: 1024 * 1024 });
  });

  it('stops on a bad value, naming the variable', () => {
    expect(() => loadTenantQuotas(new EnvReader({ FLURRY_QUOTA_CONCURRENT_CALLS: '-1' }))).toThrow(/FLURRY_QUOTA_CONCURRENT_CALLS/);
    expect(() => loadTenantQuotas(new EnvReader({ FLURRY_QUOTA_DATA_BYTES: 'lots' }))).toThrow(/FLURRY_QUOTA_DATA_BYTES/);
  });
});
