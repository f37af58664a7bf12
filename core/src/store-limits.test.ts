import { describe, expect, it } from 'vitest';
import { JetStreamApiError } from '@nats-io/jetstream';
import { DEFAULT_STORE_MAX_BYTES, isStorageFull, parseStoreLimits } from './store-limits.js';
import { Buckets, ControllerBuckets, FailuresStream, JobBuckets, JobEventsStream, JobObjects, JobOutputObjects, ObjectStores, ResultsStream, ServiceBuckets } from './protocol.js';
import { FlurryError } from './errors.js';

describe('store limits - the table', () => {
  it('names every bucket, object store and stream of the protocol, each with a positive limit', () => {
    const names = [...Object.values(Buckets), ...Object.values(ObjectStores), ...Object.values(JobBuckets), JobObjects, JobOutputObjects, ResultsStream, FailuresStream, JobEventsStream, ...Object.values(ServiceBuckets), ...Object.values(ControllerBuckets)];
    expect(Object.keys(DEFAULT_STORE_MAX_BYTES).sort()).toEqual([...names].sort());
    for (const v of Object.values(DEFAULT_STORE_MAX_BYTES)) expect(v).toBeGreaterThan(0);
  });

  it('FLURRY_STORE_MAX_BYTES overrides named entries and keeps the rest', () => {
    const limits = parseStoreLimits('flurry_jobs=4GiB, FLURRY_RESULTS=512MiB');
    expect(limits.flurry_jobs).toBe(4 * 1024 ** 3);
    expect(limits.FLURRY_RESULTS).toBe(512 * 1024 ** 2);
    expect(limits.flurry_modules).toBe(DEFAULT_STORE_MAX_BYTES.flurry_modules);
  });

  it('stops on an unknown store, a bad size or a size below 1 MiB', () => {
    expect(() => parseStoreLimits('flurry_nope=1GiB')).toThrow(/flurry_nope.*one of/);
    expect(() => parseStoreLimits('flurry_jobs')).toThrow(/<store>=<size>/);
    expect(() => parseStoreLimits('flurry_jobs=lots')).toThrow(/size/);
    expect(() => parseStoreLimits('flurry_jobs=1000')).toThrow(/at least/);
    expect(() => parseStoreLimits('__proto__=1GiB')).toThrow(/one of/);
  });
});

describe('store limits - isStorageFull', () => {
  it('knows a full stream and a server out of storage, also as a cause; not a per-subject refusal or other errors', () => {
    const full = new JetStreamApiError({ err_code: 10077, code: 400, description: 'maximum bytes exceeded' });
    expect(isStorageFull(full)).toBe(true);
    expect(isStorageFull(new JetStreamApiError({ err_code: 10047, code: 500, description: 'insufficient storage resources available' }))).toBe(true);
    expect(isStorageFull(new FlurryError('unavailable', 'could not store', { cause: full }))).toBe(true);
    expect(isStorageFull(new JetStreamApiError({ err_code: 10077, code: 400, description: 'maximum messages per subject exceeded' }))).toBe(false);
    expect(isStorageFull(new Error('timeout'))).toBe(false);
    expect(isStorageFull('maximum bytes exceeded')).toBe(false);
  });
});
