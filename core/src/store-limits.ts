/**
 * Byte limits and replica count of the fleet's JetStream buckets, object
 * stores and streams: the limits' override (FLURRY_STORE_MAX_BYTES) of the
 * defaults in store-table.ts, the replica count (FLURRY_JS_REPLICAS: 1 on a
 * single nats-server, 3 on a cluster), and the creation of a store with
 * both, on a new store and on one that already exists.
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
 * The stores themselves are declared in store-table.ts and opened through
 * fabric.ts (`openKv(fabric, 'jobs')`).
 */
import { jetstream, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { ConfigError, parseSize, type EnvReader } from './config.js';
import { retryJetStream } from './jetstream-retry.js';
import { FabricStores, type StoreName } from './store-table.js';

const MiB = 1024 ** 2;

/** Default max_bytes of every store of the table, by name. */
export const DEFAULT_STORE_MAX_BYTES = Object.fromEntries(Object.values(FabricStores).map((s) => [s.name, s.maxBytes])) as Record<StoreName, number>;

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

/** Most copies of a store: JetStream's own limit (a stream's replicas are 1 to 5). */
export const MAX_JS_REPLICAS = 5;

/** FLURRY_JS_REPLICAS: how many copies of each store the broker keeps (1, the default, on a single nats-server; 3 on a cluster). */
export function readJsReplicas(r: EnvReader): number {
  return r.int('FLURRY_JS_REPLICAS', 1, { min: 1, max: MAX_JS_REPLICAS });
}

/** What opening a store needs: the connection, the manager, the limits, the replica count and somewhere to say a setting could not be applied. */
export interface StoreContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  storeLimits: StoreLimits;
  /** Copies of every store Flurry creates (FLURRY_JS_REPLICAS). */
  replicas: number;
  warn(fields: object, message: string): void;
}

/**
 * Creates a bucket or stream that several processes create at start. The
 * clients look the stream up and add it when it is missing; two processes
 * doing that at once make one of them fail ("subjects overlap with an
 * existing stream", "stream name already in use"): it tries again, and then
 * finds the stream the other made.
 */
async function createShared<T>(create: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      const raced = /subjects overlap|already in use/i.test((err as Error).message ?? '');
      if (!raced || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80 * attempt));
    }
  }
}

/** Opens (or creates) a KV bucket with a byte limit and the replica count (fabric.ts opens the table's buckets with it). */
export async function createBucket(ctx: StoreContext, name: string, maxBytes: number, settings: Partial<Omit<KvOptions, 'max_bytes' | 'replicas'>>): Promise<KV> {
  const kv = await creating(ctx, `KV_${name}`, () => createShared(() => new Kvm(jetstream(ctx.nc)).create(name, { ...settings, max_bytes: maxBytes, replicas: ctx.replicas })));
  await fitStream(ctx, `KV_${name}`, maxBytes);
  return kv;
}

/** Opens (or creates) an object store with a byte limit and the replica count. */
export async function createObjectStore(ctx: StoreContext, name: string, maxBytes: number): Promise<ObjectStore> {
  const store = await creating(ctx, `OBJ_${name}`, () => createShared(() => new Objm(jetstream(ctx.nc)).create(name, { max_bytes: maxBytes, replicas: ctx.replicas })));
  await fitStream(ctx, `OBJ_${name}`, maxBytes);
  return store;
}

/** Creates a stream unless it exists, with its byte limit and the replica count either way. */
export async function createStream(ctx: StoreContext, config: Partial<StreamConfig> & { name: string }, maxBytes: number): Promise<void> {
  try {
    await ctx.jsm.streams.info(config.name);
  } catch {
    await creating(ctx, config.name, () => ctx.jsm.streams.add({ ...config, max_bytes: maxBytes, num_replicas: ctx.replicas })).catch(async (err: unknown) => {
      // Another process made it first.
      await ctx.jsm.streams.info(config.name).catch(() => { throw err; });
    });
  }
  await fitStream(ctx, config.name, maxBytes);
}

/**
 * Gives an existing stream the configured max_bytes and replica count, in one
 * update. Never lowers max_bytes below what the stream holds: JetStream meets
 * a lowered limit by deleting the oldest messages, even from a bucket that
 * discards new ones (job records, modules); such a stream keeps its limit and
 * a warning says so. A replica count changes without loss (JetStream copies
 * the stream to the new peers, or keeps the leader's copy when scaling
 * down). A change the server refuses (its storage cannot reserve the new
 * size, fewer nodes than replicas, a single server) leaves the stream as it
 * was, with a warning.
 */
export async function fitStream(ctx: StoreContext, stream: string, maxBytes: number): Promise<void> {
  try {
    const info = await ctx.jsm.streams.info(stream);
    const keepBytes = info.state.bytes > maxBytes && info.config.max_bytes !== maxBytes;
    if (keepBytes) {
      ctx.warn({ stream, bytes: info.state.bytes, maxBytes, kept: info.config.max_bytes }, 'a store holds more than its configured limit: its limit is left as it was (lowering it would delete data)');
    }
    const wanted = { max_bytes: keepBytes ? info.config.max_bytes : maxBytes, num_replicas: ctx.replicas };
    if (info.config.max_bytes === wanted.max_bytes && info.config.num_replicas === wanted.num_replicas) return;
    await ctx.jsm.streams.update(stream, { ...info.config, ...wanted }).catch((err: unknown) => {
      throw info.config.num_replicas === ctx.replicas ? err : replicasRefused(ctx, stream, err);
    });
  } catch (err) {
    ctx.warn({ stream, maxBytes, replicas: ctx.replicas, err: (err as Error).message }, 'the byte limit or replica count of a store could not be applied');
  }
}

/**
 * Runs a store's creation, again while JetStream does not answer (a cluster
 * forming, the stream's leader being elected); a refusal to place its
 * replicas becomes an error that says what to change.
 */
async function creating<T>(ctx: StoreContext, stream: string, create: () => Promise<T>): Promise<T> {
  try {
    return await retryJetStream(`opening stream ${stream}`, create);
  } catch (err) {
    throw replicasRefused(ctx, stream, err);
  }
}

/**
 * JetStream's refusals of a replica count (a single server; a cluster with
 * fewer nodes up than replicas) as an error naming FLURRY_JS_REPLICAS; other
 * errors as they are.
 */
export function replicasRefused(ctx: Pick<StoreContext, 'replicas'>, stream: string, err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  if (/not supported in non-clustered mode/i.test(message)) {
    return new ConfigError(`FLURRY_JS_REPLICAS=${ctx.replicas}: the nats-server runs alone, not in a cluster, so stream ${stream} can only have 1 replica (set FLURRY_JS_REPLICAS=1, or use a cluster of at least ${ctx.replicas} nodes)`, { cause: err });
  }
  if (/no suitable peers for placement/i.test(message)) {
    return new ConfigError(`FLURRY_JS_REPLICAS=${ctx.replicas}: the nats cluster has fewer than ${ctx.replicas} nodes with JetStream up, so it cannot place stream ${stream} (lower FLURRY_JS_REPLICAS to the cluster's size, or bring its nodes up)`, { cause: err });
  }
  return err;
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
