/**
 * Byte limits of the fleet's JetStream buckets, object stores and streams:
 * one table with its defaults, the override (FLURRY_STORE_MAX_BYTES), and the
 * helpers that open a store with its limit, on a new store and on one that
 * already exists.
 *
 * JetStream reserves every stream's max_bytes against the server's storage
 * (max_file_store, by default 75% of the disk that is free when the server
 * starts): the table's sum, plus one data store per tenant (the data quota),
 * must fit in it, or opening a store fails with "insufficient storage
 * resources available".
 *
 * A full store refuses writes with "maximum bytes exceeded" (KV buckets, object
 * stores, the results and failures streams discard new messages); the job
 * events stream drops its oldest events instead. isStorageFull tells such a
 * refusal apart, so that the gateway answers 507 `storage_full`, not 500.
 *
 *   const jobs = await openBucket(fabric, JobBuckets.jobs, { history: 1 });
 */
import { jetstream, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { ConfigError, parseSize } from './config.js';
// fabric.ts opens its own stores with these helpers; the cycle holds functions only.
import { createShared } from './fabric.js';
import { Buckets, ControllerBuckets, FailuresStream, JobBuckets, JobEventsStream, JobObjects, JobOutputObjects, ObjectStores, ResultsStream, ServiceBuckets } from './protocol.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * Default max_bytes of every store the fleet creates, about 13 GiB in all:
 * records and leases are small; modules, job data and results hold what
 * tenants send and get back.
 */
export const DEFAULT_STORE_MAX_BYTES = {
  [Buckets.hosts]: 16 * MiB,
  [Buckets.functions]: 64 * MiB,
  [ObjectStores.modules]: 4 * GiB,
  [JobBuckets.jobs]: 1 * GiB,
  [JobBuckets.jobKeys]: 64 * MiB,
  [JobBuckets.lease]: 1 * MiB,
  [JobObjects]: 4 * GiB,
  [JobOutputObjects]: 2 * GiB,
  [ResultsStream]: 2 * GiB,
  [FailuresStream]: 256 * MiB,
  [JobEventsStream]: 1 * GiB,
  [ServiceBuckets.services]: 64 * MiB,
  [ServiceBuckets.instances]: 64 * MiB,
  [ControllerBuckets.lease]: 1 * MiB,
  [ControllerBuckets.journal]: 16 * MiB,
} as const;

export type StoreName = keyof typeof DEFAULT_STORE_MAX_BYTES;
export type StoreLimits = Record<StoreName, number>;

/** The smallest limit accepted: a store must hold at least one of its largest messages. */
const MIN_STORE_BYTES = 1 * MiB;

/**
 * The table with `FLURRY_STORE_MAX_BYTES` applied: `name=size` pairs,
 * comma-separated, such as `flurry_jobs=4GiB,FLURRY_RESULTS=8GiB`.
 */
export function parseStoreLimits(value: string | undefined, variable = 'FLURRY_STORE_MAX_BYTES'): StoreLimits {
  const limits: StoreLimits = { ...DEFAULT_STORE_MAX_BYTES };
  for (const item of (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    const name = item.slice(0, eq).trim();
    if (eq < 0 || !Object.hasOwn(limits, name)) {
      throw new ConfigError(`${variable}: "${item}" must be <store>=<size>, the store one of ${Object.keys(limits).join(', ')}`);
    }
    const bytes = parseSize(`${variable} (${name})`, item.slice(eq + 1));
    if (bytes < MIN_STORE_BYTES) throw new ConfigError(`${variable}: ${name} must be at least ${MIN_STORE_BYTES} bytes, got ${bytes}`);
    limits[name as StoreName] = bytes;
  }
  return limits;
}

/** What opening a store needs: the connection, the manager, the limits and somewhere to say a limit could not be applied. */
export interface StoreContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  storeLimits: StoreLimits;
  warn(fields: object, message: string): void;
}

/**
 * Opens (or creates) a KV bucket of the table with its byte limit.
 *
 *   const keys = await openBucket(fabric, JobBuckets.jobKeys, { history: 1, ttl: KEEP_MS });
 */
export async function openBucket(ctx: StoreContext, name: StoreName, opts: Partial<Omit<KvOptions, 'max_bytes'>>): Promise<KV> {
  const maxBytes = ctx.storeLimits[name];
  const kv = await createShared(() => new Kvm(jetstream(ctx.nc)).create(name, { ...opts, max_bytes: maxBytes }));
  await limitStream(ctx, `KV_${name}`, maxBytes);
  return kv;
}

/** Opens (or creates) an object store with a byte limit: one of the table, or a tenant's data store (its quota). */
export async function openObjectStore(ctx: StoreContext, name: string, maxBytes: number): Promise<ObjectStore> {
  const store = await createShared(() => new Objm(jetstream(ctx.nc)).create(name, { max_bytes: maxBytes }));
  await limitStream(ctx, `OBJ_${name}`, maxBytes);
  return store;
}

/** Creates a stream of the table unless it exists, with its byte limit either way. */
export async function openStream(ctx: StoreContext, config: Partial<StreamConfig> & { name: StoreName }): Promise<void> {
  const maxBytes = ctx.storeLimits[config.name];
  try {
    await ctx.jsm.streams.info(config.name);
  } catch {
    await ctx.jsm.streams.add({ ...config, max_bytes: maxBytes }).catch(async (err: unknown) => {
      // Another process made it first.
      await ctx.jsm.streams.info(config.name).catch(() => { throw err; });
    });
  }
  await limitStream(ctx, config.name, maxBytes);
}

/**
 * Gives an existing stream the configured max_bytes. Never lowers it below
 * what the stream holds: JetStream meets a lowered limit by deleting the
 * oldest messages, even from a bucket that discards new ones (job records,
 * modules). Such a stream keeps its limit and a warning says so; so does one
 * the server refuses (its storage cannot reserve the new size).
 */
export async function limitStream(ctx: StoreContext, stream: string, maxBytes: number): Promise<void> {
  try {
    const info = await ctx.jsm.streams.info(stream);
    if (info.config.max_bytes === maxBytes) return;
    if (info.state.bytes > maxBytes) {
      ctx.warn({ stream, bytes: info.state.bytes, maxBytes, kept: info.config.max_bytes }, 'a store holds more than its configured limit: its limit is left as it was (lowering it would delete data)');
      return;
    }
    await ctx.jsm.streams.update(stream, { ...info.config, max_bytes: maxBytes });
  } catch (err) {
    ctx.warn({ stream, maxBytes, err: (err as Error).message }, 'the byte limit of a store could not be applied');
  }
}

/**
 * Whether an error is a store refusing a write because it is full (its
 * max_bytes, or the server's storage), anywhere in its cause chain.
 */
export function isStorageFull(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/maximum bytes exceeded|insufficient storage resources|insufficient resources/i.test(e.message)) return true;
  }
  return false;
}
