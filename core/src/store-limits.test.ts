import { describe, expect, it } from 'vitest';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import { DEFAULT_STORE_MAX_BYTES, fitStream, isStorageFull, parseStoreLimits, readJsReplicas, replicasRefused, type StoreContext } from './store-limits.js';
import { ConfigError, EnvReader } from './config.js';
import { Buckets, ControllerBuckets, FailuresStream, GuestLogsStream, JobBuckets, JobEventsStream, JobObjects, JobOutputObjects, ObjectStores, ResultsStream, ServiceBuckets } from './protocol.js';
import { FlurryError } from './errors.js';
import { openKv, openStreamOf } from './fabric.js';

describe('store limits - the table', () => {
  it('a bucket whose entries expire must be given their ttl, and no other may be', async () => {
    const { ctx } = fakeContext(1);
    await expect(openKv(ctx, 'jobLease')).rejects.toThrow(/flurry_job_lease: its entries expire/);
    await expect(openKv(ctx, 'jobs', { ttlMs: 1000 })).rejects.toThrow(/flurry_jobs: has no ttl/);
  });

  it('names every bucket, object store and stream of the protocol, each with a positive limit', () => {
    const names = [...Object.values(Buckets), ...Object.values(ObjectStores), ...Object.values(JobBuckets), JobObjects, JobOutputObjects, ResultsStream, FailuresStream, JobEventsStream, GuestLogsStream, ...Object.values(ServiceBuckets), ...Object.values(ControllerBuckets)];
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

/** A StoreContext over a JetStream manager that keeps streams in a map; `refuse` makes updates fail with that message. */
function fakeContext(replicas: number, streams = new Map<string, StreamInfo>(), refuse?: string) {
  const warnings: string[] = [];
  const calls: string[] = [];
  const info = (config: Partial<StreamConfig>, bytes = 0) => ({ config, state: { bytes } }) as unknown as StreamInfo;
  const jsm = {
    streams: {
      async info(name: string) {
        const si = streams.get(name);
        if (!si) throw new Error('stream not found');
        return si;
      },
      async add(config: Partial<StreamConfig>) {
        calls.push(`add ${config.name} R${config.num_replicas}`);
        streams.set(config.name!, info(config));
        return streams.get(config.name!);
      },
      async update(name: string, config: Partial<StreamConfig>) {
        calls.push(`update ${name} R${config.num_replicas}`);
        if (refuse) throw new JetStreamApiError({ err_code: 10005, code: 400, description: refuse });
        streams.set(name, info(config, streams.get(name)!.state.bytes));
        return streams.get(name);
      },
    },
  } as unknown as JetStreamManager;
  const ctx: StoreContext = { nc: undefined as never, jsm, storeLimits: { ...DEFAULT_STORE_MAX_BYTES }, replicas, warn: (_f, m) => void warnings.push(m) };
  return { ctx, streams, warnings, calls, info };
}

describe('store replicas - FLURRY_JS_REPLICAS', () => {
  it('is 1 by default, 1 to 5, and a bad value names the variable', () => {
    expect(readJsReplicas(new EnvReader({}))).toBe(1);
    expect(readJsReplicas(new EnvReader({ FLURRY_JS_REPLICAS: '3' }))).toBe(3);
    expect(() => readJsReplicas(new EnvReader({ FLURRY_JS_REPLICAS: '6' }))).toThrow(/FLURRY_JS_REPLICAS must be at most 5/);
    expect(() => readJsReplicas(new EnvReader({ FLURRY_JS_REPLICAS: '0' }))).toThrow(/FLURRY_JS_REPLICAS must be at least 1/);
  });

  it('a new stream is made with the replica count and its byte limit', async () => {
    const { ctx, streams, calls } = fakeContext(3);
    await openStreamOf(ctx, 'results');
    expect(calls).toEqual(['add FLURRY_RESULTS R3']);
    expect(streams.get(ResultsStream)!.config).toMatchObject({ num_replicas: 3, max_bytes: DEFAULT_STORE_MAX_BYTES[ResultsStream], max_msgs_per_subject: 1, discard_new_per_subject: true });
  });

  it('an existing stream with another replica count is updated to it, keeping its other settings', async () => {
    const { ctx, streams, calls, info } = fakeContext(3);
    streams.set('KV_flurry_jobs', info({ name: 'KV_flurry_jobs', num_replicas: 1, max_bytes: DEFAULT_STORE_MAX_BYTES.flurry_jobs, max_msgs_per_subject: 1 }));
    await fitStream(ctx, 'KV_flurry_jobs', DEFAULT_STORE_MAX_BYTES.flurry_jobs);
    expect(calls).toEqual(['update KV_flurry_jobs R3']);
    expect(streams.get('KV_flurry_jobs')!.config).toMatchObject({ num_replicas: 3, max_msgs_per_subject: 1 });
    await fitStream(ctx, 'KV_flurry_jobs', DEFAULT_STORE_MAX_BYTES.flurry_jobs);
    expect(calls).toHaveLength(1);
  });

  it('a replica count the cluster cannot place leaves the stream as it was, with a warning that names the variable', async () => {
    const { ctx, streams, warnings, info } = fakeContext(5, new Map(), 'no suitable peers for placement');
    streams.set('KV_flurry_jobs', info({ name: 'KV_flurry_jobs', num_replicas: 3, max_bytes: DEFAULT_STORE_MAX_BYTES.flurry_jobs }));
    await fitStream(ctx, 'KV_flurry_jobs', DEFAULT_STORE_MAX_BYTES.flurry_jobs);
    expect(streams.get('KV_flurry_jobs')!.config.num_replicas).toBe(3);
    expect(warnings).toEqual([expect.stringMatching(/replica count of a store could not be applied/)]);
  });

  it('the server\'s refusals of a replica count become errors that say what to set; other errors stay as they are', () => {
    const alone = replicasRefused({ replicas: 3 }, 'KV_x', new JetStreamApiError({ err_code: 10074, code: 500, description: 'replicas > 1 not supported in non-clustered mode' }));
    expect(alone).toBeInstanceOf(ConfigError);
    expect((alone as Error).message).toMatch(/FLURRY_JS_REPLICAS=3.*runs alone.*FLURRY_JS_REPLICAS=1/);
    expect((replicasRefused({ replicas: 5 }, 'KV_x', new JetStreamApiError({ err_code: 10005, code: 400, description: 'no suitable peers for placement' })) as Error).message).toMatch(/fewer than 5 nodes/);
    const other = new Error('timeout');
    expect(replicasRefused({ replicas: 3 }, 'KV_x', other)).toBe(other);
  });
});
